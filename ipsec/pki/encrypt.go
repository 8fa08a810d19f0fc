package pki

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
)

// ErrDecrypt is a public-key encrypted payload that does not decrypt with
// our key: the peer used another public key (a stale certificate, or the
// wrong one of several), or the payload was damaged. Deliberately one error
// whatever the padding fault, so that the exchange cannot become a padding
// oracle.
var ErrDecrypt = errors.New("pki: payload does not decrypt with our private key")

// Encrypt encrypts one payload body for RFC 2409 §5.2 (Ni, IDii, IDir) or
// §5.3 (Ni only) under the peer's RSA key. The RFC names PKCS#1 and nothing
// else, so it is PKCS#1 v1.5 (RSAES-PKCS1-v1_5), deprecated in Go for new
// protocols but the only interoperable choice here. plain may be at most
// the modulus size minus 11 bytes (245 for RSA-2048).
func Encrypt(pub *rsa.PublicKey, plain []byte, rand io.Reader) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("pki: no public key to encrypt to")
	}
	ct, err := rsa.EncryptPKCS1v15(rand, pub, plain)
	if err != nil {
		return nil, fmt.Errorf("pki: encrypting %d bytes to an RSA-%d key (at most %d): %w",
			len(plain), pub.N.BitLen(), pub.Size()-11, err)
	}
	return ct, nil
}

// Decrypt reverses Encrypt with our private key, which must be RSA: only
// RSA keys can decrypt, which is why RFC 2409's encryption methods 4 and 5
// have no ECDSA counterpart.
func Decrypt(key crypto.Signer, ct []byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("pki: no private key to decrypt with")
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("pki: public-key encryption needs an RSA key, not %s", DescribeKey(key.Public()))
	}
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, fmt.Errorf("pki: the %T key cannot decrypt", key)
	}
	plain, err := d.Decrypt(nil, ct, &rsa.PKCS1v15DecryptOptions{})
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}
