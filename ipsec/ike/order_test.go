package ike_test

import (
	"context"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// step delivers the next datagram, waiting for one to be sent.
func (p *pair) step(t *testing.T, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p.deliver() {
			return
		}
	}
	t.Fatalf("%s was never sent", what)
}

func (d *fakeDataPlane) count(dir esp.Direction) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.sas {
		if c.Dir == dir {
			n++
		}
	}
	return n
}

// The initiator's outbound SA releases the packets held for the acquire, so
// it must not go in before the responder can take them: after QM3 has left,
// and after three times as long as the responder took to answer QM1 (charon
// installs its inbound SA only when QM3 arrives).
func TestOutboundSAWaitsForQM3AndTheResponderTurnaround(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	p := newPair(t, 7, ci, cr)
	p.dpI.held = 1 // the packet that started it all waits for the SA
	done := make(chan error, 1)
	go func() { done <- p.i.Initiate(context.Background(), "lab") }()
	for n := 1; n <= 6; n++ {
		p.step(t, "a Main Mode message")
	}
	p.step(t, "Quick Mode 1/3") // the responder answers at once...
	const roundTrip = 40 * time.Millisecond
	p.clock.Advance(roundTrip) // ...and its answer takes this long to come back
	p.step(t, "Quick Mode 2/3")
	const turnaround = 3 * roundTrip // the wait the engine gives the responder

	if n := len(p.wire.queue); n != 1 {
		t.Fatalf("after QM2 the initiator queued %d datagrams, want QM3", n)
	}
	if in, out := p.dpI.count(esp.Inbound), p.dpI.count(esp.Outbound); in != 1 || out != 0 {
		t.Fatalf("right after QM3: %d inbound and %d outbound SAs, want the inbound one only", in, out)
	}
	// The policy is in already, so that packets wait for the SA rather than
	// leave in the clear (a connection without a trap has no other policy).
	p.dpI.mu.Lock()
	policies := len(p.dpI.policies)
	p.dpI.mu.Unlock()
	if policies != 1 {
		t.Fatalf("right after QM3 the initiator has %d policies, want the pair's", policies)
	}
	p.clock.Advance(turnaround - time.Millisecond)
	if out := p.dpI.count(esp.Outbound); out != 0 {
		t.Fatalf("the outbound SA went in %v after QM3, before the responder's turnaround of %v", turnaround-time.Millisecond, turnaround)
	}
	select {
	case err := <-done:
		t.Fatalf("Initiate returned (%v) before the outbound SA was installed", err)
	default:
	}
	p.clock.Advance(time.Millisecond)
	if out := p.dpI.count(esp.Outbound); out != 1 {
		t.Fatalf("one turnaround after QM3 the initiator has %d outbound SAs, want 1", out)
	}
	p.step(t, "Quick Mode 3/3")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := p.dpR.count(esp.Outbound); out != 1 {
		t.Fatalf("the responder has %d outbound SAs after QM3, want 1", out)
	}
}

// With nothing waiting for it (the tunnel was brought up by hand, and no
// packet is held), the outbound SA goes in as soon as QM3 has left: there is
// nothing to race QM3 to the responder.
func TestOutboundSAAtOnceWhenNothingWaits(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	p := newPair(t, 8, ci, cr)
	done := make(chan error, 1)
	go func() { done <- p.i.Initiate(context.Background(), "lab") }()
	for n := 1; n <= 7; n++ {
		p.step(t, "Main Mode or QM1")
	}
	p.clock.Advance(40 * time.Millisecond)
	p.step(t, "Quick Mode 2/3")
	if out := p.dpI.count(esp.Outbound); out != 1 {
		t.Fatalf("with no packet waiting, the initiator has %d outbound SAs right after QM3, want 1", out)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Two connections with the same peer, key and phase 1 settings: a Main Mode
// responder cannot tell which one a first message is for. Each gets an ISAKMP
// SA of its own, and the first Quick Mode settles which one an SA serves,
// whatever the order the initiator brings them up in.
func TestResponderLearnsTheConnectionFromTheFirstQuickMode(t *testing.T) {
	i1, r1 := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	i1.Name, r1.Name = "alpha", "alpha"
	i2, r2 := i1, r1
	i2.Name, r2.Name = "beta", "beta"
	i2.Child.LocalTS, i2.Child.RemoteTS = netip.MustParsePrefix("10.1.9.0/24"), netip.MustParsePrefix("10.2.9.0/24")
	r2.Child.LocalTS, r2.Child.RemoteTS = i2.Child.RemoteTS, i2.Child.LocalTS

	p := &pair{wire: &wire{}, clock: sim.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), dpI: newFakeDataPlane(0x1000), dpR: newFakeDataPlane(0x2000)}
	bus := events.NewBus("order", events.WithClock(p.clock.Now))
	sub := bus.SubscribeWithHistory(func(e *events.Event) bool { return e.Kind == events.ISAKMPConn })
	defer sub.Close()
	newEngine := func(name string, dp *fakeDataPlane, seed byte, cs ...ike.Connection) *ike.Engine {
		e, err := ike.New(ike.Config{Node: name, Events: bus, Connections: cs, Transport: endpoint{p.wire}, DataPlane: dp,
			Clock: p.clock, Rand: mrand.NewChaCha8([32]byte{seed})})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	p.i = newEngine("I", p.dpI, 1, i1, i2)
	p.r = newEngine("R", p.dpR, 2, r1, r2) // alpha first: the responder's first guess
	p.byAddr = map[netip.Addr]*ike.Engine{addrI: p.i, addrR: p.r}

	for _, name := range []string{"beta", "alpha"} {
		done := make(chan error, 1)
		go func() { done <- p.i.Initiate(context.Background(), name) }()
		for deadline := time.Now().Add(10 * time.Second); ; {
			if p.deliver() {
				continue
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("initiate %s: %v", name, err)
				}
			case <-time.After(time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatalf("initiate %s did not return", name)
				}
				continue
			}
			break
		}
	}
	for p.deliver() {
	}
	labels := map[string]string{} // initiator cookie → connection, on each side
	for _, side := range []*ike.Engine{p.i, p.r} {
		st := side.SAs()
		if len(st.ISAKMP) != 2 {
			t.Fatalf("%d ISAKMP SAs, want one per connection: %+v", len(st.ISAKMP), st.ISAKMP)
		}
		for _, s := range st.ISAKMP {
			if prev, ok := labels[s.ICookie]; ok && prev != s.Conn {
				t.Errorf("ISAKMP SA %s is %s's at the initiator but %s's at the responder", s.ICookie, prev, s.Conn)
			}
			labels[s.ICookie] = s.Conn
		}
	}
	select {
	case e := <-sub.C():
		if e.Node != "R" || e.Conn != "beta" || e.Field("was") != "alpha" {
			t.Errorf("the responder's settling event: %s", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the responder never said which connection its first ISAKMP SA serves")
	}
}

// The first R-U-THERE goes out when the peer has been silent for the DPD
// delay, counted from the last message heard, not at the next multiple of
// the delay after DPD started.
func TestDPDFirstProbeAfterDelayOfSilence(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ci.DPD = ike.DPD{Delay: 3 * time.Second, Timeout: 10 * time.Second, Action: ike.DPDClear}
	cr.DPD = ci.DPD
	p := newPair(t, 9, ci, cr)
	done := make(chan error, 1)
	go func() { done <- p.i.Initiate(context.Background(), "lab") }()
	for n := 1; n <= 7; n++ { // Main Mode (DPD starts with the ISAKMP SA) and QM1
		p.step(t, "a Main Mode message or QM1")
	}
	p.clock.Advance(2 * time.Second)
	p.step(t, "Quick Mode 2/3") // heard at +2 s
	p.clock.Advance(2 * time.Second)
	p.step(t, "Quick Mode 3/3")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sentByI := func() int {
		p.wire.mu.Lock()
		defer p.wire.mu.Unlock()
		n := 0
		for _, d := range p.wire.log {
			if d.from.Addr() == addrI {
				n++
			}
		}
		return n
	}
	before := sentByI()
	p.clock.Advance(999 * time.Millisecond) // +4.999 s: 2.999 s of silence
	if n := sentByI(); n != before {
		t.Fatalf("the initiator sent %d datagrams before the peer was silent for the DPD delay", n-before)
	}
	p.clock.Advance(time.Millisecond) // +5 s: 3 s of silence
	if n := sentByI(); n != before+1 {
		t.Fatalf("after 3 s of silence the initiator sent %d datagrams, want one R-U-THERE", n-before)
	}
}
