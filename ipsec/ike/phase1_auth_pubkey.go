package ike

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// Authentication with signatures (RFC 2409 §5.1; ECDSA from RFC 4754; the
// certificate profile from RFC 4945), as strongSwan's IKEv1 does it:
//
//	Main Mode         MM3, MM4 add CERTREQ (the CAs each side trusts)
//	                  MM5: IDii, CERT, SIG_I       MM6: IDir, CERT, SIG_R
//	Aggressive Mode   AM1 adds CERTREQ
//	                  AM2: ..., IDir, CERT, SIG_R, CERTREQ    AM3: CERT, SIG_I
//
// SKEYID = prf(Ni_b | Nr_b, g^xy) holds no secret of either side's own, so
// HASH_I and HASH_R prove nothing by themselves: each side signs its hash
// with the private key that its certificate binds to its identity. The
// verifier checks the chain up to a CA it trusts (dates, key usage), that
// the certificate names the ID the peer claims, and then the signature.
// Certificates go whether or not the peer asked (strongSwan's
// send_cert = always), so that a peer that sends no CERTREQ still gets one.

// maxPeerCerts bounds the CERT payloads read from one message: a chain
// longer than this is a peer trying its luck, not a PKI.
const maxPeerCerts = 8

type pubkeyAuth struct {
	cfg     *Auth
	method  isakmp.AuthMethod // of our key: RSA-SIG, or ECDSA with its curve
	offered isakmp.AuthMethod // in the SA payload: method, or XAUTHInitRSA when XAUTH follows
	rand    io.Reader
	now     func() time.Time
	peer    *x509.Certificate // the peer's certificate, once verified
}

func newPubkeyAuth(e *Engine, c *Connection) *pubkeyAuth {
	m, _ := pki.AuthMethodOf(c.Auth.Key.Public()) // Connection.Validate checked it
	return &pubkeyAuth{cfg: &c.Auth, method: m, offered: authNumber(c), rand: e.rand, now: e.clock.Now}
}

func (a *pubkeyAuth) number() isakmp.AuthMethod { return a.offered }

func (a *pubkeyAuth) keying(p *keymat.Phase1Params) { p.AuthMethod = a.offered }

// requests names each CA we trust by its subject (RFC 4945 §3.2.6), so that
// a peer with several certificates knows which one to send.
func (a *pubkeyAuth) requests() []isakmp.Payload {
	var out []isakmp.Payload
	for _, ca := range a.cfg.CAs {
		out = append(out, &isakmp.CertRequest{Encoding: isakmp.CertX509Signature, Authority: ca.RawSubject})
	}
	return out
}

func (a *pubkeyAuth) proof(hash []byte) ([]isakmp.Payload, error) {
	sig, err := pki.Sign(a.cfg.Key, hash, a.rand)
	if err != nil {
		return nil, err
	}
	var out []isakmp.Payload
	for _, c := range a.cfg.Chain {
		out = append(out, &isakmp.Cert{Encoding: isakmp.CertX509Signature, Data: c.Raw})
	}
	return append(out, &isakmp.Signature{Data: sig}), nil
}

func (a *pubkeyAuth) carries(m *isakmp.Message) bool {
	return isakmp.First[*isakmp.Signature](m) != nil
}

func (a *pubkeyAuth) verify(m *isakmp.Message, id *isakmp.ID, want []byte, who Role) error {
	chain, err := a.peerChain(m)
	if err != nil {
		return err
	}
	leaf := chain[0]
	if a.cfg.PeerCert != nil && !leaf.Equal(a.cfg.PeerCert) {
		return &authError{isakmp.NotifyInvalidCertificate, fmt.Sprintf("the peer's certificate %q is not the one configured for it (%q)", dnString(leaf.RawSubject), dnString(a.cfg.PeerCert.RawSubject))}
	}
	if len(a.cfg.CAs) > 0 {
		if err := pki.VerifyChain(chain, a.cfg.CAs, a.now(), x509.KeyUsageDigitalSignature); err != nil {
			notify := isakmp.NotifyInvalidCertificate
			if errors.Is(err, pki.ErrUnknownCA) {
				notify = isakmp.NotifyInvalidCertAuthority
			}
			return &authError{notify, "the peer's certificate: " + strings.TrimPrefix(err.Error(), "pki: ")}
		}
	}
	if err := pki.CertifiesID(leaf, id.IDType, id.Data); err != nil {
		return &authError{isakmp.NotifyInvalidIDInformation, fmt.Sprintf("the peer claims to be %s: %s", id, strings.TrimPrefix(err.Error(), "pki: "))}
	}
	if m, err := pki.AuthMethodOf(leaf.PublicKey); err != nil || m != a.method {
		return &authError{isakmp.NotifyAuthenticationFailed, fmt.Sprintf("the peer's certificate %q holds a key for %s, but phase 1 negotiated %s: both sides sign with one method", dnString(leaf.RawSubject), m, a.method)}
	}
	sig := isakmp.First[*isakmp.Signature](m)
	if err := pki.Verify(leaf.PublicKey, want, sig.Data); err != nil {
		return &authError{isakmp.NotifyAuthenticationFailed, fmt.Sprintf("%s does not verify with the key of %q: %s", a.name(who), dnString(leaf.RawSubject), strings.TrimPrefix(err.Error(), "pki: "))}
	}
	a.peer = leaf
	return nil
}

// peerChain is the peer's certificates, leaf first, from the CERT payloads
// of m, or the one configured for the peer when it sent none.
func (a *pubkeyAuth) peerChain(m *isakmp.Message) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	unsupported := 0
	for _, p := range m.Payloads {
		c, ok := p.(*isakmp.Cert)
		if !ok {
			continue
		}
		if c.Encoding != isakmp.CertX509Signature {
			unsupported++
			continue
		}
		if len(chain) == maxPeerCerts {
			return nil, &authError{isakmp.NotifyInvalidCertificate, fmt.Sprintf("more than %d certificates in one message", maxPeerCerts)}
		}
		cert, err := x509.ParseCertificate(c.Data)
		if err != nil {
			return nil, &authError{isakmp.NotifyInvalidCertificate, fmt.Sprintf("a CERT payload of %d bytes is not an X.509 certificate: %v", len(c.Data), err)}
		}
		chain = append(chain, cert)
	}
	switch {
	case len(chain) > 0:
		return chain, nil
	case a.cfg.PeerCert != nil:
		return []*x509.Certificate{a.cfg.PeerCert}, nil
	case unsupported > 0:
		return nil, &authError{isakmp.NotifyCertTypeUnsupported, "the peer sent certificates only in encodings other than X.509 signature (4)"}
	}
	return nil, &authError{isakmp.NotifyCertificateUnavailable, "the peer sent no certificate, and none is configured for it"}
}

func (a *pubkeyAuth) verifiedPeer() *x509.Certificate { return a.peer }

func (a *pubkeyAuth) name(who Role) string {
	if who == Initiator {
		return "SIG_I"
	}
	return "SIG_R"
}

// dnString writes a DER name as strongSwan does, in the order of the
// sequence: "O=ipseclab, CN=gw-a".
func dnString(der []byte) string {
	if s, err := pki.FormatDN(der); err == nil {
		return s
	}
	return fmt.Sprintf("%x", der)
}
