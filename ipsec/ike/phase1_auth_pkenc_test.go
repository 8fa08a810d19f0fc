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
