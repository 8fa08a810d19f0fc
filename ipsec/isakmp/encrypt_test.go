package isakmp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"strings"
	"testing"
)

func TestEncryptedMessageRoundTrip(t *testing.T) {
	aesBlock, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	tdesBlock, _ := des.NewTripleDESCipher(bytes.Repeat([]byte{9}, 24))
	for _, block := range []cipher.Block{aesBlock, tdesBlock} {
		bs := block.BlockSize()
		iv := bytes.Repeat([]byte{3}, bs)
		hash := &Hash{Data: bytes.Repeat([]byte{1}, 20)}
		sa := samplePayloads()[1]
		nonce := &Nonce{Data: []byte("0123456789abcdef0123")}
		m := &Message{
			Header:   Header{InitiatorCookie: Cookie{1}, ResponderCookie: Cookie{2}, Exchange: ExchangeQuickMode, MessageID: 0xdeadbeef},
			Payloads: []Payload{hash, sa, nonce},
		}
		wire, err := m.EncodeEncrypted(block, iv)
		if err != nil {
			t.Fatal(err)
		}
		plainLen := len(mustEncodePayloads(t, hash, sa, nonce))
		if (len(wire)-HeaderLen)%bs != 0 || len(wire)-HeaderLen < plainLen || len(wire)-HeaderLen >= plainLen+bs {
			t.Fatalf("block %d: %d ciphertext bytes for %d plaintext bytes", bs, len(wire)-HeaderLen, plainLen)
		}
		if m.Header.Flags&FlagEncryption == 0 || m.Header.NextPayload != PayloadHash {
			t.Fatalf("header %+v", m.Header)
		}

		got, err := Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Ciphertext, wire[HeaderLen:]) {
			t.Fatalf("ciphertext not kept")
		}
		if err := got.Decrypt(block, iv); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got.PayloadNames(), ",") != "HASH,SA,NONCE" {
			t.Fatalf("payloads %v", got.PayloadNames())
		}
		// What HASH(1) covers: the payloads after HASH as received, without
		// the padding, equal to the sender's encoding of them.
		rest, _ := got.PayloadBytes(1)
		if want := mustEncodePayloads(t, sa, nonce); !bytes.Equal(rest, want) {
			t.Errorf("received payload bytes after HASH differ from the sent ones")
		}
		// The next IV is the last ciphertext block; decrypting with the wrong
		// IV garbles only the first block, which holds the HASH payload
		// header, so decoding must fail or differ.
		bad, _ := Decode(wire)
		if err := bad.Decrypt(block, bytes.Repeat([]byte{4}, bs)); err == nil && bytes.Equal(First[*Hash](bad).Data, hash.Data) {
			t.Errorf("decryption with a wrong IV went unnoticed")
		}
	}
}

func mustEncodePayloads(t *testing.T, p ...Payload) []byte {
	t.Helper()
	b, err := EncodePayloads(p...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPaddingIsIgnored(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 16))
	iv := make([]byte, 16)
	chain := mustEncodePayloads(t, &Hash{Data: []byte{1, 2, 3}}) // 7 bytes
	for _, pad := range [][]byte{
		nil,                                   // no room needed
		bytes.Repeat([]byte{0}, 9),            // zeros (strongSwan)
		append(bytes.Repeat([]byte{0}, 8), 8), // RFC 2409-style pad length byte
		bytes.Repeat([]byte{0xa5}, 25),        // random bytes, more than a block
	} {
		plain := append(append([]byte(nil), chain...), pad...)
		ct, err := EncryptCBC(block, iv, plain)
		if err != nil {
			t.Fatal(err)
		}
		m := &Message{Header: Header{NextPayload: PayloadHash, Flags: FlagEncryption}, Ciphertext: ct}
		if err := m.Decrypt(block, iv); err != nil {
			t.Fatalf("pad %x: %v", pad, err)
		}
		if h := First[*Hash](m); h == nil || !bytes.Equal(h.Data, []byte{1, 2, 3}) {
			t.Errorf("pad %x: payloads %v", pad, m.PayloadNames())
		}
		if rest, _ := m.PayloadBytes(0); !bytes.Equal(rest, chain) {
			t.Errorf("pad %x: PayloadBytes includes padding", pad)
		}
	}
}

func TestCBCHelpersRejectBadIV(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 16))
	if _, err := EncryptCBC(block, make([]byte, 8), []byte("x")); err == nil {
		t.Errorf("8-byte IV accepted for AES")
	}
	if _, err := DecryptCBC(block, make([]byte, 8), make([]byte, 16)); err == nil {
		t.Errorf("8-byte IV accepted for AES")
	}
	ct, _ := EncryptCBC(block, make([]byte, 16), make([]byte, 32))
	if len(ct) != 32 {
		t.Errorf("block-aligned plaintext padded to %d", len(ct))
	}
}
