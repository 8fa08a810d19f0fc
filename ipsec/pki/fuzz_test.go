package pki

import (
	"bytes"
	"crypto/elliptic"
	"strings"
	"testing"
)

// Inputs above 4 KB add nothing to what these parsers see (a lab's
// certificates and keys are smaller) and make each run slow.
const fuzzMax = 4 << 10

// FuzzParseCertificates: any bytes, PEM or DER, give certificates or an
// error, never a panic, and what parses re-encodes to the same certificate.
func FuzzParseCertificates(f *testing.F) {
	ca := testCA(f, "Fuzz CA")
	leaf := makeCert(f, leafTemplate("gw-a"), ecKey(f, elliptic.P256()), ca.Cert, ca.Key)
	f.Add(ca.Cert.Raw)
	f.Add(EncodeCertificatePEM(leaf))
	f.Add(append(bytes.Clone(leaf.Raw), ca.Cert.Raw...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		certs, err := ParseCertificates(data)
		if err != nil {
			return
		}
		for _, c := range certs {
			back, err := ParseCertificates(EncodeCertificatePEM(c))
			if err != nil || len(back) != 1 || !back[0].Equal(c) {
				t.Fatalf("a parsed certificate does not survive PEM: %v", err)
			}
		}
	})
}

// FuzzParsePrivateKey: any bytes give an RSA or ECDSA key or an error, and a
// parsed key re-encodes as PKCS#8 to the same key.
func FuzzParsePrivateKey(f *testing.F) {
	k := ecKey(f, elliptic.P256())
	p8, _ := EncodePrivateKeyPEM(k)
	f.Add(p8)
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		key, err := ParsePrivateKey(data)
		if err != nil {
			return
		}
		enc, err := EncodePrivateKeyPEM(key)
		if err != nil {
			t.Fatalf("a parsed %s key does not encode: %v", DescribeKey(key.Public()), err)
		}
		back, err := ParsePrivateKey(enc)
		if err != nil || sameKey(back, key) != nil {
			t.Fatalf("a parsed key does not survive PKCS#8: %v", err)
		}
	})
}

// FuzzParseDN: ParseDN never panics, and what it accepts prints and parses
// back to an equal name, to the same bytes unless a "#hex" value chose a
// string type FormatDN does not print. FormatDN and EqualDN take any bytes.
func FuzzParseDN(f *testing.F) {
	for _, s := range []string{"CN=gw-a, O=Lab", "/C=CH/CN=moon", `O=a\,b, CN=\ x\ `, "1.2.3.4=#0c0178", "E=a@b", "CN="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzMax {
			return
		}
		FormatDN([]byte(s))
		EqualDN([]byte(s), []byte(s))
		der, err := ParseDN(s)
		if err != nil {
			return
		}
		text, err := FormatDN(der)
		if err != nil {
			t.Fatalf("FormatDN of ParseDN(%q): %v", s, err)
		}
		again, err := ParseDN(text)
		if err != nil || !EqualDN(again, der) || !strings.Contains(s, "#") && !bytes.Equal(again, der) {
			t.Fatalf("ParseDN(%q) = %x prints %q, which parses to %x, %v", s, der, text, again, err)
		}
	})
}
