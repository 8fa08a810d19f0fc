package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyType names a key algorithm and size as the lab file does.
type KeyType string

const (
	RSA2048   KeyType = "rsa-2048" // the default
	RSA3072   KeyType = "rsa-3072"
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	ECDSAP521 KeyType = "ecdsa-p521"
)

// KeyTypes lists the key types a lab file may name, default first, so that
// an error and a schema can quote the same list.
var KeyTypes = []KeyType{RSA2048, RSA3072, ECDSAP256, ECDSAP384, ECDSAP521}

// ParseKeyType reads a lab file's key-type; the empty string is the default,
// RSA-2048, because that is what strongSwan and every IKEv1 peer accept.
func ParseKeyType(s string) (KeyType, error) {
	if s == "" {
		return RSA2048, nil
	}
	for _, t := range KeyTypes {
		if KeyType(s) == t {
			return t, nil
		}
	}
	names := make([]string, len(KeyTypes))
	for i, t := range KeyTypes {
		names[i] = string(t)
	}
	return "", fmt.Errorf("pki: unknown key type %q (valid: %s)", s, strings.Join(names, ", "))
}

// GenerateKey makes a new private key of type t. Since Go 1.26 the standard
// library draws key material from its own secure source whatever rand is
// (tests that need repeatable keys use testing/cryptotest.SetGlobalRandom);
// rand is still passed on for the GODEBUG=cryptocustomrand=1 escape hatch.
func GenerateKey(t KeyType, rand io.Reader) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand, 3072)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand)
	case ECDSAP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand)
	}
	_, err := ParseKeyType(string(t))
	if err == nil {
		err = fmt.Errorf("pki: cannot generate key type %q", t)
	}
	return nil, err
}

// ErrKeyMismatch is returned by KeyMatches: a certificate and a key file that
// do not belong together is the commonest mistake in hand-made PKI files, and
// without this check it shows up only as AUTHENTICATION-FAILED at the peer.
var ErrKeyMismatch = errors.New("pki: private key does not match certificate")

// KeyMatches checks that key is the private half of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) error {
	if cert == nil || key == nil {
		return fmt.Errorf("%w: no certificate or no key", ErrKeyMismatch)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: the key is %s, certificate %s holds %s", ErrKeyMismatch,
			DescribeKey(key.Public()), certName(cert), DescribeKey(cert.PublicKey))
	}
	return nil
}

// DescribeKey names a public key the way `pki show` and error messages print
// it: "RSA-2048", "ECDSA P-256".
func DescribeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case nil:
		return "no key"
	}
	return fmt.Sprintf("%T", pub)
}

// PEM block types.
const (
	pemPKCS8 = "PRIVATE KEY"
	pemPKCS1 = "RSA PRIVATE KEY"
	pemSEC1  = "EC PRIVATE KEY"
	pemCert  = "CERTIFICATE"
)

// ParsePrivateKey reads an RSA or ECDSA private key in PKCS#1, PKCS#8 or SEC1,
// PEM or DER. In PEM the first key block counts and other blocks are
// skipped, such as the "EC PARAMETERS" that `openssl ecparam -genkey`
// writes first, or a certificate kept in the same file. Keys that IKEv1 cannot use (Ed25519, X25519) and encrypted
// keys are refused here, where the error can name the file, instead of at
// the first exchange.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if !isPEM(data) {
		return parseDERKey(data)
	}
	var seen []string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "":
			return nil, errors.New("pki: the private key is encrypted; ipseclab needs it unencrypted (openssl pkey -in KEY -out PLAIN)")
		case b.Type == pemPKCS8 || b.Type == pemPKCS1 || b.Type == pemSEC1:
			return parseKeyBlock(b.Type, b.Bytes)
		}
		seen = append(seen, b.Type)
	}
	if len(seen) == 0 {
		return nil, errors.New("pki: no PEM block in the key file")
	}
	return nil, fmt.Errorf("pki: no private key in the file (it holds %s)", strings.Join(seen, ", "))
}

// parseDERKey tries the three encodings in turn: DER carries no label, and
// each parser rejects the others' structures.
func parseDERKey(der []byte) (crypto.Signer, error) {
	for _, typ := range []string{pemPKCS8, pemPKCS1, pemSEC1} {
		k, err := parseKeyBlock(typ, der)
		var perr *keyParseError
		if !errors.As(err, &perr) {
			return k, err
		}
	}
	return nil, errors.New("pki: the key is neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 private key")
}

// keyParseError is a key that does not parse in the encoding tried, as
// opposed to one that parses but is of an unusable kind.
type keyParseError struct {
	typ string
	err error
}

func (e *keyParseError) Error() string { return fmt.Sprintf("pki: %s: %v", e.typ, e.err) }
func (e *keyParseError) Unwrap() error { return e.err }

func parseKeyBlock(typ string, der []byte) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch typ {
	case pemPKCS8:
		k, err = x509.ParsePKCS8PrivateKey(der)
	case pemPKCS1:
		k, err = x509.ParsePKCS1PrivateKey(der)
	case pemSEC1:
		k, err = x509.ParseECPrivateKey(der)
	}
	if err != nil {
		return nil, &keyParseError{typ, err}
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("pki: a %T key has no IKEv1 authentication method; use RSA or ECDSA", k)
}

// EncodePrivateKeyPEM writes k as a PKCS#8 "PRIVATE KEY" block, which
// strongSwan, OpenSSL and Wireshark all read whatever the algorithm.
func EncodePrivateKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// LoadPrivateKey reads a key file; the error names the file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// isPEM reports whether data is PEM text rather than DER. PEM may have any
// text before its first block (openssl prints the subject there), so the
// test looks for a block anywhere; binary DER holding that string is not a
// case worth a second guess.
func isPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "))
}
