package labrun

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/topology"
)

// PKIDir is where a deployed lab keeps its lab PKI: ca.pem, and NAME.pem and
// NAME.key for each certificate of topology.Lab.LabCerts, private to the
// owner like the rest of the state. It goes with the state directory.
func PKIDir(lab string) string { return filepath.Join(StateDir(lab), "pki") }

// The lab PKI's lifetimes: long enough never to expire under a lab, which
// lives for hours, or under an exported copy in a Wireshark profile.
const (
	labCALifetime   = 10 * 365 * 24 * time.Hour
	labCertLifetime = 5 * 365 * 24 * time.Hour
	// Backdated, so that a peer whose clock is a little behind accepts them.
	labBackdate = time.Hour
)

// SetupLabPKI gives the lab's certificate connections what their lab file
// leaves to the lab PKI (topology.Lab.UseLabPKI): it reads the lab's pki/
// directory, issues what is missing or no longer fits the lab file with
// the lab's CA (a new one if there is none), and writes the directory back.
// A certificate that still fits is kept as it is, key and all, so that a
// lab process started again on the same state gives every node the
// certificate it had. A lab that needs no lab PKI gets no directory.
func SetupLabPKI(lab *topology.Lab, bus *events.Bus) error {
	want := lab.LabCerts()
	if len(want) == 0 {
		return lab.UseLabPKI(nil, nil)
	}
	dir := PKIDir(lab.Name)
	l, err := pki.ReadLabDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab PKI in %s: %w (remove the directory to start a new one)", dir, err)
	}
	now := time.Now()
	caName := topology.LabCAName(lab.Name)
	if l == nil || l.CA == nil || l.CA.Cert == nil || l.CA.Key == nil || l.CA.Cert.Subject.CommonName != caName {
		ca, err := pki.NewCA(caName, caKeyType(want), now.Add(-labBackdate), now.Add(labCALifetime), rand.Reader)
		if err != nil {
			return fmt.Errorf("lab CA: %w", err)
		}
		l = &pki.Lab{CA: ca}
	}
	if l.Nodes == nil {
		l.Nodes = map[string]*pki.Credential{}
	}
	issued, kept := 0, 0
	keep := map[string]bool{}
	for _, c := range want {
		keep[c.Name] = true
		if old := l.Nodes[c.Name]; old != nil && fits(old, c.Request, l.CA.Cert, now) {
			kept++
			continue
		}
		req := c.Request
		req.NotBefore, req.NotAfter = now.Add(-labBackdate), now.Add(labCertLifetime)
		cred, err := l.CA.Issue(req, rand.Reader)
		if err != nil {
			return fmt.Errorf("lab PKI: certificate %s for %s: %w", c.Name, c.Node, err)
		}
		l.Nodes[c.Name] = cred
		issued++
	}
	for name := range l.Nodes {
		if !keep[name] {
			delete(l.Nodes, name)
		}
	}
	if issued > 0 {
		if err := l.WriteDir(dir); err != nil {
			return fmt.Errorf("lab PKI: %w", err)
		}
	}
	if err := lab.UseLabPKI(l.CA.Cert, l.Nodes); err != nil {
		return err
	}
	msg := fmt.Sprintf("lab PKI: CA %q, %d certificates issued, %d kept (%s; `ipseclab pki show` lists them)", caName, issued, kept, dir)
	events.Publisher{Bus: bus}.Publish(events.Event{Kind: events.LabProgress, Message: msg,
		Fields: map[string]any{"what": "lab-pki", "issued": issued, "kept": kept}})
	return nil
}

// caKeyType is the lab CA's key: that of its certificates when they agree,
// else RSA-2048, which every IKEv1 peer verifies.
func caKeyType(certs []topology.LabCert) pki.KeyType {
	kt := certs[0].Request.KeyType
	for _, c := range certs[1:] {
		if c.Request.KeyType != kt {
			return pki.RSA2048
		}
	}
	return kt
}

// fits reports whether a credential already made answers a request: issued
// by this CA, valid now, with the key type, the subject and at least the
// names asked for.
func fits(cred *pki.Credential, req pki.IssueRequest, ca *x509.Certificate, now time.Time) bool {
	if len(cred.Chain) == 0 || cred.Key == nil {
		return false
	}
	leaf := cred.Chain[0]
	if leaf.CheckSignatureFrom(ca) != nil || now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return false
	}
	if pki.KeyMatches(leaf, cred.Key) != nil || KeyTypeOf(leaf) != req.KeyType {
		return false
	}
	if subject, err := asn1Name(req); err != nil || !pki.EqualDN(subject, leaf.RawSubject) {
		return false
	}
	for _, d := range req.DNSNames {
		if !slices.Contains(leaf.DNSNames, d) {
			return false
		}
	}
	for _, e := range req.Emails {
		if !slices.Contains(leaf.EmailAddresses, e) {
			return false
		}
	}
	for _, ip := range req.IPs {
		if !slices.ContainsFunc(leaf.IPAddresses, func(x net.IP) bool { return x.Equal(ip) }) {
			return false
		}
	}
	return true
}

// asn1Name is the DER of a request's subject.
func asn1Name(req pki.IssueRequest) ([]byte, error) {
	if len(req.RawSubject) > 0 {
		return req.RawSubject, nil
	}
	return asn1.Marshal(req.Subject.ToRDNSequence())
}

// KeyTypeOf names a certificate's key in the lab file's words, or "".
func KeyTypeOf(c *x509.Certificate) pki.KeyType {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return pki.RSA2048
		case 3072:
			return pki.RSA3072
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return pki.ECDSAP256
		case elliptic.P384():
			return pki.ECDSAP384
		}
	}
	return ""
}
