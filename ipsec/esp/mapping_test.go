package esp

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// natWire is A's side of the wire as a NAT in front of A would make it: A's
// UDP datagrams reach B from the NAT's current mapping, and the test can
// hold, tamper with or replay them on the way.
type natWire struct {
	mu      sync.Mutex
	mapping netip.AddrPort
	hold    bool       // keep A's UDP datagrams in held instead of delivering them
	held    []datagram // in the order A sent them
	tamper  bool       // flip a bit of the ICV of the next datagram
	kept    [][]byte   // every ESP datagram A sent, for replays
	changes chan MappingChange
}

func newNATWire(t *testing.T, a, b *testNode, follow bool) *natWire {
	t.Helper()
	w := &natWire{mapping: netip.MustParseAddrPort("198.51.100.2:4500"), changes: make(chan MappingChange, 16)}
	b.dp.SetHooks(Hooks{Mapping: func(m MappingChange) { w.changes <- m }})
	a.net.intercept = func(d datagram) []datagram {
		if !d.udp {
			return []datagram{d}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		d.src = w.mapping
		w.kept = append(w.kept, bytes.Clone(d.data))
		if w.tamper {
			w.tamper = false
			d.data[len(d.data)-1] ^= 0x01
		}
		if w.hold {
			w.held = append(w.held, d)
			return nil
		}
		return []datagram{d}
	}
	out, in := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, true, 0x7000)
	in.Encap.FollowPeer = follow
	// B knows A by the NAT's first mapping.
	in.Remote, in.Encap.RemotePort = w.mapping.Addr(), w.mapping.Port()
	must(t, a.dp.AddSA(out))
	must(t, b.dp.AddSA(in))
	out2, in2 := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, true, 0x7001)
	out2.Local, out2.Remote, out2.LocalTS, out2.RemoteTS = out.Remote, w.mapping.Addr(), out.RemoteTS, out.LocalTS
	out2.Encap.RemotePort = w.mapping.Port()
	in2.Local, in2.Remote, in2.LocalTS, in2.RemoteTS = in.Remote, in.Local, in.RemoteTS, in.LocalTS
	must(t, a.dp.AddSA(in2))
	must(t, b.dp.AddSA(out2))
	return w
}

func (w *natWire) remap(to string) {
	w.mu.Lock()
	w.mapping = netip.MustParseAddrPort(to)
	w.mu.Unlock()
}

// bPeers returns where B's SAs put A: the outbound SA's destination and the
// inbound SA's expected source.
func bPeers(b *testNode) []string {
	var out []string
	for _, s := range b.dp.SAs() {
		out = append(out, s.Dir+" "+s.Remote)
	}
	slices.Sort(out)
	return out
}

// aToB sends one packet A→B and waits for it.
func aToB(t *testing.T, a, b *testNode, n uint32) {
	t.Helper()
	p := icmpEcho("10.1.0.5", "10.2.0.7", n, 64)
	a.dev.in <- p
	if got := receive(t, b.dev, 2*time.Second); !bytes.Equal(got, p) {
		t.Fatalf("packet %d: B got %x", n, got)
	}
}

// bToA sends one packet B→A and returns where B sent it.
func bToA(t *testing.T, a, b *testNode, n uint32) netip.AddrPort {
	t.Helper()
	before := len(b.net.udpDestinations())
	b.dev.in <- icmpEcho("10.2.0.7", "10.1.0.5", n, 64)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if d := b.net.udpDestinations(); len(d) > before {
			return d[len(d)-1]
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("B sent nothing for packet %d", n)
	return netip.AddrPort{}
}

func noChange(t *testing.T, w *natWire, why string) {
	t.Helper()
	select {
	case m := <-w.changes:
		t.Fatalf("%s moved the peer: %+v", why, m)
	case <-time.After(50 * time.Millisecond):
	}
}

// An authenticated packet from a new port moves both of B's SAs with A
// there, before its inner packet is delivered; B's next packet goes to the
// new mapping, and IKE is told once.
func TestMappingFollowsAnAuthenticatedPacket(t *testing.T) {
	a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
	w := newNATWire(t, a, b, true)
	aToB(t, a, b, 1)
	if got := bToA(t, a, b, 0); got.String() != "198.51.100.2:4500" {
		t.Fatalf("B sends to %s before the change", got)
	}
	w.remap("198.51.100.2:31337")
	aToB(t, a, b, 2)
	if got := bToA(t, a, b, 1); got.String() != "198.51.100.2:31337" {
		t.Fatalf("B sends to %s after A's packet came from the new mapping", got)
	}
	want := []string{"in 198.51.100.2:31337", "out 198.51.100.2:31337"}
	if got := bPeers(b); !slices.Equal(got, want) {
		t.Errorf("B's SAs: %v, want %v", got, want)
	}
	select {
	case m := <-w.changes:
		if m.Old.String() != "198.51.100.2:4500" || m.New.String() != "198.51.100.2:31337" || m.Seq != 2 || len(m.Moved) != 2 || m.Conn != "a-b" {
			t.Errorf("mapping change %+v", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no Mapping hook")
	}
	aToB(t, a, b, 3)
	noChange(t, w, "a second packet from the same mapping")
	if n := b.dp.Stats().MappingChanges; n != 1 {
		t.Errorf("MappingChanges = %d, want 1", n)
	}
}

// Nothing that fails to speak for the peer moves it: a packet whose ICV
// fails, a replay of an old packet, a late packet (authentic, accepted, but
// not the highest sequence number), and any packet at all when the peer is
// not behind a NAT.
func TestMappingIgnoresWhatIsNotTheNewestAuthenticPacket(t *testing.T) {
	t.Run("spoofed", func(t *testing.T) {
		a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
		w := newNATWire(t, a, b, true)
		aToB(t, a, b, 1)
		w.remap("198.51.100.2:40000")
		w.mu.Lock()
		w.tamper = true
		w.mu.Unlock()
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 2, 64)
		waitFor(t, func() bool { return b.dp.Stats().IntegrityFailures == 1 })
		noChange(t, w, "a packet failing its ICV")
		if got := bToA(t, a, b, 0); got.String() != "198.51.100.2:4500" {
			t.Errorf("B sends to %s after a forged packet from another port", got)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
		w := newNATWire(t, a, b, true)
		aToB(t, a, b, 1)
		aToB(t, a, b, 2)
		w.mu.Lock()
		old := bytes.Clone(w.kept[0])
		w.mu.Unlock()
		// An attacker replays A's first packet from a port of its own.
		b.net.udp <- datagram{data: old, src: netip.MustParseAddrPort("203.0.113.66:4500"), udp: true}
		waitFor(t, func() bool { return b.dp.Stats().ReplayDrops == 1 })
		noChange(t, w, "a replayed packet")
		if got := bToA(t, a, b, 0); got.String() != "198.51.100.2:4500" {
			t.Errorf("B sends to %s after a replay from another address", got)
		}
	})
	t.Run("late", func(t *testing.T) {
		a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
		w := newNATWire(t, a, b, true)
		w.mu.Lock()
		w.hold = true
		w.mu.Unlock()
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 1, 64)
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 2, 64)
		waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.held) == 2 })
		w.mu.Lock()
		first, second := w.held[0], w.held[1]
		w.mu.Unlock()
		b.net.udp <- second // sequence number 2, from the current mapping
		receive(t, b.dev, 2*time.Second)
		first.src = netip.MustParseAddrPort("198.51.100.2:40000")
		b.net.udp <- first // 1, authentic and in the window, but late
		receive(t, b.dev, 2*time.Second)
		noChange(t, w, "a late packet from another port")
		if got := bPeers(b); got[0] != "in 198.51.100.2:4500" {
			t.Errorf("B's SAs: %v", got)
		}
	})
	t.Run("peer not behind a NAT", func(t *testing.T) {
		a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
		w := newNATWire(t, a, b, false)
		aToB(t, a, b, 1)
		w.remap("198.51.100.2:40000")
		aToB(t, a, b, 2)
		noChange(t, w, "a packet of an SA without FollowPeer")
		if got := bToA(t, a, b, 0); got.String() != "198.51.100.2:4500" {
			t.Errorf("B sends to %s", got)
		}
	})
}
