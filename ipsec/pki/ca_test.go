package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	for _, kt := range []KeyType{RSA2048, ECDSAP256, ECDSAP384} {
		t.Run(string(kt), func(t *testing.T) {
			ca, err := NewCA("ipseclab lab demo CA", kt, testNow, testNow.AddDate(10, 0, 0), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c := ca.Cert
			if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
				t.Errorf("CA basic constraints: IsCA %v valid %v pathlen %d zero %v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
			}
			if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("CA key usage %s", keyUsageNames(c.KeyUsage))
			}
			if len(c.SubjectKeyId) != 20 {
				t.Errorf("CA subject key ID %x", c.SubjectKeyId)
			}
			if c.Subject.CommonName != "ipseclab lab demo CA" || !bytes.Equal(c.RawIssuer, c.RawSubject) {
				t.Errorf("CA subject %s issuer %s", c.Subject, c.Issuer)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("CA is not self-signed: %v", err)
			}
			if err := KeyMatches(c, ca.Key); err != nil {
				t.Error(err)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 127 {
				t.Errorf("serial %x", c.SerialNumber)
			}
		})
	}
}

func TestNewCAErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cn, want string
		kt             KeyType
		from, until    time.Time
	}{
		{"no name", "", "common name", ECDSAP256, testNow, testNow.Add(time.Hour)},
		{"no dates", "CA", "NotBefore and NotAfter", ECDSAP256, time.Time{}, testNow},
		{"reversed dates", "CA", "is not after", ECDSAP256, testNow, testNow.Add(-time.Hour)},
		{"bad key type", "CA", "unknown key type", "rsa-512", testNow, testNow.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCA(tc.cn, tc.kt, tc.from, tc.until, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCA: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	ca := testCA(t, "ipseclab lab demo CA")
	ip := net.ParseIP("192.0.2.1").To4()
	for _, tc := range []struct {
		kt    KeyType
		usage x509.KeyUsage
	}{
		{RSA2048, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{ECDSAP256, x509.KeyUsageDigitalSignature},
		{ECDSAP384, x509.KeyUsageDigitalSignature},
	} {
		t.Run(string(tc.kt), func(t *testing.T) {
			cred, err := ca.Issue(IssueRequest{
				Subject:  pkix.Name{CommonName: "gw-a", Organization: []string{"ipseclab lab demo"}},
				DNSNames: []string{"gw-a.lab"}, Emails: []string{"admin@gw-a.lab"}, IPs: []net.IP{ip},
				KeyType: tc.kt, NotBefore: testNow, NotAfter: testNow.AddDate(1, 0, 0),
			}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if len(cred.Chain) != 1 {
				t.Fatalf("chain of %d, want the leaf alone", len(cred.Chain))
			}
			c := cred.Leaf()
			if c.KeyUsage != tc.usage {
				t.Errorf("key usage %s, want %s", keyUsageNames(c.KeyUsage), keyUsageNames(tc.usage))
			}
			if len(c.ExtKeyUsage) != 0 || len(c.UnknownExtKeyUsage) != 0 {
				t.Errorf("extended key usage %v %v, want none", c.ExtKeyUsage, c.UnknownExtKeyUsage)
			}
			if c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("leaf IsCA %v, basic constraints %v", c.IsCA, c.BasicConstraintsValid)
			}
			if len(c.SubjectKeyId) != 20 || !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Errorf("key IDs: subject %x, authority %x, CA's %x", c.SubjectKeyId, c.AuthorityKeyId, ca.Cert.SubjectKeyId)
			}
			if len(c.DNSNames) != 1 || len(c.EmailAddresses) != 1 || len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(ip) {
				t.Errorf("SANs %v %v %v", c.DNSNames, c.EmailAddresses, c.IPAddresses)
			}
			if got, _ := FormatDN(c.RawSubject); got != "O=ipseclab lab demo, CN=gw-a" {
				t.Errorf("subject %q (pkix.Name's own order)", got)
			}
			if err := KeyMatches(c, cred.Key); err != nil {
				t.Error(err)
			}
			if err := VerifyChain(cred.Chain, []*x509.Certificate{ca.Cert}, testNow.Add(time.Minute), x509.KeyUsageDigitalSignature); err != nil {
				t.Errorf("fresh credential does not verify: %v", err)
			}
			if _, isRSA := cred.Key.(*rsa.PrivateKey); isRSA != (tc.kt == RSA2048) {
				t.Errorf("key %T for %s", cred.Key, tc.kt)
			}
		})
	}
}

// RawSubject keeps the written order, which a dn: ID must match RDN by RDN.
func TestIssueRawSubject(t *testing.T) {
	ca := testCA(t, "CA")
	subject := mustDN(t, "CN=gw-a, O=ipseclab lab demo")
	cred, err := ca.Issue(IssueRequest{RawSubject: subject, Subject: pkix.Name{CommonName: "ignored"},
		KeyType: ECDSAP256, NotBefore: testNow, NotAfter: testNow.AddDate(1, 0, 0)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cred.Leaf().RawSubject, subject) {
		t.Fatalf("subject %x, want %x", cred.Leaf().RawSubject, subject)
	}
	if cred.Leaf().Subject.CommonName != "gw-a" {
		t.Errorf("CommonName %q", cred.Leaf().Subject.CommonName)
	}
	if _, err := ca.Issue(IssueRequest{RawSubject: []byte{0x30, 0x05}, KeyType: ECDSAP256, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}, rand.Reader); err == nil {
		t.Error("Issue accepted a malformed RawSubject")
	}
}

func TestIssueErrors(t *testing.T) {
	ca := testCA(t, "CA")
	ok := IssueRequest{KeyType: ECDSAP256, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		ca   *CA
		req  IssueRequest
		want string
	}{
		{"no CA key", &CA{Cert: ca.Cert}, ok, "no private key"},
		{"no CA", nil, ok, "no certificate"},
		{"no dates", ca, IssueRequest{KeyType: ECDSAP256}, "NotBefore and NotAfter"},
		{"bad key type", ca, IssueRequest{KeyType: "x", NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}, "unknown key type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.ca.Issue(tc.req, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Issue: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
