package esp

import (
	"bytes"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// fakeClock is an injected clock that only moves when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testNode is a data plane on an in-memory wire with a channel TUN.
type testNode struct {
	dp  *DataPlane
	dev *chanDevice
	net *memNet
}

// twoGateways connects gateway A (192.0.2.1, 10.1.0.0/24 behind it) and
// gateway B (192.0.2.2, 10.2.0.0/24) and installs the policies of "a-b".
func twoGateways(t *testing.T, cfgA, cfgB Config) (a, b *testNode) {
	t.Helper()
	na, nb := newMemWire("192.0.2.1", "192.0.2.2")
	a = &testNode{dp: New(cfgA), dev: newChanDevice(), net: na}
	b = &testNode{dp: New(cfgB), dev: newChanDevice(), net: nb}
	for _, n := range []*testNode{a, b} {
		n.dp.Start(n.dev, n.net, nil)
		t.Cleanup(func() { n.dp.Close() })
	}
	must(t, a.dp.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")}))
	must(t, b.dp.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, "10.2.0.0/24"), RemoteTS: mustTS(t, "10.1.0.0/24")}))
	return a, b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// installPair installs an SA pair for traffic A→B with spi, and B→A with spi+1.
func installPair(t testing.TB, a, b *testNode, tr transform, encap bool, spi uint32) (ab, ba [2]SAID) {
	t.Helper()
	out, in := saPair(t, tr.proto, Tunnel, tr.enc, tr.integ, encap, spi)
	must(t, b.dp.AddSA(in))
	must(t, a.dp.AddSA(out))
	out2, in2 := saPair(t, tr.proto, Tunnel, tr.enc, tr.integ, encap, spi+1)
	// The reverse direction: swap the roles of the two gateways.
	out2.Local, out2.Remote, out2.LocalTS, out2.RemoteTS = out.Remote, out.Local, out.RemoteTS, out.LocalTS
	in2.Local, in2.Remote, in2.LocalTS, in2.RemoteTS = in.Remote, in.Local, in.RemoteTS, in.LocalTS
	must(t, a.dp.AddSA(in2))
	must(t, b.dp.AddSA(out2))
	return [2]SAID{out.ID(), in.ID()}, [2]SAID{out2.ID(), in2.ID()}
}

func receive(t testing.TB, d *chanDevice, within time.Duration) []byte {
	t.Helper()
	select {
	case p := <-d.out:
		return p
	case <-time.After(within):
		t.Fatalf("no packet within %v", within)
		return nil
	}
}

func TestTunnelThroughTwoDataPlanes(t *testing.T) {
	for _, tr := range []transform{{ProtoESP, EncAESGCM16_128, IntegNone}, {ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, {ProtoAH, 0, IntegHMACSHA256_128}} {
		for _, encap := range []bool{false, true} {
			if encap && tr.proto == ProtoAH {
				continue
			}
			t.Run(tr.String(), func(t *testing.T) {
				a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
				installPair(t, a, b, tr, encap, 0x1000)
				for i := range 10 {
					p := icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 100)
					a.dev.in <- p
					if got := receive(t, b.dev, 2*time.Second); !bytes.Equal(got, p) {
						t.Fatalf("B got %x, want %x", got, p)
					}
					r := icmpEcho("10.2.0.7", "10.1.0.5", uint32(i), 50)
					b.dev.in <- r
					if got := receive(t, a.dev, 2*time.Second); !bytes.Equal(got, r) {
						t.Fatalf("A got %x, want %x", got, r)
					}
				}
				sas := b.dp.SAs()
				if len(sas) != 2 {
					t.Fatalf("B has %d SAs", len(sas))
				}
				for _, s := range sas {
					if s.Counters.Packets != 10 {
						t.Errorf("%s SA %s: %d packets, want 10", s.Dir, s.SPI, s.Counters.Packets)
					}
				}
			})
		}
	}
}

// A single flipped bit anywhere in what ESP or AH protects makes the packet
// fail. In the outer IPv4 header, the addresses and protocol fail the SA
// lookup or its endpoint check; the mutable fields (TOS, identification for
// ESP, flags and fragment offset, TTL, checksum) are not protected by design
// (RFC 4302 §3.3.3.1.1.1; ESP never covers the outer header), and the kernel
// checks the checksum before a raw socket sees the packet.
func TestTamperAnyBitFails(t *testing.T) {
	cases := []struct {
		tr    transform
		mode  Mode
		encap bool
	}{
		{transform{ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, Tunnel, false},
		{transform{ProtoESP, EncAESGCM16_128, IntegNone}, Tunnel, false},
		{transform{ProtoESP, EncAESGCM16_256, IntegNone}, Tunnel, true},
		{transform{ProtoESP, EncNull, IntegHMACSHA256_128}, Transport, false},
		{transform{ProtoAH, 0, IntegHMACSHA256_128}, Tunnel, false},
		{transform{ProtoAH, 0, IntegHMACMD5_96}, Transport, false},
	}
	for _, tc := range cases {
		t.Run(tc.tr.String()+"/"+tc.mode.String(), func(t *testing.T) {
			oc, ic := saPair(t, tc.tr.proto, tc.mode, tc.tr.enc, tc.tr.integ, tc.encap, 0x7007)
			out := mustSA(t, oc)
			d := New(Config{})
			defer d.Close()
			must(t, d.AddSA(ic))
			in := (*d.inbound.Load())[inKey{ic.Protocol, ic.SPI}]
			src, dst := "10.1.0.5", "10.2.0.7"
			if tc.mode == Transport {
				src, dst = "192.0.2.1", "192.0.2.2"
			}
			wire := protectPacket(t, out, icmpEcho(src, dst, 1, 24))
			try := func(w []byte) bool {
				in.replay.Reset()
				buf := make([]byte, Headroom+len(w))
				var ok bool
				if tc.encap {
					_, _, ok = d.inboundUDP(w, netip.MustParseAddrPort("192.0.2.1:4500"), buf, nil)
				} else {
					_, _, ok = d.inboundIP(w, buf, nil)
				}
				return ok
			}
			if !try(wire) {
				t.Fatal("the untouched packet was rejected")
			}
			mutable := map[int]bool{}
			if !tc.encap {
				for _, i := range []int{ipv4TOS, ipv4FlagsFrag, ipv4FlagsFrag + 1, ipv4TTL, ipv4Checksum, ipv4Checksum + 1} {
					mutable[i] = true
				}
				if tc.tr.proto == ProtoESP {
					mutable[ipv4ID], mutable[ipv4ID+1] = true, true
				}
			}
			for bit := 0; bit < len(wire)*8; bit++ {
				w := bytes.Clone(wire)
				w[bit/8] ^= 1 << (bit % 8)
				if got := try(w); got != mutable[bit/8] {
					t.Fatalf("bit %d (byte %d) flipped: accepted=%v", bit, bit/8, got)
				}
			}
		})
	}
}

func TestAcquireHoldsPacketsUntilTheSAIsInstalled(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var acquires []AcquireRequest
	var mu sync.Mutex
	bus := events.NewBus("t")
	sub := bus.Subscribe(func(e *events.Event) bool { return e.Kind == events.Acquire })
	defer sub.Close()
	cfg := Config{Node: "a", Now: clock.Now, Events: bus, AcquireRetry: 10 * time.Second, Hooks: Hooks{Acquire: func(r AcquireRequest) {
		mu.Lock()
		acquires = append(acquires, r)
		mu.Unlock()
	}}}
	a, b := twoGateways(t, cfg, Config{Node: "b"})
	must(t, a.dp.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24"), QueueLimit: 4}))
	var sent [][]byte
	for i := range 6 {
		p := icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 10)
		sent = append(sent, p)
		a.dev.in <- p
	}
	waitFor(t, func() bool { s := a.dp.Stats(); return s.AcquireHeld+s.AcquireDropped == 6 })
	if s := a.dp.Stats(); s.AcquireHeld != 4 || s.AcquireDropped != 2 {
		t.Fatalf("held %d dropped %d, want 4 and 2 (tail drop)", s.AcquireHeld, s.AcquireDropped)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acquires) == 1 })
	mu.Lock()
	r := acquires[0]
	mu.Unlock()
	if r.Conn != "a-b" || r.Src != netip.MustParseAddr("10.1.0.5") || r.Dst != netip.MustParseAddr("10.2.0.7") || r.Protocol != 1 || r.Packet == "" {
		t.Fatalf("acquire %+v", r)
	}
	select {
	case e := <-sub.C():
		if e.Step != events.StepInitiation || e.Packet == nil || e.Packet.Inner == "" {
			t.Fatalf("acquire event %+v", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no acquire event")
	}
	// Past the retry interval, the next packet asks again.
	clock.Advance(11 * time.Second)
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 99, 10)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acquires) == 2 })

	installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x100)
	for i := range 4 {
		if got := receive(t, b.dev, 2*time.Second); !bytes.Equal(got, sent[i]) {
			t.Fatalf("held packet %d: got %x", i, got)
		}
	}
	if s := a.dp.Stats(); s.AcquireHeld != 0 {
		t.Fatalf("%d packets still held", s.AcquireHeld)
	}
}

// A policy IKE is already negotiating (a Quick Mode responder between QM2
// and QM3) holds packets without an acquire: no event, no hook. They go out
// through the SA when it is installed, which also ends the negotiation: the
// next packet that finds no SA acquires again.
func TestNegotiatingPolicyHoldsSilently(t *testing.T) {
	var mu sync.Mutex
	var acquires []AcquireRequest
	bus := events.NewBus("t")
	sub := bus.Subscribe(func(e *events.Event) bool { return e.Kind == events.Acquire })
	defer sub.Close()
	cfg := Config{Node: "a", Events: bus, Hooks: Hooks{Acquire: func(r AcquireRequest) {
		mu.Lock()
		acquires = append(acquires, r)
		mu.Unlock()
	}}}
	a, b := twoGateways(t, cfg, Config{Node: "b"})
	pol := Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")} // installed by twoGateways
	other := pol
	other.Conn = "other"
	if err := a.dp.SetNegotiating(other.Key(), true); err == nil {
		t.Fatal("SetNegotiating accepted a policy that is not installed")
	}
	must(t, a.dp.SetNegotiating(pol.Key(), true))
	// Replacing the policy keeps the flag, as it keeps the held packets.
	must(t, a.dp.AddPolicy(pol))
	var sent [][]byte
	for i := range 3 {
		p := icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 10)
		sent = append(sent, p)
		a.dev.in <- p
	}
	waitFor(t, func() bool { return a.dp.Stats().AcquireHeld == 3 })
	// Packets take the outbound path one after another, and an acquire is
	// published and handed to the hook in that order: once a later packet's
	// acquire arrives, none can still come for the silent ones.
	must(t, a.dp.SetNegotiating(pol.Key(), false))
	marker := icmpEcho("10.1.0.6", "10.2.0.7", 3, 10)
	sent = append(sent, marker)
	a.dev.in <- marker
	select {
	case e := <-sub.C():
		if !strings.Contains(e.Packet.Inner, "10.1.0.6") {
			t.Fatalf("acquire event for a packet held while negotiating: %s", e.Message)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no acquire event once the negotiation flag was cleared")
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acquires) > 0 })
	mu.Lock()
	if len(acquires) != 1 || acquires[0].Src != netip.MustParseAddr("10.1.0.6") {
		t.Fatalf("acquire hook calls %+v, want one, for 10.1.0.6", acquires)
	}
	mu.Unlock()

	// Negotiating again, then the SA arrives: everything held goes out, in order.
	must(t, a.dp.SetNegotiating(pol.Key(), true))
	ab, _ := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x100)
	for i, want := range sent {
		if got := receive(t, b.dev, 2*time.Second); !bytes.Equal(got, want) {
			t.Fatalf("held packet %d: got %x", i, got)
		}
	}
	if s := a.dp.Stats(); s.AcquireHeld != 0 {
		t.Fatalf("%d packets still held", s.AcquireHeld)
	}
	// The SA ended the negotiation: without it, the next packet acquires.
	must(t, a.dp.DeleteSA(ab[0]))
	a.dev.in <- icmpEcho("10.1.0.7", "10.2.0.7", 4, 10)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acquires) == 2 })
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLifetimesSoftAndHard(t *testing.T) {
	var mu sync.Mutex
	var got []Expiry
	var acquired atomic.Int32
	cfg := Config{Node: "a", Hooks: Hooks{
		Expire:  func(x Expiry) { mu.Lock(); got = append(got, x); mu.Unlock() },
		Acquire: func(AcquireRequest) { acquired.Add(1) },
	}}
	a, b := twoGateways(t, cfg, Config{Node: "b"})
	out, in := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA256_128, false, 0x500)
	out.Lifetime = Lifetime{SoftPackets: 5, HardPackets: 10}
	must(t, b.dp.AddSA(in))
	must(t, a.dp.AddSA(out))
	for i := range 12 {
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 10)
	}
	for range 10 {
		receive(t, b.dev, 2*time.Second)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	soft, hard := got[0], got[1]
	mu.Unlock()
	if soft.Hard || soft.Reason != "packets" || soft.Counters.Packets != 5 {
		t.Fatalf("soft expiry %+v", soft)
	}
	if !hard.Hard || hard.Counters.Packets != 10 || hard.ID != out.ID() {
		t.Fatalf("hard expiry %+v", hard)
	}
	if len(a.dp.SAs()) != 0 {
		t.Fatalf("hard-expired SA still installed: %+v", a.dp.SAs())
	}
	// With the SA gone, the policy has none: the 11th packet triggers an acquire.
	waitFor(t, func() bool { return acquired.Load() == 1 })

	// Byte lifetimes on the inbound side.
	var bmu sync.Mutex
	var bgot []Expiry
	c, d := twoGateways(t, Config{Node: "c"}, Config{Node: "d", Hooks: Hooks{Expire: func(x Expiry) { bmu.Lock(); bgot = append(bgot, x); bmu.Unlock() }}})
	out, in = saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, true, 0x600)
	pkt := icmpEcho("10.1.0.5", "10.2.0.7", 0, 72) // 100 bytes
	in.Lifetime = Lifetime{SoftBytes: 250, HardBytes: 500}
	must(t, d.dp.AddSA(in))
	must(t, c.dp.AddSA(out))
	for range 5 {
		c.dev.in <- pkt
		receive(t, d.dev, 2*time.Second)
	}
	waitFor(t, func() bool { bmu.Lock(); defer bmu.Unlock(); return len(bgot) == 2 })
	bmu.Lock()
	defer bmu.Unlock()
	if bgot[0].Hard || bgot[0].Reason != "bytes" || bgot[0].Counters.Bytes != 300 || !bgot[1].Hard || bgot[1].Counters.Bytes != 500 {
		t.Fatalf("byte expiries %+v", bgot)
	}
	c.dev.in <- pkt
	waitFor(t, func() bool { return d.dp.Stats().UnknownSPI == 1 })
}

// Make before break: a numbered stream in both directions keeps flowing while
// the SAs are replaced again and again, and not one packet is lost. Each rekey
// installs the new inbound SAs, then the new outbound ones (traffic moves to
// them at once), and deletes the old ones once the packets sent on them have
// arrived, as IKE does with Quick Mode and a Delete.
func TestRekeyUnderTrafficLosesNothing(t *testing.T) {
	a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
	tr := transform{ProtoESP, EncAESGCM16_128, IntegNone}
	ab, ba := installPair(t, a, b, tr, false, 0x10000)

	type stream struct {
		from, to *testNode
		src, dst string
		sent     atomic.Uint32
		prefix   atomic.Uint32 // every number up to this one has arrived
		seen     map[uint32]int
	}
	streams := []*stream{
		{from: a, to: b, src: "10.1.0.5", dst: "10.2.0.7", seen: map[uint32]int{}},
		{from: b, to: a, src: "10.2.0.7", dst: "10.1.0.5", seen: map[uint32]int{}},
	}
	// stop ends the senders, quit the receivers: whichever way the test
	// ends, so that a failure under load cannot leave them running.
	stop, quit := make(chan struct{}), make(chan struct{})
	var stopOnce, quitOnce sync.Once
	var senders, receivers sync.WaitGroup
	stopSending := func() {
		stopOnce.Do(func() { close(stop) })
		senders.Wait()
	}
	end := func() {
		stopSending()
		quitOnce.Do(func() { close(quit) })
		receivers.Wait()
	}
	defer end()
	for _, s := range streams {
		senders.Add(1)
		receivers.Add(1)
		go func() { // sender: as fast as the pipeline takes it, in order
			defer senders.Done()
			for n := uint32(1); ; n++ {
				select {
				case <-stop:
					return
				case s.from.dev.in <- icmpEcho(s.src, s.dst, n, 64):
					s.sent.Store(n)
				}
			}
		}()
		go func() { // receiver
			defer receivers.Done()
			for {
				select {
				case p := <-s.to.dev.out:
					n := be.Uint32(p[24:])
					s.seen[n]++
					for s.seen[s.prefix.Load()+1] > 0 {
						s.prefix.Add(1)
					}
				case <-quit:
					return
				}
			}
		}()
	}
	drained := func(s *stream, upTo uint32) {
		waitFor(t, func() bool { return s.prefix.Load() >= upTo })
	}
	const rekeys = 20
	spi := uint32(0x20000)
	for range rekeys {
		time.Sleep(5 * time.Millisecond)
		nab, nba := installPair(t, a, b, tr, false, spi)
		spi += 2
		markAB, markBA := streams[0].sent.Load(), streams[1].sent.Load()
		// The old outbound SAs are no longer current; delete them, then the
		// old inbound ones once what was sent on them has arrived.
		must(t, a.dp.DeleteSA(ab[0]))
		must(t, b.dp.DeleteSA(ba[0]))
		drained(streams[0], markAB)
		drained(streams[1], markBA)
		must(t, b.dp.DeleteSA(ab[1]))
		must(t, a.dp.DeleteSA(ba[1]))
		ab, ba = nab, nba
	}
	stopSending()
	for _, s := range streams {
		drained(s, s.sent.Load())
	}
	end()
	for i, s := range streams {
		total := s.sent.Load()
		if total < 1000 {
			t.Errorf("stream %d: only %d packets sent; the test proves little", i, total)
		}
		for n := uint32(1); n <= total; n++ {
			if s.seen[n] != 1 {
				t.Fatalf("stream %d: packet %d arrived %d times (of %d sent, %d rekeys)", i, n, s.seen[n], total, rekeys)
			}
		}
		t.Logf("stream %d: %d packets, none lost, across %d rekeys", i, total, rekeys)
	}
	for _, s := range a.dp.SAs() {
		if s.Dir == "out" && !s.Current {
			t.Errorf("outbound SA %s installed but not current", s.SPI)
		}
	}
}

func TestNATTPortDemultiplexing(t *testing.T) {
	a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
	got := make(chan []byte, 1)
	var from netip.AddrPort
	b.dp.HandleIKE(func(src netip.AddrPort, msg []byte) { from = src; got <- msg })
	must(t, a.dp.SendIKE(netip.MustParseAddrPort("192.0.2.2:4500"), []byte("isakmp message")))
	select {
	case m := <-got:
		if string(m) != "isakmp message" || from != netip.MustParseAddrPort("192.0.2.1:4500") {
			t.Fatalf("IKE got %q from %v", m, from)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("IKE message not delivered")
	}
	must(t, a.dp.SendKeepalive(netip.MustParseAddrPort("192.0.2.2:4500")))
	waitFor(t, func() bool { return b.dp.Stats().Keepalives == 1 })
	// ESP on the port for an unknown SPI is counted, not handed to IKE.
	a.net.SendUDP([][]byte{{0, 0, 0x12, 0x34, 0, 0, 0, 1, 9, 9}}, nil)
	waitFor(t, func() bool { return b.dp.Stats().UnknownSPI == 1 })
	if s := b.dp.Stats(); s.IKEReceived != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEventsDescribeFirstPacketsAndDrops(t *testing.T) {
	bus := events.NewBus("t")
	sub := bus.SubscribeWithHistory(nil)
	defer sub.Close()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a, b := twoGateways(t, Config{Node: "a", Events: bus}, Config{Node: "b", Events: bus, Now: clock.Now})
	ab, _ := installPair(t, a, b, transform{ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, false, 0x900)
	for i := range 5 {
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 10)
		receive(t, b.dev, 2*time.Second)
	}
	// Tamper with every packet from now on: integrity drops, one event per second.
	a.net.mu.Lock()
	a.net.intercept = func(d datagram) []datagram { d.data[len(d.data)-1] ^= 1; return []datagram{d} }
	a.net.mu.Unlock()
	for i := range 4 {
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", uint32(10+i), 10)
	}
	waitFor(t, func() bool {
		for _, s := range b.dp.SAs() {
			if s.Counters.IntegrityFailures == 4 {
				return true
			}
		}
		return false
	})
	must(t, b.dp.DeleteSA(ab[1]))
	bus.Close()
	var packets, drops, counters int
	for e := range sub.C() {
		switch e.Kind {
		case events.ESPPacket:
			if e.Node == "a" && e.Packet != nil && e.Packet.SPI == "00000900" {
				packets++
				if e.Packet.Inner == "" || e.Packet.Outer == "" || e.Packet.Seq == 0 || e.Step != events.StepData {
					t.Errorf("ESPPacket event %+v", e.Packet)
				}
				// For the inspector: the outer header, ESP's 8 bytes and the
				// 16-byte IV; the inner packet; the ICV's length (HMAC-SHA1-96),
				// the ICV itself being computed after the event.
				if len(e.Packet.Wire) != 20+8+16 || len(e.Packet.Plain) == 0 || e.Packet.ICVLen != 12 || e.Packet.ICV != nil {
					t.Errorf("ESPPacket bytes: wire %d, plain %d, ICV %d bytes (%x)", len(e.Packet.Wire), len(e.Packet.Plain), e.Packet.ICVLen, e.Packet.ICV)
				}
			}
		case events.ESPDrop:
			if e.Node == "b" {
				drops++
				if e.Field("reason") != "integrity" {
					t.Errorf("drop event %v", e.Fields)
				}
			}
		case events.SACounters:
			if e.Node == "b" && e.Field("why") == "deleted" {
				counters++
				if e.Field("integrity_failures") != uint64(4) || e.Field("packets") != uint64(5) {
					t.Errorf("final counters %v", e.Fields)
				}
			}
		}
	}
	if packets != 3 || drops != 1 || counters != 1 {
		t.Fatalf("events: %d packet descriptions (want 3), %d drop events (want 1, rate-limited), %d final counters (want 1)", packets, drops, counters)
	}
}

func TestCountersArePublishedPeriodically(t *testing.T) {
	bus := events.NewBus("t")
	sub := bus.Subscribe(func(e *events.Event) bool { return e.Kind == events.SACounters && e.Field("why") == "periodic" })
	defer sub.Close()
	a, b := twoGateways(t, Config{Node: "a", Events: bus, CountersInterval: 10 * time.Millisecond}, Config{Node: "b"})
	installPair(t, a, b, transform{ProtoESP, EncAESGCM16_256, IntegNone}, false, 0x700)
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 1, 10)
	receive(t, b.dev, 2*time.Second)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-sub.C():
			if e.Node == "a" && e.Field("dir") == "out" && e.Field("packets") == uint64(1) {
				return
			}
		case <-deadline:
			t.Fatal("no periodic SACounters event with the outbound packet")
		}
	}
}

// An SA's drops are counted on it and in the node's totals, and the totals
// stay when the SA goes: a rekey must not make drops disappear from
// `ipseclab stats`.
func TestDropTotalsOutliveTheSA(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x4242)
	d := New(Config{})
	defer d.Close()
	must(t, d.AddSA(ic))
	wire := protectPacket(t, mustSA(t, oc), icmpEcho("10.1.0.5", "10.2.0.7", 1, 24))
	for i, want := range []bool{true, false} { // the second is a replay
		buf := make([]byte, Headroom+len(wire))
		if _, _, ok := d.inboundIP(wire, buf, nil); ok != want {
			t.Fatalf("packet %d accepted=%v", i, ok)
		}
	}
	if n := d.SAs()[0].Counters.ReplayDrops; n != 1 {
		t.Fatalf("the SA counted %d replays, want 1", n)
	}
	must(t, d.DeleteSA(ic.ID()))
	if s := d.Stats(); s.ReplayDrops != 1 || s.IntegrityFailures+s.PolicyDrops+s.SAMalformed+s.UnknownSPI+s.Malformed != 0 {
		t.Fatalf("after the SA was deleted, the node's counters are %+v; want the one replay alone", s)
	}
}
