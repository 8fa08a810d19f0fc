package pki

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifyChain(t *testing.T) {
	ca := testCA(t, "Lab CA")
	other := testCA(t, "Other CA")
	sameName := testCA(t, "Lab CA") // another key under the trusted CA's name
	roots := []*x509.Certificate{ca.Cert}

	leaf := func(tmpl *x509.Certificate, issuer *CA) *x509.Certificate {
		return makeCert(t, tmpl, ecKey(t, elliptic.P256()), issuer.Cert, issuer.Key)
	}
	good := leaf(leafTemplate("gw-a"), ca)

	// An intermediate CA between a root without a path length limit and
	// the leaf (the lab CA's limit of 0 forbids one).
	rootKey := ecKey(t, elliptic.P256())
	root := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Root CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, rootKey, nil, nil)
	interKey := ecKey(t, elliptic.P256())
	inter := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Lab Sub CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, interKey, root, rootKey)
	viaInter := makeCert(t, leafTemplate("gw-c"), ecKey(t, elliptic.P256()), inter, interKey)

	expiredTmpl := leafTemplate("gw-old")
	expiredTmpl.NotBefore, expiredTmpl.NotAfter = testNow.AddDate(-2, 0, 0), testNow.AddDate(-1, 0, 0)
	expired := leaf(expiredTmpl, ca)

	futureTmpl := leafTemplate("gw-new")
	futureTmpl.NotBefore = testNow.Add(24 * time.Hour)
	future := leaf(futureTmpl, ca)

	encOnlyTmpl := leafTemplate("gw-enc")
	encOnlyTmpl.KeyUsage = x509.KeyUsageKeyEncipherment
	encOnly := leaf(encOnlyTmpl, ca)

	nonRepTmpl := leafTemplate("gw-nr")
	nonRepTmpl.KeyUsage = x509.KeyUsageContentCommitment
	nonRep := leaf(nonRepTmpl, ca)

	noKUTmpl := leafTemplate("gw-noku")
	noKUTmpl.KeyUsage = 0
	noKU := leaf(noKUTmpl, ca)

	expiredCAKey := ecKey(t, elliptic.P256())
	expiredCA := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Old CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: testNow.AddDate(-5, 0, 0), NotAfter: testNow.AddDate(-1, 0, 0)}, expiredCAKey, nil, nil)
	underExpiredCA := makeCert(t, leafTemplate("gw-d"), ecKey(t, elliptic.P256()), expiredCA, expiredCAKey)

	selfKey := ecKey(t, elliptic.P256())
	self := makeCert(t, leafTemplate("gw-self"), selfKey, nil, nil)

	for _, tc := range []struct {
		name     string
		chain    []*x509.Certificate
		roots    []*x509.Certificate
		usage    x509.KeyUsage
		want     error  // nil or a sentinel
		failCert string // the subject the ChainError names
		text     []string
	}{
		{name: "good", chain: []*x509.Certificate{good}, roots: roots, usage: x509.KeyUsageDigitalSignature},
		{name: "good, CA sent too", chain: []*x509.Certificate{good, ca.Cert}, roots: roots, usage: x509.KeyUsageDigitalSignature},
		{name: "good, among several roots", chain: []*x509.Certificate{good}, roots: []*x509.Certificate{other.Cert, ca.Cert}, usage: x509.KeyUsageDigitalSignature},
		{name: "good, via intermediate", chain: []*x509.Certificate{viaInter, inter}, roots: []*x509.Certificate{root}, usage: x509.KeyUsageDigitalSignature},
		{name: "good, no usage asked", chain: []*x509.Certificate{encOnly}, roots: roots},
		{name: "nonRepudiation signs", chain: []*x509.Certificate{nonRep}, roots: roots, usage: x509.KeyUsageDigitalSignature},
		{name: "no keyUsage extension allows all", chain: []*x509.Certificate{noKU}, roots: roots, usage: x509.KeyUsageKeyEncipherment},
		{name: "self-signed leaf configured as trusted", chain: []*x509.Certificate{self}, roots: []*x509.Certificate{self}, usage: x509.KeyUsageDigitalSignature},

		{name: "unknown CA", chain: []*x509.Certificate{good}, roots: []*x509.Certificate{other.Cert}, usage: x509.KeyUsageDigitalSignature,
			want: ErrUnknownCA, failCert: "CN=gw-a", text: []string{`issued by "CN=Lab CA"`, `"CN=Other CA"`}},
		{name: "CA of the same name, other key", chain: []*x509.Certificate{good}, roots: []*x509.Certificate{sameName.Cert}, usage: x509.KeyUsageDigitalSignature,
			want: ErrUnknownCA, failCert: "CN=gw-a", text: []string{"same name"}},
		{name: "intermediate missing", chain: []*x509.Certificate{viaInter}, roots: []*x509.Certificate{root}, usage: x509.KeyUsageDigitalSignature,
			want: ErrUnknownCA, failCert: "CN=gw-c", text: []string{`issued by "CN=Lab Sub CA"`}},
		{name: "self-signed leaf", chain: []*x509.Certificate{self}, roots: roots, usage: x509.KeyUsageDigitalSignature,
			want: ErrUnknownCA, failCert: "CN=gw-self", text: []string{"self-signed"}},
		{name: "no roots", chain: []*x509.Certificate{good}, usage: x509.KeyUsageDigitalSignature,
			want: ErrUnknownCA, failCert: "CN=gw-a", text: []string{"no CA certificate"}},
		{name: "expired", chain: []*x509.Certificate{expired}, roots: roots, usage: x509.KeyUsageDigitalSignature,
			want: ErrExpired, failCert: "CN=gw-old", text: []string{"expired at 2025-03-01 12:00:00 UTC", "now 2026-03-01 12:00:00 UTC"}},
		{name: "not yet valid", chain: []*x509.Certificate{future}, roots: roots, usage: x509.KeyUsageDigitalSignature,
			want: ErrNotYetValid, failCert: "CN=gw-new", text: []string{"not valid before 2026-03-02 12:00:00 UTC"}},
		{name: "CA expired", chain: []*x509.Certificate{underExpiredCA}, roots: []*x509.Certificate{expiredCA}, usage: x509.KeyUsageDigitalSignature,
			want: ErrExpired, failCert: "CN=Old CA", text: []string{"CA certificate"}},
		{name: "missing digitalSignature", chain: []*x509.Certificate{encOnly}, roots: roots, usage: x509.KeyUsageDigitalSignature,
			want: ErrKeyUsage, failCert: "CN=gw-enc", text: []string{"lacks key usage digitalSignature", "allows keyEncipherment"}},
		{name: "missing keyEncipherment", chain: []*x509.Certificate{good}, roots: roots, usage: x509.KeyUsageKeyEncipherment,
			want: ErrKeyUsage, failCert: "CN=gw-a", text: []string{"lacks key usage keyEncipherment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyChain(tc.chain, tc.roots, testNow, tc.usage)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyChain: %v, want %v", err, tc.want)
			}
			for _, other := range []error{ErrUnknownCA, ErrExpired, ErrNotYetValid, ErrKeyUsage} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
			}
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ChainError", err)
			}
			if got, _ := FormatDN(ce.Cert.RawSubject); got != tc.failCert {
				t.Errorf("ChainError.Cert is %q, want %q", got, tc.failCert)
			}
			if !strings.Contains(err.Error(), tc.failCert) {
				t.Errorf("message %q does not name %s", err, tc.failCert)
			}
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
		})
	}

	// What only crypto/x509's final pass sees: an intermediate under the
	// lab CA, whose path length is 0. The error names the leaf but is none
	// of the sentinels.
	labInter := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Lab Sub CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, interKey, ca.Cert, ca.Key)
	err := VerifyChain([]*x509.Certificate{viaInter, labInter}, roots, testNow, x509.KeyUsageDigitalSignature)
	if err == nil || !strings.Contains(err.Error(), "CN=gw-c") || !strings.Contains(err.Error(), "path length") {
		t.Errorf("intermediate under a path length 0 CA: %v", err)
	}
	for _, sentinel := range []error{ErrUnknownCA, ErrExpired, ErrNotYetValid, ErrKeyUsage} {
		if errors.Is(err, sentinel) {
			t.Errorf("path length error is %v", sentinel)
		}
	}

	if err := VerifyChain(nil, roots, testNow, 0); err == nil {
		t.Error("VerifyChain of no certificate succeeded")
	}
}

// A node certificate, which is no CA, cannot sign another: the path builder
// must not accept it as an intermediate, whatever the names say.
func TestVerifyChainLeafCannotIssue(t *testing.T) {
	ca := testCA(t, "Lab CA")
	midKey := ecKey(t, elliptic.P256())
	mid := makeCert(t, leafTemplate("gw-a"), midKey, ca.Cert, ca.Key)
	bad := makeCert(t, leafTemplate("gw-evil"), ecKey(t, elliptic.P256()), mid, midKey)
	err := VerifyChain([]*x509.Certificate{bad, mid}, []*x509.Certificate{ca.Cert}, testNow, x509.KeyUsageDigitalSignature)
	if !errors.Is(err, ErrUnknownCA) {
		t.Fatalf("VerifyChain: %v, want ErrUnknownCA", err)
	}
}
