package stack_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// Two road warriors behind one NAT (the same public address, different
// ports), XAUTH with one group key and Mode Config, on one gateway
// connection that serves any peer: each gets its own address and tunnel,
// and the second's INITIAL-CONTACT does not take the first's SAs, since a
// peer is its address and port, not its address alone.
func TestRoadWarriorsBehindOneNAT(t *testing.T) {
	w := newWorld(t)
	nat := w.net.AddNAT(natPub)
	gwLAN := netip.MustParsePrefix("10.2.0.0/24")
	gateway := ike.Connection{
		Name: "rw", Role: ike.Responder, Local: publicB, PSK: psk, Mode: ike.AggressiveMode,
		Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child:     ike.Child{Proposals: espProposals(t, "aes128gcm16")},
		XAuth:     &ike.XAuth{Users: map[string]string{"alice": "wonderland", "bob": "builder"}},
		ModeConfig: &ike.ModeConfig{Pool: netip.MustParsePrefix("10.9.0.0/24"),
			SplitInclude: []netip.Prefix{gwLAN}},
	}
	g := w.start("GW", w.net.AddHost("GW", publicB), nil, gateway)
	var laptops []*gw
	for i, u := range [][2]string{{"alice", "wonderland"}, {"bob", "builder"}} {
		c := ike.Connection{
			Name: "rw", Role: ike.Initiator, Local: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i)}), Remote: publicB, PSK: psk,
			Mode: ike.AggressiveMode, Proposals: gateway.Proposals, LocalID: "keyid:lab-group",
			Child: ike.Child{Proposals: gateway.Child.Proposals},
			XAuth: &ike.XAuth{User: u[0], Password: u[1]}, ModeConfig: &ike.ModeConfig{},
		}
		name := "laptop-" + u[0]
		l := w.start(name, nat.AddHost(name, c.Local), nil, c)
		if err := l.stack.Initiate(ctx(t), "rw"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		laptops = append(laptops, l)
	}
	// The gateway installs its SAs when Quick Mode 3/3 reaches it, after the
	// laptop's Initiate has returned.
	eventually(t, "the gateway's second IPsec SA pair", func() bool { return len(g.stack.SAs().IPsec) == 2 })
	st := g.stack.SAs()
	if len(st.ISAKMP) != 2 || len(st.IPsec) != 2 {
		t.Fatalf("the gateway holds %d ISAKMP SAs and %d IPsec SA pairs, want 2 and 2: %+v", len(st.ISAKMP), len(st.IPsec), st)
	}
	if st.ISAKMP[0].Remote == st.ISAKMP[1].Remote {
		t.Errorf("both laptops appear as %s", st.ISAKMP[0].Remote)
	}
	for i, l := range laptops {
		vip := l.stack.SAs().ISAKMP[0].VirtualIP
		a, err := netip.ParseAddr(vip)
		if err != nil {
			t.Fatalf("laptop %d has no address: %q", i, vip)
		}
		sendThrough(t, l, g, netip.AddrPortFrom(a, 4000), netip.AddrPortFrom(netip.MustParseAddr("10.2.0.1"), 53), "from laptop "+vip)
		sendThrough(t, g, l, netip.AddrPortFrom(netip.MustParseAddr("10.2.0.1"), 53), netip.AddrPortFrom(a, 4000), "to laptop "+vip)
	}
}

// Fifty road warriors on one gateway connection at once, ten of them behind
// one NAT: each has its own address, tunnel and traffic.
func TestFiftyRoadWarriors(t *testing.T) {
	const clients, behindNAT = 50, 10
	w := newWorld(t)
	nat := w.net.AddNAT(natPub)
	users := map[string]string{}
	for i := range clients {
		users[fmt.Sprintf("user%02d", i)] = fmt.Sprintf("pw%02d", i)
	}
	gateway := ike.Connection{
		Name: "rw", Role: ike.Responder, Local: publicB, PSK: psk, Mode: ike.AggressiveMode,
		Proposals: ikeProposals(t, "aes128-sha256-ecp256"),
		Child:     ike.Child{Proposals: espProposals(t, "aes128gcm16")},
		XAuth:     &ike.XAuth{Users: users},
		ModeConfig: &ike.ModeConfig{Pool: netip.MustParsePrefix("10.9.0.0/24"),
			SplitInclude: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}},
	}
	g := w.start("GW", w.net.AddHost("GW", publicB), nil, gateway)
	var laptops []*gw
	for i := range clients {
		user := fmt.Sprintf("user%02d", i)
		c := ike.Connection{
			Name: "rw", Role: ike.Initiator, Remote: publicB, PSK: psk, Mode: ike.AggressiveMode,
			Proposals: gateway.Proposals, LocalID: "keyid:staff", Child: ike.Child{Proposals: gateway.Child.Proposals},
			XAuth: &ike.XAuth{User: user, Password: users[user]}, ModeConfig: &ike.ModeConfig{},
		}
		var host = nat.AddHost
		if i < behindNAT {
			c.Local = netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i)})
		} else {
			c.Local = netip.AddrFrom4([4]byte{198, 51, 102, byte(i)})
			host = w.net.AddHost
		}
		l := w.start(user, host(user, c.Local), nil, c)
		if err := l.stack.Initiate(ctx(t), "rw"); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		laptops = append(laptops, l)
	}
	eventually(t, "the gateway's IPsec SA pairs", func() bool { return len(g.stack.SAs().IPsec) == clients })
	seen := map[string]bool{}
	for _, l := range laptops {
		vip := l.stack.SAs().ISAKMP[0].VirtualIP
		if seen[vip] {
			t.Fatalf("%s lent twice", vip)
		}
		seen[vip] = true
		a := netip.MustParseAddr(vip)
		sendThrough(t, l, g, netip.AddrPortFrom(a, 4000), netip.AddrPortFrom(netip.MustParseAddr("10.2.0.1"), 53), "from "+l.name)
	}
	if st := g.stack.SAs(); len(st.ISAKMP) != clients {
		t.Errorf("the gateway holds %d ISAKMP SAs, want %d", len(st.ISAKMP), clients)
	}
}
