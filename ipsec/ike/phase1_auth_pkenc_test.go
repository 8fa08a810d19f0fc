package ike_test

import (
	"bytes"
	"crypto/x509"
	"slices"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// pkencConns is conns with public-key encryption from p: each side knows
// the other's certificate beforehand. Both are known by their DN.
func pkencConns(t testing.TB, mode ike.Mode, method ike.AuthKind, p testPKI) (ci, cr ike.Connection) {
	ci, cr = conns(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
	ci.PSK, cr.PSK = "", ""
	cas := []*x509.Certificate{p.ca.Cert}
	ci.Auth = ike.Auth{Method: method, Chain: p.i.Chain, Key: p.i.Key, CAs: cas, PeerCert: p.r.Chain[0]}
	cr.Auth = ike.Auth{Method: method, Chain: p.r.Chain, Key: p.r.Key, CAs: cas, PeerCert: p.i.Chain[0]}
	ci.LocalID, cr.RemoteID = "dn:O=ipseclab, CN=gw-i", "dn:O=ipseclab, CN=gw-i"
	cr.LocalID, ci.RemoteID = "dn:O=ipseclab, CN=gw-r", "dn:O=ipseclab, CN=gw-r"
	return ci, cr
}

func TestPublicKeyEncryption(t *testing.T) {
	pk := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	for _, tc := range []struct {
		method ike.AuthKind
		mode   ike.Mode
		number isakmp.AuthMethod
		kx     []string // the payloads of MM3 or AM1 as sent, repeats once
	}{
		{ike.AuthRSAEncryption, ike.MainMode, isakmp.AuthMethodRSAEnc, []string{"KE", "HASH", "ID", "NONCE", "NAT-D"}},
		{ike.AuthRSARevisedEncryption, ike.MainMode, isakmp.AuthMethodRSARevisedEnc, []string{"HASH", "NONCE", "KE", "ID", "NAT-D"}},
		{ike.AuthRSAEncryption, ike.AggressiveMode, isakmp.AuthMethodRSAEnc, []string{"SA", "HASH", "KE", "ID", "NONCE", "VID"}},
		{ike.AuthRSARevisedEncryption, ike.AggressiveMode, isakmp.AuthMethodRSARevisedEnc, []string{"SA", "VID", "HASH", "NONCE", "KE", "ID"}},
	} {
		t.Run(tc.mode.String()+"/"+tc.method.String(), func(t *testing.T) {
			ci, cr := pkencConns(t, tc.mode, tc.method, pk)
			p, evs, err := negotiate(t, ci, cr, nil)
			if err != nil {
				t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
			}
			for side, e := range map[string]*ike.Engine{"initiator": p.i, "responder": p.r} {
				st := e.SAs()
				if len(st.ISAKMP) != 1 || st.ISAKMP[0].State != "established" || len(st.IPsec) != 1 {
					t.Errorf("%s holds %+v", side, st)
				}
			}
			first, err := isakmp.DecodeSealed(p.wire.log[0].data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := isakmp.ParsePhase1Attributes(isakmp.First[*isakmp.SA](first).Proposals[0].Transforms[0].Attributes)
			if err != nil || a.AuthMethod != tc.number {
				t.Errorf("the offer's auth method is %v (%v), want %v", a.AuthMethod, err, tc.number)
			}
			kx := 2 // MM3
			if tc.mode == ike.AggressiveMode {
				kx = 0
			}
			m, err := isakmp.DecodeSealed(p.wire.log[kx].data)
			if err != nil {
				t.Fatal(err)
			}
			names := slices.Compact(m.PayloadNames()) // one VID for all
			if got := strings.Join(names, ", "); got != strings.Join(tc.kx, ", ") {
				t.Errorf("the initiator's key exchange message carries %s, want %s", got, strings.Join(tc.kx, ", "))
			}
			// Neither identity ever crosses the wire in the clear: not
			// the DNs, not even in Aggressive Mode.
			for i, d := range p.wire.log {
				for _, c := range []*x509.Certificate{pk.i.Chain[0], pk.r.Chain[0]} {
					if bytes.Contains(d.data, c.RawSubject) {
						t.Errorf("message %d carries %s in the clear", i+1, c.Subject)
					}
				}
			}
			if got := findEvents(evs, events.PeerCertificate); len(got) != 2 {
				t.Errorf("%d peer-certificate events, want one per side", len(got))
			}
			for _, e := range findEvents(evs, events.Phase1Up) {
				if !strings.Contains(e.Explain, "public-key encryption") {
					t.Errorf("phase 1 up explains %q", e.Explain)
				}
			}
		})
	}
}

// flipIn changes one byte in the body of the first payload of type pt in
// the initiator's key exchange message (MM3 or AM1), on its way: in the
// middle, which RSA's PKCS#1 padding catches.
func flipIn(pt isakmp.PayloadType) func(*datagram) {
	return flipAt(pt, func(n int) int { return n / 2 })
}

// flipCount changes, in a body encrypted under Ke (RFC 2409 §5.3), the byte
// of the block before the last that the CBC chain puts onto the padding's
// count: the count becomes one that the padding cannot have.
func flipCount(pt isakmp.PayloadType) func(*datagram) {
	return flipAt(pt, func(n int) int { return n - 16 - 1 })
}

func flipAt(pt isakmp.PayloadType, at func(n int) int) func(*datagram) {
	return func(d *datagram) {
		m, err := isakmp.DecodeSealed(d.data)
		if err != nil || d.to.Addr() != addrR || m.Header.Flags&isakmp.FlagEncryption != 0 || isakmp.First[*isakmp.Nonce](m) == nil {
			return
		}
		for _, p := range m.Payloads {
			if p.Type() == pt {
				body := p.Body()
				d.data[bytes.Index(d.data, body)+at(len(body))] ^= 0x40
				return
			}
		}
	}
}

func TestPublicKeyEncryptionFailures(t *testing.T) {
	good := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	other := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	for _, tc := range []struct {
		name   string
		method ike.AuthKind
		mode   ike.Mode
		setup  func(ci, cr *ike.Connection)
		tamper func(*datagram)
		notify isakmp.NotifyType
		reason string
	}{
		// A payload that does not decrypt: never answered as such; the
		// exchange goes on, and the hash fails.
		{"the nonce does not decrypt", ike.AuthRSAEncryption, ike.MainMode, nil, flipIn(isakmp.PayloadNonce),
			isakmp.NotifyAuthenticationFailed, "the NONCE of Main Mode 3/6 did not decrypt"},
		{"the identity does not decrypt", ike.AuthRSAEncryption, ike.MainMode, nil, flipIn(isakmp.PayloadID),
			isakmp.NotifyAuthenticationFailed, "the ID of Main Mode 3/6 did not decrypt"},
		{"the revised nonce does not decrypt", ike.AuthRSARevisedEncryption, ike.MainMode, nil, flipIn(isakmp.PayloadNonce),
			isakmp.NotifyAuthenticationFailed, "Main Mode 5/6 does not decrypt: the NONCE of Main Mode 3/6 did not decrypt"},
		{"the revised KE does not decrypt", ike.AuthRSARevisedEncryption, ike.MainMode, nil, flipCount(isakmp.PayloadKE),
			isakmp.NotifyAuthenticationFailed, "the KE of Main Mode 3/6 did not decrypt"},
		{"the revised identity does not decrypt", ike.AuthRSARevisedEncryption, ike.MainMode, nil, flipCount(isakmp.PayloadID),
			isakmp.NotifyAuthenticationFailed, "the ID of Main Mode 3/6 did not decrypt"},
		// In Aggressive Mode the responder answers AM1 as if all was well;
		// its HASH_R then fails at the initiator.
		{"an Aggressive Mode nonce does not decrypt", ike.AuthRSARevisedEncryption, ike.AggressiveMode, nil, flipIn(isakmp.PayloadNonce),
			isakmp.NotifyAuthenticationFailed, "HASH_R does not match"},

		// Wrong keys.
		{"the initiator encrypts to a certificate the responder does not hold", ike.AuthRSAEncryption, ike.MainMode, func(ci, cr *ike.Connection) {
			ci.Auth.PeerCert, ci.Auth.CAs = other.r.Chain[0], nil
		}, nil, isakmp.NotifyCertificateUnavailable, "HASH(1) names a certificate this side does not hold"},
		{"the responder encrypts to a certificate whose key the initiator does not hold", ike.AuthRSARevisedEncryption, ike.MainMode, func(ci, cr *ike.Connection) {
			cr.Auth.PeerCert, cr.Auth.CAs = other.i.Chain[0], nil
		}, nil, isakmp.NotifyAuthenticationFailed, "Main Mode 5/6 does not decrypt: the two sides derived different keys: one could not read the nonce encrypted to it"},
		{"the peer's certificate is from an unknown CA", ike.AuthRSAEncryption, ike.MainMode, func(ci, cr *ike.Connection) {
			ci.Auth.PeerCert = other.r.Chain[0]
		}, nil, isakmp.NotifyInvalidCertAuthority, "to whose key our nonce would go"},

		// The hash is right, but the identity is not the certificate's.
		{"the initiator's ID is not in its certificate", ike.AuthRSAEncryption, ike.MainMode, func(ci, cr *ike.Connection) {
			ci.LocalID, cr.RemoteID = "fqdn:somebody.else", ""
		}, nil, isakmp.NotifyInvalidIDInformation, "somebody.else"},
		{"the responder's ID is not in its certificate", ike.AuthRSARevisedEncryption, ike.AggressiveMode, func(ci, cr *ike.Connection) {
			cr.LocalID, ci.RemoteID = "fqdn:gw-x.example", ""
		}, nil, isakmp.NotifyInvalidIDInformation, "gw-x.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, cr := pkencConns(t, tc.mode, tc.method, good)
			if tc.setup != nil {
				tc.setup(&ci, &cr)
			}
			p, evs, err := negotiate(t, ci, cr, tc.tamper)
			if err == nil {
				t.Fatal("initiate succeeded")
			}
			reason, notify := failure(t, evs)
			if !strings.Contains(reason, tc.reason) || notify != tc.notify.String() {
				t.Errorf("reason %q, notify %q; want %q and %s\n%s", reason, notify, tc.reason, tc.notify, eventLines(evs))
			}
			for _, sa := range p.i.SAs().ISAKMP {
				if sa.State == "established" {
					t.Errorf("the initiator's ISAKMP SA is established")
				}
			}
			// What did not decrypt was not answered: the responder sent
			// its key exchange message all the same.
			if tc.tamper != nil {
				want := "Main Mode 4/6 sent"
				if tc.mode == ike.AggressiveMode {
					want = "Aggressive Mode 2/3 sent"
				}
				if !strings.Contains(eventLines(findEvents(evs, events.IKEMessage)), want) {
					t.Errorf("the responder did not go on with %q:\n%s", want, eventLines(evs))
				}
			}
		})
	}
}

// Connection.Validate: RSA keys only, the peer's certificate required, and
// in Aggressive Mode proposals that share what AM1 uses before the choice.
func TestPublicKeyEncryptionConfig(t *testing.T) {
	rsaPKI := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	ecPKI := newTestPKI(t, pki.ECDSAP256, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	proposals := func(t *testing.T, s ...string) []proposal.Proposal {
		ps, err := proposal.ParseList(proposal.IKE, s)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		method ike.AuthKind
		change func(t *testing.T, c *ike.Connection)
		want   string // "" when valid
	}{
		{"valid", ike.AuthRSAEncryption, nil, ""},
		{"an ECDSA key", ike.AuthRSAEncryption, func(t *testing.T, c *ike.Connection) {
			c.Auth.Chain, c.Auth.Key = ecPKI.i.Chain, ecPKI.i.Key
		}, "must be RSA, not ECDSA P-256"},
		{"no peer certificate", ike.AuthRSARevisedEncryption, func(t *testing.T, c *ike.Connection) {
			c.Auth.PeerCert = nil
		}, "the peer's certificate is required"},
		{"an ECDSA peer certificate", ike.AuthRSAEncryption, func(t *testing.T, c *ike.Connection) {
			c.Auth.PeerCert = ecPKI.r.Chain[0]
		}, "the peer's certificate holds ECDSA P-256"},
		{"Main Mode proposals may differ", ike.AuthRSARevisedEncryption, func(t *testing.T, c *ike.Connection) {
			c.Proposals = proposals(t, "aes128-sha256-modp2048", "aes256-sha1-modp2048")
		}, ""},
		{"Aggressive Mode with two hashes", ike.AuthRSAEncryption, func(t *testing.T, c *ike.Connection) {
			c.Mode, c.Proposals = ike.AggressiveMode, proposals(t, "aes128-sha256-modp2048", "aes128-sha1-modp2048")
		}, "must share one hash"},
		{"Aggressive Mode with two ciphers, revised", ike.AuthRSARevisedEncryption, func(t *testing.T, c *ike.Connection) {
			c.Mode, c.Proposals = ike.AggressiveMode, proposals(t, "aes128-sha256-modp2048", "aes256-sha256-modp2048")
		}, "must share one cipher"},
		{"Aggressive Mode with two ciphers, not revised", ike.AuthRSAEncryption, func(t *testing.T, c *ike.Connection) {
			c.Mode, c.Proposals = ike.AggressiveMode, proposals(t, "aes128-sha256-modp2048", "aes256-sha256-modp2048")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, _ := pkencConns(t, ike.MainMode, tc.method, rsaPKI)
			if tc.change != nil {
				tc.change(t, &ci)
			}
			err := ci.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// The revised method with ciphers whose keys are longer than the prf's
// output (Ke_i expanded as Appendix B expands Ka) and with 8-byte blocks.
func TestRevisedEncryptionSuites(t *testing.T) {
	pk := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	for _, suite := range []string{"aes256-sha1-modp2048", "3des-sha1-modp2048", "aes192-md5-modp2048"} {
		for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
			t.Run(suite+"/"+mode.String(), func(t *testing.T) {
				ci, cr := pkencConns(t, mode, ike.AuthRSARevisedEncryption, pk)
				ps, err := proposal.ParseList(proposal.IKE, []string{suite})
				if err != nil {
					t.Fatal(err)
				}
				ci.Proposals, cr.Proposals = ps, ps
				if _, evs, err := negotiate(t, ci, cr, nil); err != nil {
					t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
				}
			})
		}
	}
}
