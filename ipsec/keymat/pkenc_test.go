package keymat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// SKEYID of public-key encryption, Ne_i and Ke_i, each written out with the
// standard library from RFC 2409 §5 and §5.3.
func TestPublicKeyEncryptionKeys(t *testing.T) {
	ni, nr := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 24)
	ckyI, ckyR := cookie(t, "0102030405060708"), cookie(t, "1112131415161718")
	mac := func(h func() hash.Hash, key []byte, data ...[]byte) []byte {
		m := hmac.New(h, key)
		for _, d := range data {
			m.Write(d)
		}
		return m.Sum(nil)
	}

	// SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R), with SHA-256.
	prf := mustPRF(t, isakmp.HashSHA2_256)
	h := sha256.Sum256(append(append([]byte(nil), ni...), nr...))
	if got, want := SKEYIDPublicKeyEncryption(prf, ni, nr, ckyI, ckyR), mac(sha256New, h[:], ckyI[:], ckyR[:]); !bytes.Equal(got, want) {
		t.Errorf("SKEYID = %x, want %x", got, want)
	}

	// Ne_i = prf(Ni_b, CKY-I); AES-128 takes Ke_i from Ne_i's first 16 bytes.
	ne := NonceKey(prf, ni, ckyI)
	if want := mac(sha256New, ni, ckyI[:]); !bytes.Equal(ne, want) {
		t.Fatalf("Ne_i = %x, want %x", ne, want)
	}
	nc, err := NewNonceCipher(mustCipher(t, isakmp.EncAESCBC, 128), prf, ne)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(nc.Key, ne[:16]) {
		t.Errorf("Ke_i = %x, want the first 16 bytes of Ne_i %x", nc.Key, ne)
	}

	// With SHA-1 (20 bytes) and AES-256 (32), Ke_i is the first 32 bytes of
	// K1 | K2, K1 = prf(Ne_i, 0), K2 = prf(Ne_i, K1).
	prf1 := mustPRF(t, isakmp.HashSHA1)
	ne1 := NonceKey(prf1, nr, ckyR)
	k1 := mac(sha1New, ne1, []byte{0})
	k2 := mac(sha1New, ne1, k1)
	nc1, err := NewNonceCipher(mustCipher(t, isakmp.EncAESCBC, 256), prf1, ne1)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(k1, k2...)[:32]; !bytes.Equal(nc1.Key, want) {
		t.Errorf("Ke_r = %x, want %x", nc1.Key, want)
	}
}

var sha256New, sha1New = sha256.New, sha1.New

func mustCipher(t testing.TB, alg isakmp.EncryptionAlgorithm, bits uint16) Cipher {
	t.Helper()
	c, err := NewCipher(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The bodies after the nonce: zero IV for the first, then the last block
// of the one before; padding of 0x00 bytes and a last byte counting them,
// always present.
func TestNonceCipherPaddingAndChain(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	prf := mustPRF(t, isakmp.HashSHA2_256)
	nc, err := NewNonceCipher(mustCipher(t, isakmp.EncAESCBC, 128), prf, append(key, key...))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	decrypt := func(iv, ct []byte) []byte {
		out := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
		return out
	}
	ke := bytes.Repeat([]byte{0xee}, 32) // a whole number of blocks: a whole block of padding
	id := []byte{2, 0, 0, 0, 'g', 'w'}   // 6 bytes: 9 zeros and 0x09
	ct1, ct2 := nc.Seal(ke), nc.Seal(id)
	want1 := append(append([]byte(nil), ke...), append(make([]byte, 15), 15)...)
	if p := decrypt(make([]byte, 16), ct1); !bytes.Equal(p, want1) {
		t.Errorf("first body decrypts to %x, want %x", p, want1)
	}
	want2 := append(append([]byte(nil), id...), append(make([]byte, 9), 9)...)
	if p := decrypt(ct1[len(ct1)-16:], ct2); !bytes.Equal(p, want2) {
		t.Errorf("second body decrypts to %x, want %x", p, want2)
	}

	rx, _ := NewNonceCipher(mustCipher(t, isakmp.EncAESCBC, 128), prf, append(key, key...))
	if p, err := rx.Open(ct1); err != nil || !bytes.Equal(p, ke) {
		t.Errorf("Open(first) = %x, %v", p, err)
	}
	if p, err := rx.Open(ct2); err != nil || !bytes.Equal(p, id) {
		t.Errorf("Open(second) = %x, %v", p, err)
	}

	// Faults: not whole blocks, a count past the block, a nonzero pad byte.
	bad := func(last []byte) []byte {
		c := make([]byte, 16)
		copy(c[16-len(last):], last)
		enc := make([]byte, 16)
		cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(enc, c)
		return enc
	}
	for name, ct := range map[string][]byte{
		"empty":         nil,
		"half a block":  ct1[:8],
		"count too big": bad([]byte{16}),
		"nonzero pad":   bad([]byte{1, 0, 2}),
		"count of 0xff": bad([]byte{0xff}),
	} {
		rx, _ := NewNonceCipher(mustCipher(t, isakmp.EncAESCBC, 128), prf, append(key, key...))
		if _, err := rx.Open(ct); err != ErrNonceCipher {
			t.Errorf("%s: Open = %v, want ErrNonceCipher", name, err)
		}
	}
}
