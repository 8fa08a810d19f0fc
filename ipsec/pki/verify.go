package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The reasons a chain is refused. Each is a distinct sentinel so that the
// exchange can pick the notify and the timeline the explanation; VerifyChain
// returns them inside a *ChainError, so errors.Is and errors.As both work.
var (
	// ErrUnknownCA: the chain does not lead to any of the trusted CAs.
	ErrUnknownCA = errors.New("pki: certificate not issued by a trusted CA")
	// ErrExpired: now is after a certificate's notAfter.
	ErrExpired = errors.New("pki: certificate expired")
	// ErrNotYetValid: now is before a certificate's notBefore.
	ErrNotYetValid = errors.New("pki: certificate not yet valid")
	// ErrKeyUsage: the leaf's keyUsage does not allow the operation.
	ErrKeyUsage = errors.New("pki: certificate key usage does not allow this use")
)

// ChainError is a chain refused by one rule: Err is the sentinel, Cert the
// certificate the rule failed on, and the message names it with its dates
// or its issuer.
type ChainError struct {
	Err  error
	Cert *x509.Certificate
	msg  string
}

func (e *ChainError) Error() string { return e.msg }
func (e *ChainError) Unwrap() error { return e.Err }

func chainError(kind error, c *x509.Certificate, format string, args ...any) *ChainError {
	return &ChainError{Err: kind, Cert: c, msg: "pki: " + fmt.Sprintf(format, args...)}
}

// VerifyChain checks chain (leaf first, intermediates after, the CA
// optional) against roots at time now, and the leaf's key usage against
// usage: x509.KeyUsageDigitalSignature for signature authentication,
// x509.KeyUsageKeyEncipherment for public-key encryption, 0 for neither.
//
// The rules run in the order that makes the first error the most useful:
// whether the chain leads to a trusted CA at all, then the validity dates
// of every certificate on the path, then the leaf's key usage. A final pass
// through crypto/x509's verifier catches what the lab never produces but a
// hand-made certificate might (unknown critical extensions, path length and
// name constraints); its error carries none of the sentinels.
func VerifyChain(chain []*x509.Certificate, roots []*x509.Certificate, now time.Time, usage x509.KeyUsage) error {
	if len(chain) == 0 || chain[0] == nil {
		return errors.New("pki: no certificate to verify")
	}
	leaf := chain[0]
	path, err := buildPath(chain, roots)
	if err != nil {
		return err
	}
	for _, c := range path {
		if err := checkDates(c, now); err != nil {
			return err
		}
	}
	if err := checkKeyUsage(leaf, usage); err != nil {
		return err
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		// IKE certificates carry no extended key usage (RFC 4945 §5.1.3.12);
		// x509 would otherwise demand serverAuth.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, r := range roots {
		opts.Roots.AddCert(r)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("pki: certificate %s: %w", certName(leaf), err)
	}
	return nil
}

// buildPath follows issuer names from the leaf through the certificates the
// peer sent to one of roots, checking each signature, and returns the path
// leaf first, root last. A leaf that is itself one of roots is a path of
// one: a self-signed certificate configured as trusted.
func buildPath(chain, roots []*x509.Certificate) ([]*x509.Certificate, error) {
	leaf := chain[0]
	if len(roots) == 0 {
		return nil, chainError(ErrUnknownCA, leaf, "certificate %s cannot be checked: no CA certificate is configured", certName(leaf))
	}
	path := []*x509.Certificate{leaf}
	used := make([]bool, len(chain))
	used[0] = true
	cur := leaf
	for {
		for _, r := range roots {
			if cur.Equal(r) {
				return path, nil
			}
		}
		var sameName error // a CA with the right name whose key did not sign
		for _, r := range roots {
			if !bytes.Equal(cur.RawIssuer, r.RawSubject) {
				continue
			}
			if err := cur.CheckSignatureFrom(r); err != nil {
				sameName = err
				continue
			}
			return append(path, r), nil
		}
		next := -1
		for i, c := range chain {
			if !used[i] && bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			return nil, unknownCA(cur, roots, sameName)
		}
		used[next] = true
		cur = chain[next]
		path = append(path, cur)
	}
}

func unknownCA(c *x509.Certificate, roots []*x509.Certificate, sameName error) error {
	issuer, _ := FormatDN(c.RawIssuer)
	if sameName != nil {
		return chainError(ErrUnknownCA, c,
			"certificate %s names the trusted CA %q as its issuer, but the CA's key did not sign it (another CA of the same name?): %v",
			certName(c), issuer, sameName)
	}
	trusted := make([]string, len(roots))
	for i, r := range roots {
		trusted[i] = certName(r)
	}
	if bytes.Equal(c.RawIssuer, c.RawSubject) {
		return chainError(ErrUnknownCA, c, "certificate %s is self-signed and not a trusted CA (trusted: %s)",
			certName(c), strings.Join(trusted, "; "))
	}
	return chainError(ErrUnknownCA, c, "certificate %s is issued by %q, which is not a trusted CA (trusted: %s)",
		certName(c), issuer, strings.Join(trusted, "; "))
}

func checkDates(c *x509.Certificate, now time.Time) error {
	what := "certificate"
	if c.IsCA {
		what = "CA certificate"
	}
	const layout = "2006-01-02 15:04:05 MST"
	switch {
	case now.Before(c.NotBefore):
		return chainError(ErrNotYetValid, c, "%s %s is not valid before %s (now %s)",
			what, certName(c), c.NotBefore.UTC().Format(layout), now.UTC().Format(layout))
	case now.After(c.NotAfter):
		return chainError(ErrExpired, c, "%s %s expired at %s (now %s)",
			what, certName(c), c.NotAfter.UTC().Format(layout), now.UTC().Format(layout))
	}
	return nil
}

// checkKeyUsage applies RFC 5280 §4.2.1.3 and RFC 4945 §5.1.3.2: a missing
// keyUsage extension allows everything, and for signatures nonRepudiation
// is as good as digitalSignature.
func checkKeyUsage(c *x509.Certificate, usage x509.KeyUsage) error {
	if usage == 0 || c.KeyUsage == 0 {
		return nil
	}
	missing := usage &^ c.KeyUsage
	if missing&x509.KeyUsageDigitalSignature != 0 && c.KeyUsage&x509.KeyUsageContentCommitment != 0 {
		missing &^= x509.KeyUsageDigitalSignature
	}
	if missing == 0 {
		return nil
	}
	return chainError(ErrKeyUsage, c, "certificate %s lacks key usage %s (it allows %s)",
		certName(c), keyUsageNames(missing), keyUsageNames(c.KeyUsage))
}

var keyUsageBits = []string{"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
	"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}

func keyUsageNames(u x509.KeyUsage) string {
	var names []string
	for i, n := range keyUsageBits {
		if u&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}
