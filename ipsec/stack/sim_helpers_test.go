package stack_test

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// The simulated lab of these tests: gateway A (192.0.2.1) protecting
// 10.1.0.0/24, gateway B (192.0.2.2) protecting 10.2.0.0/24, on one
// simulated network with a manual clock.
var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	lanA  = netip.MustParsePrefix("10.1.0.0/24")
	lanB  = netip.MustParsePrefix("10.2.0.0/24")
	epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

const psk = "lab-only-secret"

func ikeProposals(t testing.TB, ss ...string) []proposal.Proposal {
	t.Helper()
	ps, err := proposal.ParseList(proposal.IKE, ss)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func espProposals(t testing.TB, ss ...string) []proposal.Proposal {
	t.Helper()
	ps, err := proposal.ParseList(proposal.ESP, ss)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// connPair returns mirrored connections named "lab": A initiates, B responds.
func connPair(t testing.TB, mode ike.Mode, ikeProp, espProp string) (a, b ike.Connection) {
	a = ike.Connection{
		Name: "lab", Role: ike.Initiator, Local: addrA, Remote: addrB, PSK: psk, Mode: mode,
		Proposals: ikeProposals(t, ikeProp),
		Child:     ike.Child{LocalTS: lanA, RemoteTS: lanB, Proposals: espProposals(t, espProp)},
	}
	b = a
	b.Role, b.Local, b.Remote = ike.Responder, addrB, addrA
	b.Child.LocalTS, b.Child.RemoteTS = lanB, lanA
	return a, b
}

// gw is one simulated gateway.
type gw struct {
	name  string
	host  *sim.Host
	stack *stack.Stack
}

// world is the simulated network with its clock and event bus.
type world struct {
	t     *testing.T
	net   *sim.Network
	clock *sim.Clock
	bus   *events.Bus
	seed  uint64
}

func newWorld(t *testing.T) *world {
	clock := sim.NewClock(epoch)
	w := &world{t: t, net: sim.NewNetwork(), clock: clock, bus: events.NewBus("sim", events.WithClock(clock.Now))}
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range w.bus.Since(0) {
				if e.Kind != events.ESPPacket && e.Kind != syncKind {
					t.Logf("%s %s", e.Time.Sub(epoch), e)
				}
			}
		}
	})
	return w
}

// start runs a stack on host with the given connections.
func (w *world) start(name string, host *sim.Host, mutate func(*stack.Config), conns ...ike.Connection) *gw {
	w.t.Helper()
	w.seed++
	var seed [32]byte
	seed[0] = byte(w.seed)
	copy(seed[1:], name)
	cfg := stack.Config{
		Node: name, Events: w.bus, Host: host, Connections: conns,
		Clock: w.clock, Rand: mrand.NewChaCha8(seed),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := stack.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	return &gw{name: name, host: host, stack: s}
}

// pair starts gateways A and B with the given connections.
func (w *world) pair(a, b ike.Connection, mutate func(*stack.Config)) (*gw, *gw) {
	na := w.start("A", w.net.AddHost("A", addrA), mutate, a)
	nb := w.start("B", w.net.AddHost("B", addrB), mutate, b)
	return na, nb
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds or the deadline passes; the network
// delivers on goroutines of its own, so even with a manual clock the result
// of a message takes a moment.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// advanceUntil moves the clock in steps until cond holds.
func (w *world) advanceUntil(t testing.TB, what string, step time.Duration, max time.Duration, cond func() bool) {
	t.Helper()
	for elapsed := time.Duration(0); ; elapsed += step {
		if settled(cond) {
			return
		}
		if elapsed > max {
			t.Fatalf("%s did not happen within %v of simulated time", what, max)
		}
		w.clock.Advance(step)
	}
}

// run moves the clock forward by d in one-second steps, letting the
// messages each step causes arrive before the next.
func (w *world) run(d time.Duration) {
	for ; d > 0; d -= time.Second {
		w.clock.Advance(min(d, time.Second))
		time.Sleep(2 * time.Millisecond)
	}
}

// settled gives in-flight datagrams a moment before checking cond.
func settled(cond func() bool) bool {
	for range 10 {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func (n *gw) established() (isakmp, ipsec int) {
	st := n.stack.SAs()
	for _, s := range st.ISAKMP {
		if s.State == "established" {
			isakmp++
		}
	}
	for _, s := range st.IPsec {
		if s.State == "installed" {
			ipsec++
		}
	}
	return isakmp, ipsec
}

// installed returns the node's installed IPsec SA pairs.
func (n *gw) installed() []ike.IPsecStatus {
	var out []ike.IPsecStatus
	for _, s := range n.stack.SAs().IPsec {
		if s.State == "installed" {
			out = append(out, s)
		}
	}
	return out
}

// checkPairMirrors checks that A and B hold one installed pair each, with
// crossed SPIs and the same suite.
func checkPairMirrors(t testing.TB, a, b *gw) (ike.IPsecStatus, ike.IPsecStatus) {
	t.Helper()
	var pa, pb []ike.IPsecStatus
	eventually(t, "both sides to install their SAs", func() bool {
		pa, pb = a.installed(), b.installed()
		return len(pa) == 1 && len(pb) == 1
	})
	x, y := pa[0], pb[0]
	if x.SPIIn != y.SPIOut || x.SPIOut != y.SPIIn {
		t.Fatalf("SPIs do not cross: A in %s out %s, B in %s out %s", x.SPIIn, x.SPIOut, y.SPIIn, y.SPIOut)
	}
	if x.Proposal != y.Proposal || x.Mode != y.Mode || x.UDPEncap != y.UDPEncap {
		t.Fatalf("the two sides differ: A %s %s encap=%v, B %s %s encap=%v", x.Proposal, x.Mode, x.UDPEncap, y.Proposal, y.Mode, y.UDPEncap)
	}
	return x, y
}

// sendThrough sends a UDP datagram from behind `from` to behind `to` and
// waits for it to come out of to's TUN.
func sendThrough(t testing.TB, from, to *gw, src, dst netip.AddrPort, payload string) {
	t.Helper()
	from.host.TUN().Send(sim.UDPPacket(src, dst, []byte(payload)))
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-to.host.TUN().Delivered():
			if bytes.HasSuffix(p, []byte(payload)) {
				return
			}
		case <-timeout:
			t.Fatalf("%q from %s to %s did not come through the tunnel", payload, src, dst)
		}
	}
}

// recorder collects events of some kinds.
type recorder struct {
	bus  *events.Bus
	mu   sync.Mutex
	evs  []events.Event
	sub  *events.Subscription
	sync uint64
}

// syncKind marks how far a recorder has read the bus.
const syncKind events.Kind = "test-sync"

func (w *world) record(kinds ...events.Kind) *recorder {
	want := map[events.Kind]bool{syncKind: true}
	for _, k := range kinds {
		want[k] = true
	}
	r := &recorder{bus: w.bus, sub: w.bus.Subscribe(func(e *events.Event) bool { return len(kinds) == 0 || want[e.Kind] })}
	go func() {
		for e := range r.sub.C() {
			r.mu.Lock()
			if e.Kind == syncKind {
				r.sync = e.Seq
			} else {
				r.evs = append(r.evs, e)
			}
			r.mu.Unlock()
		}
	}()
	w.t.Cleanup(r.sub.Close)
	return r
}

// all returns what was recorded up to now: it first waits until the
// recorder has read everything published so far.
func (r *recorder) all() []events.Event {
	mark := r.bus.Publish(events.Event{Kind: syncKind}).Seq
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.mu.Lock()
		caught := r.sync >= mark
		r.mu.Unlock()
		if caught {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// find returns the events of a kind from a node whose message contains substr.
func (r *recorder) find(kind events.Kind, node, substr string) []events.Event {
	var out []events.Event
	for _, e := range r.all() {
		if e.Kind == kind && (node == "" || e.Node == node) && strings.Contains(e.Message, substr) {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) waitFor(t testing.TB, kind events.Kind, node, substr string) events.Event {
	t.Helper()
	var got []events.Event
	eventually(t, string(kind)+" from "+node, func() bool {
		got = r.find(kind, node, substr)
		return len(got) > 0
	})
	return got[0]
}
