package vaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

func needVAES(t testing.TB) {
	t.Helper()
	if !supported {
		t.Skip("this CPU has no VAES/VPCLMULQDQ: NewGCM returns crypto/cipher's GCM, which these tests would compare with itself")
	}
}

func TestSBoxAndKeySchedule(t *testing.T) {
	// FIPS-197 Appendix A.1: the last round key of the AES-128 example key.
	var ks keySchedule
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	if err := ks.expand(key); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(ks.enc[10][:16]), "d014f9a8c9ee2589e13f0cc8b6630ca6"; got != want {
		t.Errorf("round key 10 = %s, want %s", got, want)
	}
	if !bytes.Equal(ks.enc[10][:16], ks.enc[10][16:]) {
		t.Error("round key not duplicated into the upper lane")
	}
	if sbox[0x53] != 0xed || sbox[0] != 0x63 || sbox[0xff] != 0x16 {
		t.Errorf("S-box: S(53)=%02x S(00)=%02x S(ff)=%02x", sbox[0x53], sbox[0], sbox[0xff])
	}
	for _, n := range []int{0, 8, 15, 17, 31, 33} {
		if err := ks.expand(make([]byte, n)); err == nil {
			t.Errorf("a %d-byte key was accepted", n)
		}
	}
}

// TestGCMVectors is the AES-GCM test cases 2, 4, 6 (AES-128), 14 and 16
// (AES-256) of McGrew and Viega's GCM specification, with a 96-bit IV.
func TestGCMVectors(t *testing.T) {
	needVAES(t)
	for _, v := range []struct{ key, iv, pt, aad, ct string }{
		{"00000000000000000000000000000000", "000000000000000000000000", "00000000000000000000000000000000", "",
			"0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"},
		{"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
			"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
			"feedfacedeadbeeffeedfacedeadbeefabaddad2",
			"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47"},
	} {
		key, _ := hex.DecodeString(v.key)
		iv, _ := hex.DecodeString(v.iv)
		pt, _ := hex.DecodeString(v.pt)
		aad, _ := hex.DecodeString(v.aad)
		g, err := newGCM(key)
		if err != nil {
			t.Fatal(err)
		}
		got := g.Seal(nil, iv, pt, aad)
		if hex.EncodeToString(got) != v.ct {
			t.Errorf("key %s: Seal = %x, want %s", v.key, got, v.ct)
		}
		back, err := g.Open(nil, iv, got, aad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Errorf("key %s: Open = %x, %v", v.key, back, err)
		}
	}
}

// TestAgainstCryptoCipher seals and opens random messages of every length up
// to several octa-blocks, with every key size, and compares with crypto/cipher.
func TestAgainstCryptoCipher(t *testing.T) {
	needVAES(t)
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for _, keyLen := range []int{16, 24, 32} {
		for n := 0; n <= 2200; n += 1 + n/64 {
			key := make([]byte, keyLen)
			nonce := make([]byte, 12)
			pt := make([]byte, n)
			aad := make([]byte, rng.IntN(40))
			if n%5 == 0 {
				aad = make([]byte, rng.IntN(300))
			}
			fill(key)
			fill(nonce)
			fill(pt)
			fill(aad)
			b, _ := aes.NewCipher(key)
			ref, _ := cipher.NewGCM(b)
			g, err := newGCM(key)
			if err != nil {
				t.Fatal(err)
			}
			want := ref.Seal(nil, nonce, pt, aad)
			got := g.Seal(nil, nonce, pt, aad)
			if !bytes.Equal(got, want) {
				t.Fatalf("AES-%d, %d bytes, %d bytes of AAD:\n got %x\nwant %x", keyLen*8, n, len(aad), got, want)
			}
			// In place, as ESP seals.
			buf := append(make([]byte, 0, n+16), pt...)
			if inPlace := g.Seal(buf[:0], nonce, buf, aad); !bytes.Equal(inPlace, want) {
				t.Fatalf("AES-%d, %d bytes: in-place Seal differs", keyLen*8, n)
			}
			out, err := g.Open(nil, nonce, want, aad)
			if err != nil || !bytes.Equal(out, pt) {
				t.Fatalf("AES-%d, %d bytes: Open = %x, %v", keyLen*8, n, out, err)
			}
			// Every flipped bit of the ciphertext, tag or AAD is refused.
			bad := append([]byte(nil), want...)
			bit := rng.IntN(len(bad) * 8)
			bad[bit/8] ^= 1 << (bit % 8)
			if _, err := g.Open(nil, nonce, bad, aad); err == nil {
				t.Fatalf("AES-%d, %d bytes: Open accepted a flipped bit %d", keyLen*8, n, bit)
			}
			if len(aad) > 0 {
				aad[0] ^= 0x80
				if _, err := g.Open(nil, nonce, want, aad); err == nil {
					t.Fatalf("AES-%d, %d bytes: Open accepted changed AAD", keyLen*8, n)
				}
			}
		}
	}
}

func TestOpenShort(t *testing.T) {
	needVAES(t)
	g, _ := newGCM(make([]byte, 16))
	for n := range 16 {
		if _, err := g.Open(nil, make([]byte, 12), make([]byte, n), nil); err == nil {
			t.Errorf("a %d-byte ciphertext opened", n)
		}
	}
}

func FuzzAgainstCryptoCipher(f *testing.F) {
	f.Add(make([]byte, 16), make([]byte, 12), []byte("hello"), []byte("aad"))
	f.Fuzz(func(t *testing.T, key, nonce, pt, aad []byte) {
		if !supported || len(nonce) < 12 {
			return
		}
		nonce = nonce[:12]
		switch {
		case len(key) >= 32:
			key = key[:32]
		case len(key) >= 24:
			key = key[:24]
		case len(key) >= 16:
			key = key[:16]
		default:
			return
		}
		b, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(b)
		g, _ := newGCM(key)
		want := ref.Seal(nil, nonce, pt, aad)
		if got := g.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
			t.Fatalf("Seal differs:\n got %x\nwant %x", got, want)
		}
		if out, err := g.Open(nil, nonce, want, aad); err != nil || !bytes.Equal(out, pt) {
			t.Fatalf("Open = %x, %v", out, err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{64, 1400, 8192} {
		pt := make([]byte, n)
		aad := make([]byte, 8)
		nonce := make([]byte, 12)
		key := make([]byte, 16)
		blk, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(blk)
		impls := []struct {
			name string
			a    cipher.AEAD
		}{{"crypto-cipher", ref}}
		if supported {
			g, _ := newGCM(key)
			impls = append(impls, struct {
				name string
				a    cipher.AEAD
			}{"vaes", g})
		}
		for _, im := range impls {
			out := make([]byte, 0, n+16)
			b.Run(im.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					im.a.Seal(out[:0], nonce, pt, aad)
				}
			})
			sealed := im.a.Seal(nil, nonce, pt, aad)
			b.Run(im.name+"/open/"+strconv.Itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := im.a.Open(out[:0], nonce, sealed, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestFirstUseFromManyGoroutines: the powers of H are made by the first
// message that needs them; goroutines sealing and opening at once on a new
// AEAD (an SA's packet paths) all get crypto/cipher's answers.
func TestFirstUseFromManyGoroutines(t *testing.T) {
	if !supported {
		t.Skip("this CPU lacks VAES and VPCLMULQDQ: NewGCM is crypto/cipher's")
	}
	key := bytes.Repeat([]byte{7}, 16)
	b, _ := aes.NewCipher(key)
	ref, _ := cipher.NewGCM(b)
	nonce := make([]byte, 12)
	msg := bytes.Repeat([]byte("ipseclab"), 160) // 80 blocks: the aggregated path
	want := ref.Seal(nil, nonce, msg, []byte("aad"))
	for range 20 {
		g, err := newGCM(key)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if i%2 == 0 {
					if got := g.Seal(nil, nonce, msg, []byte("aad")); !bytes.Equal(got, want) {
						t.Error("Seal differs from crypto/cipher's on first use")
					}
					return
				}
				if got, err := g.Open(nil, nonce, want, []byte("aad")); err != nil || !bytes.Equal(got, msg) {
					t.Errorf("Open on first use: %v", err)
				}
			})
		}
		wg.Wait()
	}
}

// BenchmarkNewGCM: what setting up an SA's cipher costs the negotiation
// that installs it, and what the first long message adds.
func BenchmarkNewGCM(b *testing.B) {
	needVAES(b)
	key := bytes.Repeat([]byte{7}, 16)
	b.Run("setup", func(b *testing.B) {
		for range b.N {
			if _, err := newGCM(key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("setup+powers", func(b *testing.B) {
		for range b.N {
			g, err := newGCM(key)
			if err != nil {
				b.Fatal(err)
			}
			g.aggregated()
		}
	})
}
