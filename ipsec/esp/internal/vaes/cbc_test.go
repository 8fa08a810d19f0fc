package vaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// TestCBCVector is RFC 3602 §4 case #2 (AES-128-CBC, two blocks).
func TestCBCVector(t *testing.T) {
	needVAES(t)
	key, _ := hex.DecodeString("c286696d887c9aa0611bbb3e2025a45a")
	iv, _ := hex.DecodeString("562e17996d093d28ddb3ba695a2e6f58")
	pt, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	want := "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"
	enc, dec, err := NewCBC(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(pt))
	enc.SetIV(iv)
	enc.CryptBlocks(ct, pt)
	if hex.EncodeToString(ct) != want {
		t.Fatalf("encrypt = %x, want %s", ct, want)
	}
	dec.SetIV(iv)
	dec.CryptBlocks(ct, ct)
	if !bytes.Equal(ct, pt) {
		t.Fatalf("decrypt = %x", ct)
	}
}

func TestCBCAgainstCryptoCipher(t *testing.T) {
	needVAES(t)
	rng := rand.New(rand.NewPCG(5, 5))
	for _, keyLen := range []int{16, 24, 32} {
		for blocks := 0; blocks <= 40; blocks++ {
			key := randBytes(rng, keyLen)
			iv := randBytes(rng, 16)
			pt := randBytes(rng, blocks*16)
			b, _ := aes.NewCipher(key)
			want := make([]byte, len(pt))
			cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, pt)
			enc, dec, _ := NewCBC(key)
			got := make([]byte, len(pt))
			enc.SetIV(iv)
			enc.CryptBlocks(got, pt)
			if !bytes.Equal(got, want) {
				t.Fatalf("AES-%d, %d blocks: encrypt differs", keyLen*8, blocks)
			}
			// Decrypt in place, as the tests of the ESP path do not.
			dec.SetIV(iv)
			dec.CryptBlocks(got, got)
			if !bytes.Equal(got, pt) {
				t.Fatalf("AES-%d, %d blocks: in-place decrypt differs", keyLen*8, blocks)
			}
			// And out of place, in two calls: the IV carries over.
			out := make([]byte, len(pt))
			dec.SetIV(iv)
			half := blocks / 2 * 16
			dec.CryptBlocks(out[:half], want[:half])
			dec.CryptBlocks(out[half:], want[half:])
			if !bytes.Equal(out, pt) {
				t.Fatalf("AES-%d, %d blocks: decrypt in two calls differs", keyLen*8, blocks)
			}
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func BenchmarkCBC(b *testing.B) {
	key := make([]byte, 16)
	iv := make([]byte, 16)
	buf := make([]byte, 1408)
	blk, _ := aes.NewCipher(key)
	std := []IVBlockMode{cipher.NewCBCEncrypter(blk, iv).(IVBlockMode), cipher.NewCBCDecrypter(blk, iv).(IVBlockMode)}
	e, d, _ := NewCBC(key)
	for _, m := range []struct {
		name string
		bm   IVBlockMode
	}{{"crypto-cipher/encrypt", std[0]}, {"crypto-cipher/decrypt", std[1]}, {"vaes/encrypt", e}, {"vaes/decrypt", d}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				m.bm.SetIV(iv)
				m.bm.CryptBlocks(buf, buf)
			}
		})
	}
}

func TestEncryptCBC4(t *testing.T) {
	needVAES(t)
	rng := rand.New(rand.NewPCG(6, 6))
	for _, keyLen := range []int{16, 24, 32} {
		for _, blocks := range []int{0, 1, 2, 7, 88} {
			key := randBytes(rng, keyLen)
			enc, _, _ := NewCBC(key)
			b, _ := aes.NewCipher(key)
			var ivs, msgs, want [4][]byte
			for i := range 4 {
				ivs[i] = randBytes(rng, 16)
				msgs[i] = randBytes(rng, blocks*16)
				want[i] = make([]byte, len(msgs[i]))
				cipher.NewCBCEncrypter(b, ivs[i]).CryptBlocks(want[i], msgs[i])
			}
			if !EncryptCBC4(enc, &ivs, &msgs) {
				t.Fatal("EncryptCBC4 refused this package's encrypter")
			}
			for i := range 4 {
				if !bytes.Equal(msgs[i], want[i]) {
					t.Fatalf("AES-%d, %d blocks, message %d differs from crypto/cipher", keyLen*8, blocks, i)
				}
			}
		}
	}
	std := cipher.NewCBCEncrypter(must(aes.NewCipher(make([]byte, 16))), make([]byte, 16)).(IVBlockMode)
	var ivs, msgs [4][]byte
	if EncryptCBC4(std, &ivs, &msgs) {
		t.Error("EncryptCBC4 took crypto/cipher's encrypter")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkEncryptCBC4(b *testing.B) {
	enc, _, _ := NewCBC(make([]byte, 16))
	var ivs, msgs [4][]byte
	for i := range 4 {
		ivs[i], msgs[i] = make([]byte, 16), make([]byte, 1408)
	}
	b.SetBytes(4 * 1408)
	for b.Loop() {
		EncryptCBC4(enc, &ivs, &msgs)
	}
}
