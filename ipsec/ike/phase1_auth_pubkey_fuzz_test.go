package ike

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// FuzzPeerCertificates gives the signature method a peer's CERT and SIG
// payloads of any content, as MM5/MM6 or AM2/AM3 would carry them: it never
// panics, every refusal names a notify, and it accepts nothing but the
// trusted certificate with a signature that verifies. Inputs stay short
// enough for the fuzzer to minimise them quickly: a P-256 certificate is
// under 600 bytes.
func FuzzPeerCertificates(f *testing.F) {
	const maxCert, maxSig = 1024, 160
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := pki.NewCA("fuzz CA", pki.ECDSAP256, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.1")
	peer, err := ca.Issue(pki.IssueRequest{Subject: pkix.Name{CommonName: "peer"}, IPs: []net.IP{addr.AsSlice()},
		KeyType: pki.ECDSAP256, NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 1, 0)}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	hash := bytes.Repeat([]byte{0x5a}, 32)
	sig, err := pki.Sign(peer.Key, hash, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	leaf := peer.Chain[0].Raw
	f.Add(leaf, sig, uint8(isakmp.CertX509Signature))
	f.Add(leaf[:len(leaf)/2], sig, uint8(isakmp.CertX509Signature))
	f.Add(ca.Cert.Raw, sig, uint8(isakmp.CertX509Signature))
	f.Add([]byte("not a certificate"), []byte{1, 2, 3}, uint8(isakmp.CertPKCS7))
	f.Add([]byte{}, []byte{}, uint8(0))

	auth := &Auth{Method: AuthPubkey, Chain: peer.Chain, Key: peer.Key, CAs: []*x509.Certificate{ca.Cert}}
	id := isakmp.NewIDAddr(addr)
	f.Fuzz(func(t *testing.T, cert, sigData []byte, enc uint8) {
		if len(cert) > maxCert || len(sigData) > maxSig {
			return
		}
		a := &pubkeyAuth{cfg: auth, method: isakmp.AuthMethodECDSAP256, rand: rand.Reader, now: func() time.Time { return now }}
		m := &isakmp.Message{Payloads: []isakmp.Payload{
			&isakmp.Cert{Encoding: isakmp.CertEncoding(enc), Data: cert}, &isakmp.Signature{Data: sigData},
		}}
		err := a.verify(m, id, hash, Initiator)
		if err == nil {
			if !bytes.Equal(cert, leaf) || enc != uint8(isakmp.CertX509Signature) || pki.Verify(peer.Chain[0].PublicKey, hash, sigData) != nil {
				t.Fatalf("accepted a certificate of %d bytes (encoding %d) with a signature of %d bytes", len(cert), enc, len(sigData))
			}
			return
		}
		var ae *authError
		if !errors.As(err, &ae) || ae.notify == 0 {
			t.Fatalf("refusal without a notify: %v", err)
		}
	})
}
