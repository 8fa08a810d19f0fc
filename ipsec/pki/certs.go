package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ParseCertificates reads one or more certificates, PEM (any number of
// CERTIFICATE blocks, other blocks skipped so that a file holding a
// certificate and its key works) or DER (one or several concatenated).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !isPEM(data) {
		if len(data) == 0 {
			return nil, errors.New("pki: the certificate file is empty")
		}
		certs, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("pki: neither PEM nor DER certificates: %w", err)
		}
		return certs, nil
	}
	var (
		certs []*x509.Certificate
		seen  []string
	)
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		// "X509 CERTIFICATE" is the label older OpenSSL versions wrote.
		if b.Type != pemCert && b.Type != "X509 CERTIFICATE" {
			seen = append(seen, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: certificate %d of the file: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if len(seen) == 0 {
			return nil, errors.New("pki: no PEM block in the certificate file")
		}
		return nil, fmt.Errorf("pki: no CERTIFICATE in the file (it holds %s)", strings.Join(seen, ", "))
	}
	return certs, nil
}

// LoadCertificates reads a certificate file; the error names the file.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// EncodeCertificatePEM returns c as one PEM CERTIFICATE block.
func EncodeCertificatePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: c.Raw})
}

// EncodeCertificatesPEM concatenates the PEM blocks of a chain, leaf first,
// which is the order strongSwan and OpenSSL expect in one file.
func EncodeCertificatesPEM(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, EncodeCertificatePEM(c)...)
	}
	return out
}

// certName is how messages name a certificate: its subject in strongSwan's
// notation, or its serial number when the subject is empty (a SAN-only
// certificate).
func certName(c *x509.Certificate) string {
	if s, err := FormatDN(c.RawSubject); err == nil && s != "" {
		return `"` + s + `"`
	}
	return fmt.Sprintf("with serial %x", c.SerialNumber)
}
