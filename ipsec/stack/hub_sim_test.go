package stack_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestHubWithTenSpokes: a hub whose ten connections differ only in their
// peer's address and pre-shared key (the same proposals, the same mode)
// brings every tunnel up. In Main Mode with a pre-shared key the responder
// must choose the key by the initiator's address before it sees its identity
// (RFC 2409 §5.4), so the address decides the connection. The hub's
// connections accept their spoke from any address, as a lab's do (a NAT may
// stand between them), and only expect it at its own.
func TestHubWithTenSpokes(t *testing.T) {
	const spokes = 10
	w := newWorld(t)
	rec := w.record(events.ISAKMPConn, events.AuthFailed)
	hubAddr := netip.MustParseAddr("192.0.2.100")
	hubLAN := netip.MustParsePrefix("10.100.0.0/24")
	var hubConns, spokeConns []ike.Connection
	for i := range spokes {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(10 + i), 0, 0}), 24)
		s := ike.Connection{
			Name: fmt.Sprintf("spoke%d", i), Role: ike.Initiator, Local: addr, Remote: hubAddr,
			PSK: fmt.Sprintf("key-of-spoke-%d", i), Mode: ike.MainMode,
			Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
			Child:     ike.Child{LocalTS: lan, RemoteTS: hubLAN, Proposals: espProposals(t, "aes128gcm16")},
		}
		h := s
		h.Role, h.Local, h.Remote, h.ExpectedRemote = ike.Responder, hubAddr, netip.Addr{}, addr
		h.Child.LocalTS, h.Child.RemoteTS = hubLAN, lan
		spokeConns, hubConns = append(spokeConns, s), append(hubConns, h)
	}
	hub := w.start("hub", w.net.AddHost("hub", hubAddr), nil, hubConns...)
	var gws []*gw
	for _, c := range spokeConns {
		s := w.start(c.Name, w.net.AddHost(c.Name, c.Local), nil, c)
		if err := s.stack.Initiate(ctx(t), c.Name); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		gws = append(gws, s)
		// A responder limits its events about first messages (nobody has
		// authenticated them) to a few a second.
		w.clock.Advance(time.Second)
	}
	eventually(t, "the hub's IPsec SA pairs", func() bool { return len(hub.stack.SAs().IPsec) == spokes })
	st := hub.stack.SAs()
	if len(st.ISAKMP) != spokes {
		t.Errorf("the hub holds %d ISAKMP SAs, want %d", len(st.ISAKMP), spokes)
	}
	byConn := map[string]ike.ISAKMPStatus{}
	for _, sa := range st.ISAKMP {
		byConn[sa.Conn] = sa
	}
	for i, c := range spokeConns {
		if got, want := byConn[c.Name].Remote, netip.AddrPortFrom(c.Local, 500).String(); got != want {
			t.Errorf("the hub's connection %s has its ISAKMP SA with %q, want %s", c.Name, got, want)
		}
		hq := netip.AddrPortFrom(hubLAN.Addr().Next(), 53)
		shop := netip.AddrPortFrom(c.Child.LocalTS.Addr().Next(), 4000)
		sendThrough(t, gws[i], hub, shop, hq, "from "+c.Name)
		sendThrough(t, hub, gws[i], hq, shop, "to "+c.Name)
		// The hub says which connection the address chose.
		if got := rec.find(events.ISAKMPConn, "hub", fmt.Sprintf("from %s:500 goes to connection %s,", c.Local, c.Name)); len(got) != 1 {
			t.Errorf("the hub reports %d choices of connection %s by address, want 1", len(got), c.Name)
		}
	}
	if failed := rec.find(events.AuthFailed, "", ""); len(failed) > 0 {
		t.Errorf("authentication failed: %s", failed[0])
	}
}
