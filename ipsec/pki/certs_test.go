package pki

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertificatesRoundTrip(t *testing.T) {
	ca := testCA(t, "CA")
	leaf := makeCert(t, leafTemplate("gw-a"), ecKey(t, elliptic.P256()), ca.Cert, ca.Key)
	keyPEM, err := EncodePrivateKeyPEM(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM := EncodeCertificatesPEM([]*x509.Certificate{leaf, ca.Cert})
	for _, tc := range []struct {
		name string
		data []byte
		want []*x509.Certificate
	}{
		{"one PEM", EncodeCertificatePEM(leaf), []*x509.Certificate{leaf}},
		{"chain PEM", chainPEM, []*x509.Certificate{leaf, ca.Cert}},
		{"one DER", leaf.Raw, []*x509.Certificate{leaf}},
		{"concatenated DER", append(append([]byte{}, leaf.Raw...), ca.Cert.Raw...), []*x509.Certificate{leaf, ca.Cert}},
		{"PEM with text and a key", append(append([]byte("subject=CN=gw-a\n"), keyPEM...), EncodeCertificatePEM(leaf)...), []*x509.Certificate{leaf}},
		{"old label", pem.EncodeToMemory(&pem.Block{Type: "X509 CERTIFICATE", Bytes: leaf.Raw}), []*x509.Certificate{leaf}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCertificates(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Equal(tc.want[i]) {
					t.Errorf("certificate %d differs", i)
				}
			}
		})
	}
	if !bytes.Equal(EncodeCertificatesPEM([]*x509.Certificate{leaf}), EncodeCertificatePEM(leaf)) {
		t.Error("EncodeCertificatesPEM of one certificate differs from EncodeCertificatePEM")
	}
}

func TestParseCertificatesErrors(t *testing.T) {
	ca := testCA(t, "CA")
	keyPEM, _ := EncodePrivateKeyPEM(ca.Key)
	bad := append(EncodeCertificatePEM(ca.Cert), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})...)
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty", nil},
		{"junk", "neither PEM nor DER", []byte("\x01\x02")},
		{"truncated DER", "neither PEM nor DER", ca.Cert.Raw[:len(ca.Cert.Raw)-1]},
		{"key only", "no CERTIFICATE in the file (it holds PRIVATE KEY)", keyPEM},
		{"second block corrupt", "certificate 2 of the file", bad},
		{"unterminated PEM", "no PEM block", []byte("-----BEGIN CERTIFICATE-----\nAAAA")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCertificates(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCertificates: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadCertificates(t *testing.T) {
	ca := testCA(t, "CA")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "ca.der"), filepath.Join(dir, "bad.pem")
	os.WriteFile(good, ca.Cert.Raw, 0o644)
	os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	if certs, err := LoadCertificates(good); err != nil || len(certs) != 1 || !certs[0].Equal(ca.Cert) {
		t.Fatalf("LoadCertificates(DER file) = %v, %v", certs, err)
	}
	if _, err := LoadCertificates(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("LoadCertificates: %v, want an error naming %s", err, bad)
	}
	if _, err := LoadCertificates(filepath.Join(dir, "none.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadCertificates of a missing file: %v", err)
	}
}
