package pki

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// Credential is one side's identity material: its certificate chain (leaf
// first, without the CA) and private key.
type Credential struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Leaf is the end-entity certificate, the one whose key signs.
func (c *Credential) Leaf() *x509.Certificate {
	if c == nil || len(c.Chain) == 0 {
		return nil
	}
	return c.Chain[0]
}

// CA is a lab's certification authority: one self-signed certificate that
// issues every node's certificate directly.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed CA. Its path length is 0: a lab CA signs end
// entities only, and saying so lets a verifier reject a node certificate
// used as a CA.
func NewCA(commonName string, t KeyType, notBefore, notAfter time.Time, rand io.Reader) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("pki: the CA needs a common name")
	}
	if err := checkValidity(notBefore, notAfter); err != nil {
		return nil, err
	}
	key, err := GenerateKey(t, rand)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(pkix.Name{CommonName: commonName}, key.Public(), notBefore, notAfter, rand)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// IssueRequest describes one end-entity certificate.
type IssueRequest struct {
	Subject pkix.Name // e.g. CN=gw-a, O=ipseclab lab <lab>
	// RawSubject, when set, is the subject's DER exactly (ParseDN's output)
	// and Subject is ignored. A dn: ID must match the subject RDN by RDN in
	// order, and pkix.Name imposes its own order (C, ..., O, OU, CN), so a
	// certificate for "dn:CN=gw-a, O=Lab" needs this field.
	RawSubject []byte
	DNSNames   []string // from fqdn: IDs
	Emails     []string // from email: IDs
	IPs        []net.IP // from address IDs (the node's IKE address)
	KeyType    KeyType
	NotBefore  time.Time
	NotAfter   time.Time
}

// Issue makes a key of req.KeyType and a certificate for it signed by ca.
// Key usage is digitalSignature, plus keyEncipherment for RSA so that the
// same certificate serves RFC 2409 §5.2/5.3 public-key encryption; there is
// no extended key usage, because RFC 4945 §5.1.3.12 tells CAs to leave it
// out of IKE certificates (and the old IPsec EKU values are deprecated).
func (ca *CA) Issue(req IssueRequest, rand io.Reader) (*Credential, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("pki: the CA has no certificate or no private key")
	}
	if err := checkValidity(req.NotBefore, req.NotAfter); err != nil {
		return nil, err
	}
	if len(req.RawSubject) > 0 {
		if _, err := parseRDNs(req.RawSubject); err != nil {
			return nil, fmt.Errorf("pki: RawSubject: %w", err)
		}
	}
	key, err := GenerateKey(req.KeyType, rand)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(req.Subject, key.Public(), req.NotBefore, req.NotAfter, rand)
	if err != nil {
		return nil, err
	}
	tmpl.RawSubject = req.RawSubject
	tmpl.DNSNames, tmpl.EmailAddresses, tmpl.IPAddresses = req.DNSNames, req.Emails, req.IPs
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	return &Credential{Chain: []*x509.Certificate{cert}, Key: key}, nil
}

func checkValidity(notBefore, notAfter time.Time) error {
	if notBefore.IsZero() || notAfter.IsZero() {
		return errors.New("pki: a certificate needs both NotBefore and NotAfter")
	}
	if !notAfter.After(notBefore) {
		return fmt.Errorf("pki: NotAfter %s is not after NotBefore %s",
			notAfter.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// template fills what every certificate of the lab has: a random serial,
// the validity and a subject key identifier.
func template(subject pkix.Name, pub crypto.PublicKey, notBefore, notAfter time.Time, rand io.Reader) (*x509.Certificate, error) {
	serial, err := randomSerial(rand)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		SubjectKeyId:          ski,
		BasicConstraintsValid: true,
	}, nil
}

// randomSerial draws a positive serial of at most 16 bytes (RFC 5280
// §4.1.2.2 allows 20) from rand, so that two labs never issue the same
// issuer and serial pair, which some peers cache on.
func randomSerial(rand io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, always 16 bytes
	return new(big.Int).SetBytes(b), nil
}

// subjectKeyID is RFC 5280 §4.2.1.2's method (1), the SHA-1 of the
// subjectPublicKey BIT STRING. Go would make one for a CA only; end-entity
// certificates get one too so that tools (and an authorityKeyIdentifier
// lookup) find them the usual way.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}
