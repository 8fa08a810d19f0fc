package esp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// startPair connects data planes A (192.0.2.1) and B (192.0.2.2) with no
// policies.
func startPair(t *testing.T) (a, b *testNode) {
	t.Helper()
	na, nb := newMemWire("192.0.2.1", "192.0.2.2")
	a = &testNode{dp: New(Config{Node: "a"}), dev: newChanDevice(), net: na}
	b = &testNode{dp: New(Config{Node: "b"}), dev: newChanDevice(), net: nb}
	for _, n := range []*testNode{a, b} {
		n.dp.Start(n.dev, n.net, nil)
		t.Cleanup(func() { n.dp.Close() })
	}
	return a, b
}

// A connection holds one SPD entry per pair of selectors: a responder that
// serves two peers sends each peer's traffic through that peer's SA, and
// removing one entry leaves the other working.
func TestPoliciesOfOneConnectionBySelectors(t *testing.T) {
	a, b := startPair(t)
	remotes := []string{"10.1.0.0/24", "10.3.0.0/24"}
	var pols []Policy
	var spis []uint32
	for i, remote := range remotes {
		p := Policy{Conn: "rw", LocalTS: mustTS(t, "10.2.0.0/24"), RemoteTS: mustTS(t, remote)}
		must(t, b.dp.AddPolicy(p))
		pols = append(pols, p)
		// B's outbound SA for this peer, and A's inbound one with the same keys.
		out, in := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x2000+uint32(i))
		out.Local, out.Remote, out.LocalTS, out.RemoteTS = in.Local, in.Remote, p.LocalTS, p.RemoteTS
		in.Local, in.Remote, in.LocalTS, in.RemoteTS = out.Remote, out.Local, p.RemoteTS, p.LocalTS
		out.Conn, in.Conn = "rw", "rw"
		must(t, a.dp.AddSA(in))
		must(t, b.dp.AddSA(out))
		spis = append(spis, out.SPI)
	}
	if got := b.dp.Policies(); len(got) != 2 {
		t.Fatalf("B holds %d policies, want one per pair of selectors: %+v", len(got), got)
	}
	packets := func(spi uint32) uint64 {
		for _, s := range a.dp.SAs() {
			if s.ID.SPI == spi {
				return s.Counters.Packets
			}
		}
		return 0
	}
	send := func(dst string, n uint32) {
		t.Helper()
		p := icmpEcho("10.2.0.7", dst, n, 20)
		b.dev.in <- p
		if got := receive(t, a.dev, 2*time.Second); !bytes.Equal(got, p) {
			t.Fatalf("A got %x, want %x", got, p)
		}
	}
	send("10.1.0.5", 1)
	send("10.3.0.5", 2)
	send("10.3.0.6", 3)
	if packets(spis[0]) != 1 || packets(spis[1]) != 2 {
		t.Fatalf("packets per SA: %08x %d, %08x %d; each peer's traffic must use its own SA", spis[0], packets(spis[0]), spis[1], packets(spis[1]))
	}
	for _, s := range b.dp.SAs() {
		if s.Dir == "out" && !s.Current {
			t.Errorf("outbound SA %s is not its policy's current SA", s.SPI)
		}
	}

	// Replacing an entry (same connection and selectors) keeps its SA.
	pols[1].QueueLimit = 8
	must(t, b.dp.AddPolicy(pols[1]))
	if got := b.dp.Policies(); len(got) != 2 {
		t.Fatalf("replacing added an entry: %+v", got)
	}
	send("10.3.0.5", 4)

	must(t, b.dp.DeletePolicy(pols[0]))
	if err := b.dp.DeletePolicy(pols[0]); err == nil {
		t.Error("deleting a policy twice succeeded")
	}
	noPolicy := b.dp.Stats().NoPolicy
	b.dev.in <- icmpEcho("10.2.0.7", "10.1.0.5", 5, 20)
	waitFor(t, func() bool { return b.dp.Stats().NoPolicy == noPolicy+1 })
	send("10.3.0.5", 6)
	if packets(spis[0]) != 1 || packets(spis[1]) != 4 {
		t.Fatalf("after deleting the first peer's policy: %d and %d packets", packets(spis[0]), packets(spis[1]))
	}

	// An outbound SA needs the entry with its own selectors.
	out, _ := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x3000)
	out.Conn = "rw"
	if err := b.dp.AddSA(out); err == nil {
		t.Error("an outbound SA was installed without a policy for its selectors")
	}
}

// UpdateEncap moves a UDP-encapsulated SA to the port a NAT now uses, in
// place: the sequence numbers go on, so the peer's replay window accepts the
// next packets, which a reinstalled SA starting again at 1 would not get.
func TestUpdateEncapMovesTheUDPEndpoint(t *testing.T) {
	a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
	ab, _ := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, true, 0x4000)
	send := func(n uint32) {
		t.Helper()
		p := icmpEcho("10.1.0.5", "10.2.0.7", n, 20)
		a.dev.in <- p
		if got := receive(t, b.dev, 2*time.Second); !bytes.Equal(got, p) {
			t.Fatalf("B got %x, want %x", got, p)
		}
	}
	send(1)
	moved := netip.MustParseAddrPort("192.0.2.2:31337")
	must(t, a.dp.UpdateEncap(ab[0], moved))
	send(2)
	send(3)
	dsts := a.net.udpDestinations()
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:4500"), moved, moved}
	if len(dsts) != 3 || dsts[0] != want[0] || dsts[1] != want[1] || dsts[2] != want[2] {
		t.Fatalf("A sent to %v, want %v", dsts, want)
	}
	for _, s := range a.dp.SAs() {
		if s.ID == ab[0] && (s.Remote != moved.String() || s.Seq != 3) {
			t.Errorf("A's outbound SA: remote %s seq %d, want %s and 3", s.Remote, s.Seq, moved)
		}
	}
	for _, s := range b.dp.SAs() {
		if s.ID == ab[1] && (s.Counters.Packets != 3 || s.Counters.ReplayDrops != 0) {
			t.Errorf("B's inbound SA: %+v", s.Counters)
		}
	}

	if err := a.dp.UpdateEncap(SAID{SPI: 0x9999, Protocol: ProtoESP, Dst: moved.Addr()}, moved); err == nil {
		t.Error("moved an SA that does not exist")
	}
	if err := a.dp.UpdateEncap(ab[0], netip.AddrPortFrom(moved.Addr(), 0)); err == nil {
		t.Error("moved an SA to port 0")
	}
	plain, _ := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x5000)
	if err := a.dp.UpdateEncap(plain[0], moved); err == nil {
		t.Error("moved an SA that is not UDP-encapsulated")
	}
}

// A packet that found its policy without an SA, but reaches the acquire queue
// after AddSA made an SA current and took the held packets, is not queued
// (it would wait for the next SA): hold hands back the SA to send it through.
func TestHoldAfterTheSAArrived(t *testing.T) {
	p, err := newPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")})
	must(t, err)
	pkt := icmpEcho("10.1.0.5", "10.2.0.7", 1, 10)
	if sa, fire := p.hold(pkt, time.Unix(0, 0), time.Second); sa != nil || !fire {
		t.Fatalf("without an SA: sa %v, fire %v; want a queued packet and an acquire", sa, fire)
	}
	out, _ := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x100)
	sa := mustSA(t, out)
	p.current.Store(sa)
	if held := p.release(); len(held) != 1 {
		t.Fatalf("released %d packets, want 1", len(held))
	}
	if got, fire := p.hold(pkt, time.Unix(0, 0), time.Second); got != sa || fire {
		t.Fatalf("with a current SA: sa %v, fire %v; want the SA and no acquire", got, fire)
	}
	if len(p.release()) != 0 {
		t.Fatal("the packet was queued although an SA was current")
	}
}
