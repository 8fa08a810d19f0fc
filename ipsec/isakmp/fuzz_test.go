package isakmp

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"runtime"
	"testing"
)

// fuzzSeeds are real recorded messages plus one message of every payload type
// this package builds.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range allCaptures() {
		seeds = append(seeds, unhex(t, c))
	}
	for _, p := range samplePayloads() {
		m := &Message{Header: Header{Exchange: ExchangeAggressive}, Payloads: []Payload{p}}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	all, err := (&Message{Payloads: samplePayloads()}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append(seeds, all, wrapPayload(PayloadSA, unhex(t, ikescanNetscreenSAi)))
}

// FuzzDecodeMessage checks that Decode never panics and that whatever it
// accepts re-encodes to a message of the same length that decodes to the
// same payloads. Encrypted messages are decrypted with a fixed key, which
// exercises the chain decoder on arbitrary plaintext and the padding rule.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	block, _ := aes.NewCipher(make([]byte, 16))
	iv := make([]byte, 16)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		if m.Header.Flags&FlagEncryption != 0 {
			if m.Decrypt(block, iv) == nil {
				rest, err := m.PayloadBytes(0)
				if err != nil || len(rest) > len(m.Ciphertext) {
					t.Fatalf("PayloadBytes after Decrypt: %d bytes, %v", len(rest), err)
				}
			}
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
		if len(out) != len(data) {
			t.Fatalf("re-encoding is %d bytes, received %d", len(out), len(data))
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if len(again.Payloads) != len(m.Payloads) {
			t.Fatalf("%d payloads after re-encoding, %d before", len(again.Payloads), len(m.Payloads))
		}
		for i, p := range m.Payloads {
			a, _ := p.appendBody(nil)
			b, _ := again.Payloads[i].appendBody(nil)
			if p.Type() != again.Payloads[i].Type() || !bytes.Equal(a, b) {
				t.Fatalf("payload %d changed: %x, then %x", i, a, b)
			}
			if !bytes.Equal(p.Body(), data[HeaderLen+m.starts[i]+genericHeaderLen:][:len(p.Body())]) {
				t.Fatalf("payload %d body is not the received bytes", i)
			}
		}
	})
}

// FuzzDecodePayloadChain drives the chain decoder directly with any first
// payload type, as Decrypt does on decrypted (possibly garbage) plaintext.
func FuzzDecodePayloadChain(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[16], s[HeaderLen:])
	}
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		entries, end, err := decodeChain(PayloadType(first), body, HeaderLen, false)
		if err != nil {
			return
		}
		if end > len(body) {
			t.Fatalf("chain ends at %d of %d", end, len(body))
		}
		last := -1
		for _, e := range entries {
			if e.start <= last {
				t.Fatalf("payload starts are not increasing")
			}
			last = e.start
		}
	})
}

func TestFuzzSeedsDecode(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		if _, err := Decode(s); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

// TestDecodeAllocationIsBoundedByLength decodes worst cases for allocations
// per input byte (many tiny payloads, many attributes, many one-byte SPIs) and
// checks that the bytes allocated stay within a fixed multiple of the message
// length.
func TestDecodeAllocationIsBoundedByLength(t *testing.T) {
	const size = 60000
	tiny := make([]byte, 0, size)
	for len(tiny)+4 <= size-HeaderLen {
		tiny = append(tiny, 200, 0, 0, 4) // unknown payload 200, then another
	}
	tiny[len(tiny)-4] = 0
	attrs := []byte{1, 0, 0, 1}
	for len(attrs)+4 <= 60000 {
		attrs = append(attrs, 0x80, 1, 0, 1)
	}
	spis := []byte{0, 0, 0, 1, 3, 1}
	spis = binary.BigEndian.AppendUint16(spis, 60000)
	spis = append(spis, make([]byte, 60000)...)
	for name, msg := range map[string][]byte{
		"4-byte payloads":      rawMessage(200, tiny),
		"TV attributes":        wrapPayload(PayloadAttributes, attrs),
		"one-byte delete SPIs": wrapPayload(PayloadDelete, spis),
	} {
		if _, err := Decode(msg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 5; i++ {
			if _, err := Decode(msg); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		perByte := float64(after.TotalAlloc-before.TotalAlloc) / 5 / float64(len(msg))
		t.Logf("%s: %.1f bytes allocated per input byte", name, perByte)
		if perByte > 40 {
			t.Errorf("%s: %.1f bytes allocated per input byte", name, perByte)
		}
	}
}

func rawMessage(first PayloadType, body []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(body))
	b[16], b[17] = byte(first), Version
	binary.BigEndian.PutUint32(b[24:], uint32(HeaderLen+len(body)))
	return append(b, body...)
}
