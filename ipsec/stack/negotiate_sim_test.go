package stack_test

import (
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestNegotiation runs phase 1 and Quick Mode between two stacks on the
// simulated network, in both modes, with and without PFS, over MODP, ECP and
// Curve25519, and sends traffic both ways through the result.
func TestNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     ike.Mode
		ike, esp string
	}{
		{"main/modp2048/no-pfs", ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256"},
		{"main/modp2048/pfs", ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256-modp2048"},
		{"main/ecp384/ecp256-pfs", ike.MainMode, "aes256-sha384-ecp384", "aes128gcm16-ecp256"},
		{"main/curve25519/pfs", ike.MainMode, "aes128-sha256-curve25519", "aes256gcm16-curve25519"},
		{"main/3des-sha1-modp1024", ike.MainMode, "3des-sha1-modp1024", "3des-sha1"},
		{"aggressive/modp2048/pfs", ike.AggressiveMode, "aes128-sha256-modp2048", "aes128-sha256-modp2048"},
		{"aggressive/ecp256", ike.AggressiveMode, "aes256-sha256-ecp256", "aes128gcm16"},
		{"aggressive/curve25519/pfs", ike.AggressiveMode, "aes128-sha512-curve25519", "aes128-sha1-curve25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.IKEMessage, events.Phase1Up, events.Phase2Up)
			ca, cb := connPair(t, tc.mode, tc.ike, tc.esp)
			a, b := w.pair(ca, cb, nil)
			if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
				t.Fatal(err)
			}
			x, _ := checkPairMirrors(t, a, b)
			if x.Proposal != espProposals(t, tc.esp)[0].String() || x.Mode != "tunnel" || x.UDPEncap {
				t.Errorf("A's pair: %s %s encap=%v", x.Proposal, x.Mode, x.UDPEncap)
			}
			for _, n := range []*gw{a, b} {
				st := n.stack.SAs()
				if len(st.ISAKMP) != 1 || st.ISAKMP[0].State != "established" || st.ISAKMP[0].Proposal != tc.ike {
					t.Errorf("%s's ISAKMP SAs: %+v", n.name, st.ISAKMP)
				}
			}
			total := 6
			if tc.mode == ike.AggressiveMode {
				total = 3
			}
			for i := 1; i <= total; i++ {
				if got := countMessages(rec, "A", tc.mode.String(), i); got != 1 {
					t.Errorf("A sent or received %s message %d %d times", tc.mode, i, got)
				}
			}
			sendThrough(t, a, b, netip.MustParseAddrPort("10.1.0.10:1000"), netip.MustParseAddrPort("10.2.0.10:2000"), "hello B")
			sendThrough(t, b, a, netip.MustParseAddrPort("10.2.0.10:2000"), netip.MustParseAddrPort("10.1.0.10:1000"), "hello A")
		})
	}
}

func countMessages(r *recorder, node, exchange string, num int) int {
	n := 0
	for _, e := range r.all() {
		if e.Kind == events.IKEMessage && e.Node == node && e.IKE != nil && e.IKE.Exchange == exchange && e.IKE.MsgNum == num {
			n++
		}
	}
	return n
}
