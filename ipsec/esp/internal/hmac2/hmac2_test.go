package hmac2

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"
)

var hashes = []struct {
	name string
	h    Hash
	new  func() hash.Hash
}{{"sha1", SHA1, sha1.New}, {"sha256", SHA256, sha256.New}}

func reference(newHash func() hash.Hash, key, data, ext []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(data)
	m.Write(ext)
	return m.Sum(nil)
}

// RFC 2202 §3 (HMAC-SHA1) cases 1, 2, 3, 6, 7 and RFC 4231 §4 (HMAC-SHA256)
// cases 1, 2, 6, 7; the last two of each have keys longer than a block.
func TestKnownAnswers(t *testing.T) {
	long := hex.EncodeToString(bytes.Repeat([]byte{0xaa}, 80))
	long256 := hex.EncodeToString(bytes.Repeat([]byte{0xaa}, 131))
	text := func(s string) string { return hex.EncodeToString([]byte(s)) }
	cases := []struct {
		h               Hash
		key, data, want string
	}{
		{SHA1, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", text("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{SHA1, text("Jefe"), text("what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{SHA1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", hex.EncodeToString(bytes.Repeat([]byte{0xdd}, 50)), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{SHA1, long, text("Test Using Larger Than Block-Size Key - Hash Key First"), "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{SHA1, long, text("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"), "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
		{SHA256, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", text("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{SHA256, text("Jefe"), text("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{SHA256, long256, text("Test Using Larger Than Block-Size Key - Hash Key First"), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{SHA256, long256, text("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	}
	for i, c := range cases {
		key, _ := hex.DecodeString(c.key)
		data, _ := hex.DecodeString(c.data)
		var got [MaxSize]byte
		k := NewKey(c.h, key)
		Sum(Message{Key: k, Data: data, Sum: &got})
		if hex.EncodeToString(got[:k.Size()]) != c.want {
			t.Errorf("case %d: got %x, want %s", i, got[:k.Size()], c.want)
		}
	}
}

// TestSum2 pairs messages of every length up to a few blocks, equal and not,
// with and without an extension, under one key and under two, and across
// the two hashes.
func TestSum2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, ha := range hashes {
		for _, hb := range hashes {
			t.Run(ha.name+"+"+hb.name, func(t *testing.T) {
				k1, k2 := random(20), random(32)
				key1, key2 := NewKey(ha.h, k1), NewKey(hb.h, k2)
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
						var ga, gb [MaxSize]byte
						Sum2(Message{key1, a, ea, &ga}, Message{key2, b, eb, &gb})
						if !bytes.Equal(ga[:key1.Size()], reference(ha.new, k1, a, ea)) || !bytes.Equal(gb[:key2.Size()], reference(hb.new, k2, b, eb)) {
							t.Fatalf("lengths %d+%d and %d+%d: wrong HMAC", la, len(ea), lb, len(eb))
						}
					}
				}
			})
		}
	}
}

// TestGeneric checks the portable block functions against crypto/sha1 and
// crypto/sha256: they are what CPUs without the SHA extensions run.
func TestGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	generic := map[Hash]func(*[8]uint32, *byte, int){SHA1: sha1Generic, SHA256: sha256Generic}
	for _, h := range hashes {
		fn := &functions[h.h]
		for n := 0; n < 300; n++ {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			var l lane
			l.h = fn.initial
			body := l.load(data, nil, 0)
			if len(body) > 0 {
				generic[h.h](&l.h, &body[0], len(body))
			}
			generic[h.h](&l.h, &l.buf[0], l.end)
			var got [MaxSize]byte
			l.digest(fn, &got)
			want := h.new()
			want.Write(data)
			if !bytes.Equal(got[:fn.size], want.Sum(nil)) {
				t.Fatalf("%s of %d bytes: got %x", h.name, n, got[:fn.size])
			}
		}
	}
}

func FuzzSum2(f *testing.F) {
	f.Add(false, []byte("key"), []byte("a"), []byte("b"), uint8(4))
	f.Add(true, bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 130), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, use256 bool, key, a, b []byte, ext uint8) {
		h := hashes[0]
		if use256 {
			h = hashes[1]
		}
		e := bytes.Repeat([]byte{ext}, int(ext%9))
		k := NewKey(h.h, key)
		var ga, gb [MaxSize]byte
		Sum2(Message{k, a, e, &ga}, Message{k, b, nil, &gb})
		if !bytes.Equal(ga[:k.Size()], reference(h.new, key, a, e)) || !bytes.Equal(gb[:k.Size()], reference(h.new, key, b, nil)) {
			t.Fatal("wrong HMAC")
		}
	})
}

// BenchmarkHMAC compares one ESP packet's ICV (1400 bytes) by crypto/hmac,
// and by this package alone and in pairs; ns/packet is per packet throughout.
func BenchmarkHMAC(b *testing.B) {
	key := bytes.Repeat([]byte{7}, 32)
	data := make([]byte, 1400)
	for _, h := range hashes {
		b.Run(fmt.Sprintf("%s/crypto-hmac", h.name), func(b *testing.B) {
			m := hmac.New(h.new, key)
			out := make([]byte, 0, MaxSize)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				m.Reset()
				m.Write(data)
				m.Sum(out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
		k := NewKey(h.h, key)
		b.Run(fmt.Sprintf("%s/one", h.name), func(b *testing.B) {
			var out [MaxSize]byte
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				Sum(Message{Key: k, Data: data, Sum: &out})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
		b.Run(fmt.Sprintf("%s/pairs", h.name), func(b *testing.B) {
			var oa, ob [MaxSize]byte
			data2 := make([]byte, len(data))
			b.SetBytes(int64(2 * len(data)))
			for b.Loop() {
				Sum2(Message{Key: k, Data: data, Sum: &oa}, Message{Key: k, Data: data2, Sum: &ob})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/packet")
		})
	}
}

// The data plane computes ICVs on every packet: nothing may reach the heap.
func TestNoAllocations(t *testing.T) {
	data := make([]byte, 1400)
	for _, h := range hashes {
		k := NewKey(h.h, []byte("key"))
		if n := testing.AllocsPerRun(100, func() {
			// The sums on the stack, as the data plane has them.
			var oa, ob [MaxSize]byte
			Sum2(Message{Key: k, Data: data, Ext: data[:4], Sum: &oa}, Message{Key: k, Data: data[1:], Sum: &ob})
			sink ^= oa[0] ^ ob[0]
		}); n != 0 {
			t.Errorf("%s: %v allocations per Sum2", h.name, n)
		}
	}
}

var sink byte
