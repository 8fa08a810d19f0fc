package pki

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
)

func TestEncryptDecrypt(t *testing.T) {
	key := rsaKey()
	for _, n := range []int{1, 16, 32, 245} { // nonce sizes, up to RSA-2048's 245-byte limit
		plain := make([]byte, n)
		rand.Read(plain)
		ct, err := Encrypt(&key.PublicKey, plain, rand.Reader)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if len(ct) != key.PublicKey.Size() {
			t.Errorf("%d bytes: ciphertext of %d bytes, want %d", n, len(ct), key.PublicKey.Size())
		}
		got, err := Decrypt(key, ct)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: Decrypt = %x, %v; want %x", n, got, err, plain)
		}
		// Behind the crypto.Signer interface, as a hardware key would be.
		if got, err := Decrypt(signerOnlyDecrypter{key}, ct); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes through crypto.Decrypter: %x, %v", n, got, err)
		}
		if _, err := Decrypt(rsaKey2(), ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%d bytes with another key: %v, want ErrDecrypt", n, err)
		}
		bad := bytes.Clone(ct)
		bad[len(bad)/2] ^= 1
		if got, err := Decrypt(key, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("damaged ciphertext: %x, %v, want ErrDecrypt", got, err)
		}
	}
}

// signerOnlyDecrypter hides the concrete type but keeps Decrypt.
type signerOnlyDecrypter struct{ *rsa.PrivateKey }

func TestEncryptDecryptErrors(t *testing.T) {
	if _, err := Encrypt(&rsaKey().PublicKey, make([]byte, 246), rand.Reader); err == nil || !strings.Contains(err.Error(), "at most 245") {
		t.Errorf("Encrypt of 246 bytes to RSA-2048: %v", err)
	}
	if _, err := Encrypt(nil, []byte{1}, rand.Reader); err == nil {
		t.Error("Encrypt to no key succeeded")
	}
	if _, err := Decrypt(ecKey(t, elliptic.P256()), make([]byte, 64)); err == nil || !strings.Contains(err.Error(), "needs an RSA key") {
		t.Errorf("Decrypt with ECDSA: %v", err)
	}
	if _, err := Decrypt(signerOnly{rsaKey()}, make([]byte, 256)); err == nil || errors.Is(err, ErrDecrypt) {
		t.Errorf("Decrypt with a key that cannot decrypt: %v", err)
	}
	if _, err := Decrypt(nil, nil); err == nil {
		t.Error("Decrypt with no key succeeded")
	}
}
