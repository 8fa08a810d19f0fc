package hmacsha1

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func reference(key, data, ext []byte) [Size]byte {
	m := hmac.New(sha1.New, key)
	m.Write(data)
	m.Write(ext)
	var out [Size]byte
	m.Sum(out[:0])
	return out
}

// RFC 2202 §3, test cases 1, 2, 3, 6 and 7 (6 and 7 have an 80-byte key,
// hashed first).
func TestRFC2202(t *testing.T) {
	cases := []struct{ key, data, mac string }{
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", hex.EncodeToString([]byte("Hi There")), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{hex.EncodeToString([]byte("Jefe")), hex.EncodeToString([]byte("what do ya want for nothing?")), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", hex.EncodeToString(bytes.Repeat([]byte{0xdd}, 50)), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{hex.EncodeToString(bytes.Repeat([]byte{0xaa}, 80)), hex.EncodeToString([]byte("Test Using Larger Than Block-Size Key - Hash Key First")), "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{hex.EncodeToString(bytes.Repeat([]byte{0xaa}, 80)), hex.EncodeToString([]byte("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data")), "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
	}
	for i, c := range cases {
		key, _ := hex.DecodeString(c.key)
		data, _ := hex.DecodeString(c.data)
		var got [Size]byte
		Sum(Message{Key: NewKey(key), Data: data, Sum: &got})
		if hex.EncodeToString(got[:]) != c.mac {
			t.Errorf("case %d: got %x, want %s", i, got, c.mac)
		}
	}
}

// TestSum2 pairs messages of every length up to a few blocks, equal and not,
// with and without an extension, under one key and under two.
func TestSum2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	k1, k2 := random(20), random(32)
	key1, key2 := NewKey(k1), NewKey(k2)
	for la := 0; la < 300; la++ {
		for _, lb := range []int{la, la / 2, la + 1, la + 64, 1500, 0} {
			a, b := random(la), random(lb)
			var ea, eb []byte
			if la%3 == 0 {
				ea = random(4)
			}
			if lb%2 == 0 {
				eb = random(4)
			}
			var ga, gb [Size]byte
			Sum2(Message{key1, a, ea, &ga}, Message{key2, b, eb, &gb})
			if ga != reference(k1, a, ea) || gb != reference(k2, b, eb) {
				t.Fatalf("lengths %d+%d and %d+%d: wrong HMAC", la, len(ea), lb, len(eb))
			}
		}
	}
	// One message alone.
	var g [Size]byte
	data := random(1400)
	Sum(Message{Key: key1, Data: data, Sum: &g})
	if g != reference(k1, data, nil) {
		t.Fatal("Sum: wrong HMAC")
	}
}

// TestGeneric checks the portable block function against crypto/sha1, which
// is what CPUs without the SHA extensions run.
func TestGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 300; n++ {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		var buf [2 * blockSize]byte
		whole := n &^ (blockSize - 1)
		h := initial
		if whole > 0 {
			blocksGeneric(&h, &data[0], whole)
		}
		end := pad(&buf, data[whole:], nil, uint64(n))
		blocksGeneric(&h, &buf[0], end)
		var l lane
		l.h = h
		var got [Size]byte
		l.digest(&got)
		if got != sha1.Sum(data) {
			t.Fatalf("%d bytes: got %x", n, got)
		}
	}
}

func FuzzSum2(f *testing.F) {
	f.Add([]byte("key"), []byte("a"), []byte("b"), uint8(4))
	f.Add(bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 130), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, key, a, b []byte, ext uint8) {
		e := bytes.Repeat([]byte{ext}, int(ext%9))
		k := NewKey(key)
		var ga, gb [Size]byte
		Sum2(Message{k, a, e, &ga}, Message{k, b, nil, &gb})
		if ga != reference(key, a, e) || gb != reference(key, b, nil) {
			t.Fatal("wrong HMAC")
		}
	})
}

// BenchmarkHMAC compares one ESP packet's ICV (1400 bytes) by crypto/hmac,
// and by this package alone and in pairs; ns/op is per packet throughout.
func BenchmarkHMAC(b *testing.B) {
	key := bytes.Repeat([]byte{7}, 20)
	data := make([]byte, 1400)
	b.Run("crypto-hmac", func(b *testing.B) {
		m := hmac.New(sha1.New, key)
		var out [Size]byte
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m.Reset()
			m.Write(data)
			m.Sum(out[:0])
		}
	})
	k := NewKey(key)
	b.Run("one", func(b *testing.B) {
		var out [Size]byte
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum(Message{Key: k, Data: data, Sum: &out})
		}
	})
	b.Run("pairs", func(b *testing.B) {
		var oa, ob [Size]byte
		data2 := make([]byte, len(data))
		b.SetBytes(int64(2 * len(data)))
		for b.Loop() {
			Sum2(Message{Key: k, Data: data, Sum: &oa}, Message{Key: k, Data: data2, Sum: &ob})
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/packet")
	})
}
