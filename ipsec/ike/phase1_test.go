package ike_test

import (
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestPhase1SecretsEndWithTheExchange: the Diffie-Hellman private key and
// the nonces of phase 1 are wiped, and the state that held them dropped, on
// both sides as soon as the ISAKMP SA is up, or as soon as phase 1 fails;
// Quick Mode, which runs after, needs none of them.
func TestPhase1SecretsEndWithTheExchange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     ike.Mode
		suite    string
		wrongPSK bool
	}{
		{name: "main-modp", mode: ike.MainMode, suite: "aes128-sha256-modp2048"},
		{name: "main-curve25519", mode: ike.MainMode, suite: "aes128-sha256-curve25519"},
		{name: "aggressive-ecp256", mode: ike.AggressiveMode, suite: "aes128-sha256-ecp256"},
		{name: "main-wrong-psk", mode: ike.MainMode, suite: "aes128-sha256-modp2048", wrongPSK: true},
		{name: "aggressive-wrong-psk", mode: ike.AggressiveMode, suite: "aes128-sha256-modp2048", wrongPSK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, cr := conns(t, tc.mode, tc.suite, "aes128gcm16")
			ci.Child.Start = ike.StartStart // MM1 or AM1 leaves within Start
			if tc.wrongPSK {
				cr.PSK = "not the initiator's"
			}
			p := newPair(t, 5, ci, cr)
			if err := p.i.Start(); err != nil {
				t.Fatal(err)
			}
			initiator := p.i.ProbePhase1("lab")
			p.deliver() // the first message
			responder := p.r.ProbePhase1("lab")
			if initiator == nil || responder == nil || !initiator.Held() || !responder.Held() {
				t.Fatal("no phase 1 state while phase 1 runs")
			}
			for p.deliver() { // the rest of phase 1, and Quick Mode if it comes up
			}
			for side, e := range map[string]*ike.Engine{"initiator": p.i, "responder": p.r} {
				st := e.SAs()
				up := len(st.ISAKMP) == 1 && st.ISAKMP[0].State == "established"
				if up != !tc.wrongPSK || (up && len(st.IPsec) != 1) {
					t.Errorf("%s holds %+v", side, st)
				}
			}
			for side, pr := range map[string]*ike.Phase1Probe{"initiator": initiator, "responder": responder} {
				if pr.Held() {
					t.Errorf("the %s's ISAKMP SA still holds its phase 1 state", side)
				}
				if err := pr.Wiped(); err != nil {
					t.Errorf("%s: %v", side, err)
				}
			}
		})
	}
}

// TestQuickModePFSKeyWiped: a Quick Mode's own Diffie-Hellman private key
// (PFS) is wiped once g^qm xy exists, on both sides, as phase 1's is.
func TestQuickModePFSKeyWiped(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16-modp2048")
	p := newPair(t, 6, ci, cr)
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	for side, e := range map[string]*ike.Engine{"initiator": p.i, "responder": p.r} {
		n, err := e.PFSKeysWiped()
		if n != 1 || err != nil {
			t.Errorf("%s: %d PFS keys seen: %v", side, n, err)
		}
	}
}
