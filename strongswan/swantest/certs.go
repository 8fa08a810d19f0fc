package swantest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/strongswan"
)

// KeyType names a key algorithm and size, in the lab file's words.
type KeyType string

// The key types GenerateCerts makes.
const (
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
)

// Credential is one gateway's certificate chain, leaf first, without the CA,
// and the leaf's private key.
type Credential struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// PairCerts is the certificate material of a pair: the CA both gateways
// trust and each gateway's credential.
type PairCerts struct {
	CA    *x509.Certificate
	CAKey crypto.Signer // to issue more certificates in a test
	A, B  Credential

	// Pin makes each gateway also pin the other's certificate (remote.certs).
	Pin bool
}

// Names in the certificates GenerateCerts makes.
const (
	certOrg = "ipseclab test"
	// FQDNA and FQDNB are the dNSName subjectAltNames of A's and B's
	// certificates: "fqdn:"+FQDNA is an identity A's certificate proves.
	FQDNA = "gwa.ipseclab.test"
	FQDNB = "gwb.ipseclab.test"
)

// use puts the credential into a connection: auth pubkey, this side's chain
// and key, the CA, and the peer's certificate when pinned.
func (c Credential) use(conn *strongswan.Connection, ca *x509.Certificate, peer Credential, pin bool) {
	conn.LocalAuth, conn.RemoteAuth, conn.PSK = "pubkey", "pubkey", ""
	conn.LocalCerts, conn.PrivateKey = c.Chain, c.Key
	conn.CACerts = []*x509.Certificate{ca}
	if pin {
		conn.PeerCert = peer.Chain[0]
	}
}

// GenerateCerts makes a throwaway CA, valid from an hour ago for a day, and a
// certificate for each gateway signed by it, all with keys of type t. A's
// certificate has the subject O=ipseclab test, CN=gwA and the subjectAltNames
// FQDNA and OuterA; B's likewise. Key usage is digitalSignature (and
// keyEncipherment for RSA), with no extended key usage, as RFC 4945 wants.
func GenerateCerts(tb testing.TB, t KeyType) *PairCerts {
	tb.Helper()
	ca := Issue(tb, &x509.Certificate{
		Subject:  pkix.Name{Organization: []string{certOrg}, CommonName: "ipseclab test CA"},
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		IsCA:     true,
	}, t, nil, nil)
	return &PairCerts{
		CA:    ca.Chain[0],
		CAKey: ca.Key,
		A:     Issue(tb, LeafTemplate("gwA", FQDNA, OuterA), t, ca.Chain[0], ca.Key),
		B:     Issue(tb, LeafTemplate("gwB", FQDNB, OuterB), t, ca.Chain[0], ca.Key),
	}
}

// LeafTemplate is the template of a gateway's certificate as GenerateCerts
// makes it: subject O=ipseclab test, CN=cn, the subjectAltNames fqdn and
// addr, key usage digitalSignature.
func LeafTemplate(cn, fqdn string, addr netip.Addr) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{certOrg}, CommonName: cn},
		DNSNames:    []string{fqdn},
		IPAddresses: []net.IP{addr.AsSlice()},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
}

// Issue makes a certificate from tmpl for a new key of type t, signed by
// parent with parentKey, or self-signed when parent is nil. It fills in what
// tmpl leaves unset: a random serial number, validity from an hour ago for a
// day, basic constraints, and keyEncipherment beside digitalSignature for an
// RSA end entity.
func Issue(tb testing.TB, tmpl *x509.Certificate, t KeyType, parent *x509.Certificate, parentKey crypto.Signer) Credential {
	tb.Helper()
	key := generateKey(tb, t)
	c := *tmpl
	if c.SerialNumber == nil {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
		if err != nil {
			tb.Fatal(err)
		}
		c.SerialNumber = serial
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = time.Now().Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = time.Now().Add(24 * time.Hour)
	}
	c.BasicConstraintsValid = true
	if _, ok := key.(*rsa.PrivateKey); ok && !c.IsCA && c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		c.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if parent == nil {
		parent, parentKey = &c, key
	}
	der, err := x509.CreateCertificate(rand.Reader, &c, parent, key.Public(), parentKey)
	if err != nil {
		tb.Fatalf("create certificate %s: %v", c.Subject, err)
	}
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return Credential{Chain: []*x509.Certificate{crt}, Key: key}
}

func generateKey(tb testing.TB, t KeyType) crypto.Signer {
	tb.Helper()
	var k crypto.Signer
	var err error
	switch t {
	case RSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case ECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		err = fmt.Errorf("unknown key type %q", t)
	}
	if err != nil {
		tb.Fatalf("generate %s key: %v", t, err)
	}
	return k
}

// rdnNames are the short names strongSwan prints for the DN attributes
// GenerateCerts and common lab certificates use.
var rdnNames = map[string]string{
	"2.5.4.3":              "CN",
	"2.5.4.6":              "C",
	"2.5.4.7":              "L",
	"2.5.4.8":              "ST",
	"2.5.4.10":             "O",
	"2.5.4.11":             "OU",
	"1.2.840.113549.1.9.1": "E",
}

// SubjectDN is a certificate's subject as strongSwan writes a DN: its
// attributes in the order of the certificate's encoding (which Go's
// pkix.Name.String reverses), comma separated, e.g. "O=ipseclab test,
// CN=gwA". charon compares DNs attribute by attribute in that order. It
// covers the attribute types of rdnNames and values without commas, enough
// for the certificates of a test.
func SubjectDN(c *x509.Certificate) string {
	var parts []string
	for _, atv := range c.Subject.Names {
		name, ok := rdnNames[atv.Type.String()]
		if !ok {
			name = atv.Type.String()
		}
		parts = append(parts, fmt.Sprintf("%s=%v", name, atv.Value))
	}
	return strings.Join(parts, ", ")
}
