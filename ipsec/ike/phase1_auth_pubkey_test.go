package ike_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// testPKI is a CA and a certificate for each engine of a pair, naming its
// address (and, for the responder, an FQDN and its DN).
type testPKI struct {
	ca   *pki.CA
	i, r *pki.Credential
}

func newTestPKI(t testing.TB, kt pki.KeyType, notBefore, notAfter time.Time) testPKI {
	t.Helper()
	ca, err := pki.NewCA("ipseclab test CA", kt, pairEpoch.AddDate(-1, 0, 0), pairEpoch.AddDate(5, 0, 0), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, addr net.IP, dns ...string) *pki.Credential {
		c, err := ca.Issue(pki.IssueRequest{
			Subject: pkix.Name{CommonName: cn, Organization: []string{"ipseclab"}}, DNSNames: dns, IPs: []net.IP{addr},
			KeyType: kt, NotBefore: notBefore, NotAfter: notAfter,
		}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return testPKI{ca: ca, i: issue("gw-i", addrI.AsSlice()), r: issue("gw-r", addrR.AsSlice(), "gw-r.example")}
}

// pubkeyConns is conns with signature authentication from p.
func pubkeyConns(t testing.TB, mode ike.Mode, p testPKI) (ci, cr ike.Connection) {
	ci, cr = conns(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
	ci.PSK, cr.PSK = "", ""
	ci.Auth = ike.Auth{Method: ike.AuthPubkey, Chain: p.i.Chain, Key: p.i.Key, CAs: []*x509.Certificate{p.ca.Cert}}
	cr.Auth = ike.Auth{Method: ike.AuthPubkey, Chain: p.r.Chain, Key: p.r.Key, CAs: []*x509.Certificate{p.ca.Cert}}
	return ci, cr
}

// negotiate runs phase 1 and Quick Mode between the two, with their events
// on one bus.
func negotiate(t *testing.T, ci, cr ike.Connection, tamper func(*datagram)) (*pair, []events.Event, error) {
	t.Helper()
	bus := events.NewBus("pubkey", events.WithHistory(4096))
	p := newPairOn(t, 3, ci, cr, bus)
	p.wire.tamper = tamper
	err := p.initiate(t)
	return p, bus.Since(0), err
}

func findEvents(evs []events.Event, kind events.Kind) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestSignatureAuthentication(t *testing.T) {
	// The responder is known by its FQDN or by its certificate's subject,
	// which the initiator may write with other spacing.
	const fqdn, dn = "fqdn:gw-r.example", "dn:O=ipseclab, CN=gw-r"
	for _, tc := range []struct {
		mode         ike.Mode
		key          pki.KeyType
		method       isakmp.AuthMethod
		idR, expectR string
	}{
		{ike.MainMode, pki.RSA2048, isakmp.AuthMethodRSASig, dn, "dn:O=ipseclab,CN=gw-r"},
		{ike.MainMode, pki.ECDSAP256, isakmp.AuthMethodECDSAP256, fqdn, fqdn},
		{ike.MainMode, pki.ECDSAP384, isakmp.AuthMethodECDSAP384, fqdn, fqdn},
		{ike.MainMode, pki.ECDSAP521, isakmp.AuthMethodECDSAP521, fqdn, fqdn},
		{ike.AggressiveMode, pki.RSA2048, isakmp.AuthMethodRSASig, dn, dn},
		{ike.AggressiveMode, pki.ECDSAP256, isakmp.AuthMethodECDSAP256, fqdn, fqdn},
	} {
		t.Run(tc.mode.String()+"/"+string(tc.key), func(t *testing.T) {
			pk := newTestPKI(t, tc.key, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
			ci, cr := pubkeyConns(t, tc.mode, pk)
			cr.LocalID, ci.RemoteID = tc.idR, tc.expectR
			p, evs, err := negotiate(t, ci, cr, nil)
			if err != nil {
				t.Fatalf("initiate: %v", err)
			}
			for side, e := range map[string]*ike.Engine{"initiator": p.i, "responder": p.r} {
				st := e.SAs()
				if len(st.ISAKMP) != 1 || st.ISAKMP[0].State != "established" || len(st.IPsec) != 1 {
					t.Errorf("%s holds %+v", side, st)
				}
			}

			// The offer names the method that the key implies.
			first, err := isakmp.Decode(p.wire.log[0].data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := isakmp.ParsePhase1Attributes(isakmp.First[*isakmp.SA](first).Proposals[0].Transforms[0].Attributes)
			if err != nil || a.AuthMethod != tc.method {
				t.Errorf("the offer's auth method is %v (%v), want %v", a.AuthMethod, err, tc.method)
			}

			// Each side asked for certificates from the CA, and sent its own
			// with a signature.
			var requests, certs, sigs int
			for _, e := range findEvents(evs, events.IKEMessage) {
				if e.IKE == nil || e.IKE.Dir != events.Sent {
					continue
				}
				for _, pl := range e.IKE.Payloads {
					switch pl {
					case "CR":
						requests++
					case "CERT":
						certs++
					case "SIG":
						sigs++
					}
				}
			}
			if requests != 2 || certs != 2 || sigs != 2 {
				t.Errorf("sent %d CERTREQ, %d CERT, %d SIG; want 2 of each", requests, certs, sigs)
			}
			got := findEvents(evs, events.PeerCertificate)
			if len(got) != 2 {
				t.Fatalf("%d peer-certificate events, want one per side", len(got))
			}
			subjects := []string{got[0].Fields["subject"].(string), got[1].Fields["subject"].(string)}
			slices.Sort(subjects)
			if !strings.Contains(subjects[0], "CN=gw-i") || !strings.Contains(subjects[1], "CN=gw-r") {
				t.Errorf("verified certificates %v", subjects)
			}
			for _, e := range findEvents(evs, events.Phase1Up) {
				if !strings.Contains(e.Explain, "certificates and signatures") {
					t.Errorf("phase 1 up explains %q", e.Explain)
				}
			}
		})
	}
}

// failure is what one side reports when authentication fails: the auth-failed
// event's reason, and the notify it sent.
func failure(t *testing.T, evs []events.Event) (reason string, notify string) {
	t.Helper()
	af := findEvents(evs, events.AuthFailed)
	if len(af) == 0 {
		t.Fatalf("no auth-failed event; events:\n%s", eventLines(evs))
	}
	reason = af[0].Fields["reason"].(string)
	for _, n := range findEvents(evs, events.Notify) {
		if n.Fields["direction"] == string(events.Sent) {
			return reason, n.Fields["notify"].(string)
		}
	}
	return reason, ""
}

func eventLines(evs []events.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(string(e.Kind) + ": " + e.Message + "\n")
	}
	return b.String()
}

func TestSignatureAuthenticationFailures(t *testing.T) {
	good := newTestPKI(t, pki.ECDSAP256, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	other := newTestPKI(t, pki.ECDSAP256, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	expired := newTestPKI(t, pki.ECDSAP256, pairEpoch.AddDate(-2, 0, 0), pairEpoch.AddDate(0, 0, -1))
	future := newTestPKI(t, pki.ECDSAP256, pairEpoch.AddDate(0, 0, 1), pairEpoch.AddDate(1, 0, 0))

	// tamperAM2 changes the responder's Aggressive Mode 2/3, which travels
	// in clear.
	tamperAM2 := func(change func(m *isakmp.Message)) func(*datagram) {
		return func(d *datagram) {
			m, err := isakmp.Decode(d.data)
			if err != nil || m.Header.Exchange != isakmp.ExchangeAggressive || isakmp.First[*isakmp.Signature](m) == nil || d.to.Addr() != addrI {
				return
			}
			change(m)
			if d.data, err = m.Encode(); err != nil {
				panic(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		mode   ike.Mode
		setup  func(ci, cr *ike.Connection)
		tamper func(*datagram)
		notify isakmp.NotifyType
		reason string
	}{
		{"the initiator's CA is unknown", ike.MainMode, func(ci, cr *ike.Connection) {
			ci.Auth.Chain, ci.Auth.Key = other.i.Chain, other.i.Key
		}, nil, isakmp.NotifyInvalidCertAuthority, "CA"},
		{"the initiator's certificate has expired", ike.MainMode, func(ci, cr *ike.Connection) {
			ci.Auth.Chain, ci.Auth.Key = expired.i.Chain, expired.i.Key
			cr.Auth.CAs = []*x509.Certificate{good.ca.Cert, expired.ca.Cert}
		}, nil, isakmp.NotifyInvalidCertificate, "expired"},
		{"the initiator's certificate is not yet valid", ike.MainMode, func(ci, cr *ike.Connection) {
			ci.Auth.Chain, ci.Auth.Key = future.i.Chain, future.i.Key
			cr.Auth.CAs = []*x509.Certificate{good.ca.Cert, future.ca.Cert}
		}, nil, isakmp.NotifyInvalidCertificate, "not valid before"},
		{"the initiator's ID is not in its certificate", ike.MainMode, func(ci, cr *ike.Connection) {
			ci.LocalID = "fqdn:somebody.else"
		}, nil, isakmp.NotifyInvalidIDInformation, "somebody.else"},
		{"the responder's DN is not the one configured", ike.MainMode, func(ci, cr *ike.Connection) {
			cr.LocalID = "dn:O=ipseclab, CN=gw-r"
			ci.RemoteID = "dn:CN=gw-x, O=ipseclab"
		}, nil, isakmp.NotifyInvalidIDInformation, "gw-x"},
		{"SIG_R is altered", ike.AggressiveMode, nil, tamperAM2(func(m *isakmp.Message) {
			isakmp.First[*isakmp.Signature](m).Data[10] ^= 1
		}), isakmp.NotifyAuthenticationFailed, "SIG_R does not verify"},
		{"the responder's CERT is garbage", ike.AggressiveMode, nil, tamperAM2(func(m *isakmp.Message) {
			isakmp.First[*isakmp.Cert](m).Data = []byte("not a certificate")
		}), isakmp.NotifyInvalidCertificate, "not an X.509 certificate"},
		{"the responder sends a 64 KB CERT", ike.AggressiveMode, nil, tamperAM2(func(m *isakmp.Message) {
			isakmp.First[*isakmp.Cert](m).Data = bytes.Repeat([]byte{0x30}, 64<<10-100)
		}), isakmp.NotifyInvalidCertificate, "not an X.509 certificate"},
		{"the responder sends a chain of 9", ike.AggressiveMode, nil, tamperAM2(func(m *isakmp.Message) {
			c := isakmp.First[*isakmp.Cert](m)
			for range 8 {
				m.Payloads = append(m.Payloads, &isakmp.Cert{Encoding: c.Encoding, Data: c.Data})
			}
		}), isakmp.NotifyInvalidCertificate, "more than 8 certificates"},
		{"the responder sends no certificate", ike.AggressiveMode, nil, tamperAM2(func(m *isakmp.Message) {
			m.Payloads = slices.DeleteFunc(m.Payloads, func(p isakmp.Payload) bool { _, ok := p.(*isakmp.Cert); return ok })
		}), isakmp.NotifyCertificateUnavailable, "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, cr := pubkeyConns(t, tc.mode, good)
			if tc.setup != nil {
				tc.setup(&ci, &cr)
			}
			p, evs, err := negotiate(t, ci, cr, tc.tamper)
			if err == nil {
				t.Fatal("initiate succeeded")
			}
			reason, notify := failure(t, evs)
			if !strings.Contains(reason, tc.reason) || notify != tc.notify.String() {
				t.Errorf("reason %q, notify %q; want %q and %s", reason, notify, tc.reason, tc.notify)
			}
			// Counted where `ipseclab stats` shows it, by the side that found
			// the fault.
			if n := p.i.Stats().AuthFailed + p.r.Stats().AuthFailed; n < 1 {
				t.Errorf("auth_failed counted %d times", n)
			}
			// The side that found the fault never establishes. (A Main Mode
			// responder is established once it sends MM6, before the
			// initiator has checked it: the initiator's notify is then
			// unprotected, and ignored.)
			for _, sa := range p.i.SAs().ISAKMP {
				if sa.State == "established" {
					t.Errorf("the initiator's ISAKMP SA is established")
				}
			}
		})
	}
}

// A responder with a pre-shared key refuses an offer of signatures, and the
// event says which method was offered.
func TestSignatureOfferToAPSKResponder(t *testing.T) {
	pk := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	ci, _ := pubkeyConns(t, ike.MainMode, pk)
	_, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	_, evs, err := negotiate(t, ci, cr, nil)
	if err == nil {
		t.Fatal("initiate succeeded")
	}
	np := findEvents(evs, events.NoProposal)
	if len(np) == 0 || !strings.Contains(eventLines(np), "RSA-SIG") {
		t.Errorf("no NO-PROPOSAL-CHOSEN naming RSA-SIG:\n%s", eventLines(evs))
	}
}
