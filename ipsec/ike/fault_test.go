package ike_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// faultPair is a pair on a bus, for the fault tests.
type faultPair struct {
	*pair
	bus *events.Bus
}

func newFaultPair(t testing.TB, mode ike.Mode) *faultPair {
	ci, cr := conns(t, mode, "aes128-sha256-modp2048", "aes128-sha256")
	bus := events.NewBus("fault")
	return &faultPair{pair: newPairOn(t, 11, ci, cr, bus), bus: bus}
}

// run initiates while pumping the wire; when nothing is in flight, the
// simulated clock moves on (retransmissions, delays, held datagrams), up to
// limit of simulated time. stuck reports an Initiate that never returned.
func (p *faultPair) run(t testing.TB, limit time.Duration) (err error, stuck bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.i.Initiate(ctx, "lab") }()
	var simulated time.Duration
	for {
		if p.deliver() {
			continue
		}
		select {
		case err := <-done:
			p.settle(2 * time.Second)
			return err, false
		case <-time.After(50 * time.Microsecond): // time for Initiate's goroutine to send or return
		}
		if p.deliver() {
			continue
		}
		if simulated >= limit {
			cancel()
			<-done
			return nil, true
		}
		p.clock.Advance(250 * time.Millisecond)
		simulated += 250 * time.Millisecond
	}
}

// settle lets held, delayed and replayed datagrams arrive.
func (p *faultPair) settle(d time.Duration) {
	for step := time.Duration(0); step < d; step += 500 * time.Millisecond {
		for p.deliver() {
		}
		p.clock.Advance(500 * time.Millisecond)
	}
	for p.deliver() {
	}
}

func (p *faultPair) arm(t testing.TB, e *ike.Engine, f fault.Fault) {
	t.Helper()
	if f.Plane == "" {
		f.Plane = fault.IKE
	}
	if err := e.InjectFault(f); err != nil {
		t.Fatalf("arm %s: %v", f.String(), err)
	}
}

// kinds lists the events of these kinds, in order.
func (p *faultPair) find(kinds ...events.Kind) []events.Event {
	var out []events.Event
	for _, e := range p.bus.Since(0) {
		if slices.Contains(kinds, e.Kind) {
			out = append(out, e)
		}
	}
	return out
}

func (p *faultPair) firstSeq(t testing.TB, k events.Kind, node, contains string) uint64 {
	t.Helper()
	for _, e := range p.bus.Since(0) {
		if e.Kind == k && (node == "" || e.Node == node) && strings.Contains(e.Message, contains) {
			return e.Seq
		}
	}
	t.Fatalf("no %s event of %q containing %q; events:\n%s", k, node, contains, p.dump())
	return 0
}

func (p *faultPair) dump() string {
	var b strings.Builder
	for _, e := range p.bus.Since(0) {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

func msg(s string) fault.Message {
	m, err := fault.ParseMessage(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	nodeI = addrI.String()
	nodeR = addrR.String()
)

// A dropped Main Mode 4/6 is not sent: the initiator retransmits 3/6, the
// responder recognises the repeat and answers it from its cache, and phase
// 1 completes. The fault comes before the retransmission in the bus.
func TestFaultDropRecoversByRetransmission(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.r, fault.Fault{Message: msg("main-mode 4/6"), Action: fault.Drop})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)\n%s", err, stuck, p.dump())
	}
	f := p.firstSeq(t, events.FaultInjected, nodeR, "dropped Main Mode 4/6")
	rt := p.firstSeq(t, events.IKERetransmit, nodeI, "Main Mode 3/6 sent again")
	dup := p.firstSeq(t, events.IKERetransmit, nodeR, "answered with the cached Main Mode 4/6")
	if !(f < rt && rt < dup) {
		t.Errorf("order: fault #%d, retransmission #%d, cached answer #%d", f, rt, dup)
	}
	if s := p.i.Stats(); s.Retransmits != 1 {
		t.Errorf("initiator retransmitted %d times, want 1", s.Retransmits)
	}
	if s := p.r.Stats(); s.Duplicates != 1 || s.FaultsInjected != 1 {
		t.Errorf("responder: %d duplicates, %d faults; want 1 and 1", s.Duplicates, s.FaultsInjected)
	}
	if len(p.r.ArmedFaults()) != 0 {
		t.Errorf("a fault for the next message stays armed after it acted")
	}
}

// A duplicated Quick Mode 1/3 is answered once: the second copy gets the
// cached Quick Mode 2/3, and no second pair of SPIs is allocated.
func TestFaultDuplicateAnsweredFromCache(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("quick-mode 1/3"), Action: fault.Duplicate})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	// (The cached Quick Mode 2/3 then reaches the initiator twice, which
	// answers its repeat with its cached 3/3: the responder counts that
	// one too.)
	cached := 0
	for _, e := range p.find(events.IKERetransmit) {
		if e.Node == nodeR && strings.Contains(e.Message, "answered with the cached Quick Mode 2/3") {
			cached++
		}
	}
	if cached != 1 {
		t.Errorf("responder answered the duplicate Quick Mode 1/3 %d times from its cache, want 1\n%s", cached, p.dump())
	}
	if n := len(p.r.SAs().IPsec); n != 1 {
		t.Errorf("responder holds %d IPsec SA pairs, want 1", n)
	}
}

// HASH_I corrupted before encryption: the responder decrypts Main Mode 5/6,
// finds the hash wrong and answers AUTHENTICATION-FAILED; the initiator
// learns it. After encryption: the message does not decrypt.
func TestFaultCorruptHash(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(map[bool]string{false: "before", true: "after"}[after], func(t *testing.T) {
			p := newFaultPair(t, ike.MainMode)
			p.arm(t, p.i, fault.Fault{Message: msg("main-mode 5/6"), Action: fault.Corrupt, Payload: fault.PayloadHash, After: after})
			err, stuck := p.run(t, 60*time.Second)
			if err == nil || stuck {
				t.Fatalf("initiate: %v (stuck %v), want a failure", err, stuck)
			}
			f := p.firstSeq(t, events.FaultInjected, nodeI, "HASH")
			af := p.firstSeq(t, events.AuthFailed, nodeR, "")
			if f > af {
				t.Errorf("the responder's failure #%d comes before the fault #%d", af, f)
			}
			if p.r.Stats().AuthFailed != 1 {
				t.Errorf("responder auth failures: %d", p.r.Stats().AuthFailed)
			}
			if s := p.r.Stats(); s.HalfOpen != 0 {
				t.Errorf("responder keeps %d half-open SAs", s.HalfOpen)
			}
		})
	}
}

// A Quick Mode 1/3 whose SA payload changed after HASH(1) was computed
// fails its hash at the responder; the initiator's Quick Mode fails.
func TestFaultCorruptQuickModeSA(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("quick-mode 1/3"), Action: fault.Corrupt, Payload: fault.PayloadSPI})
	err, stuck := p.run(t, 60*time.Second)
	if stuck {
		t.Fatal("stuck")
	}
	if err == nil {
		t.Fatalf("Quick Mode came up with a corrupted SPI")
	}
	if n := len(p.r.SAs().IPsec); n != 0 {
		t.Errorf("responder installed %d pairs", n)
	}
}

// Main Mode 3/6 without NAT-D: the responder concludes the initiator does
// no NAT detection; phase 1 still completes.
func TestFaultOmitNATD(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("main-mode 3/6"), Action: fault.Omit, Payload: fault.PayloadNATD})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)\n%s", err, stuck, p.dump())
	}
	ev := p.find(events.IKEMessage)
	for _, e := range ev {
		if e.Node == nodeI && e.IKE.Exchange == "main" && e.IKE.MsgNum == 3 && slices.Contains(e.IKE.Payloads, "NAT-D") {
			t.Errorf("Main Mode 3/6 still carries NAT-D: %v", e.IKE.Payloads)
		}
	}
}

// A zero cookie in Main Mode 1/6 is refused (INVALID-COOKIE) and counted;
// the retransmission with the real cookie gets through.
func TestFaultCookieZero(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("main-mode 1/6"), Action: fault.Cookie, Cookie: "zero"})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	if s := p.r.Stats(); s.InvalidCookies != 1 || s.HalfOpen != 0 {
		t.Errorf("responder: %d invalid cookies, %d half-open; want 1, 0", s.InvalidCookies, s.HalfOpen)
	}
}

// A random responder cookie in Main Mode 2/6: the initiator cannot tell it
// from a real one and adopts it, so its Main Mode 3/6 names an SA the
// responder does not hold (unknown SA, each retransmission too). Both sides
// end cleanly: the initiator after its retransmissions, the responder's
// half-open SA at its timeout.
func TestFaultCookieRandom(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.r, fault.Fault{Message: msg("main-mode 2/6"), Action: fault.Cookie, Cookie: "random"})
	err, stuck := p.run(t, 120*time.Second)
	if stuck || err == nil || !strings.Contains(err.Error(), "no answer to Main Mode 3/6") {
		t.Fatalf("initiate: %v (stuck %v)\n%s", err, stuck, p.dump())
	}
	p.settle(30 * time.Second)
	if s := p.r.Stats(); s.UnknownSA != uint64(ike.DefaultRetransmitTries+1) || s.HalfOpen != 0 {
		t.Errorf("responder: %d messages for an unknown SA, %d half-open; want %d, 0", s.UnknownSA, s.HalfOpen, ike.DefaultRetransmitTries+1)
	}
}

// A forged unprotected Delete of the IPsec SAs is ignored, counted and
// explained; the SAs stay. So is a forged INITIAL-CONTACT.
func TestFaultForgeIgnored(t *testing.T) {
	for _, what := range fault.Forgeries {
		t.Run(what, func(t *testing.T) {
			p := newFaultPair(t, ike.MainMode)
			if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
				t.Fatalf("initiate: %v (stuck %v)", err, stuck)
			}
			p.arm(t, p.i, fault.Fault{Action: fault.Forge, Forge: what})
			p.settle(time.Second)
			if s := p.r.Stats(); s.UnprotectedIgnored != 1 {
				t.Errorf("responder ignored %d unprotected messages, want 1\n%s", s.UnprotectedIgnored, p.dump())
			}
			f := p.firstSeq(t, events.FaultInjected, nodeI, "forged an unprotected")
			ig := p.firstSeq(t, events.Unprotected, nodeR, "ignored")
			if f > ig {
				t.Errorf("ignored #%d before the forgery #%d", ig, f)
			}
			if n := len(p.r.SAs().IPsec); n != 1 || len(p.r.SAs().ISAKMP) != 1 {
				t.Errorf("the forgery cost the responder its SAs: %+v", p.r.SAs())
			}
		})
	}
}

// Forging needs an established ISAKMP SA.
func TestFaultForgeNeedsAnSA(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	if err := p.i.InjectFault(fault.Fault{Plane: fault.IKE, Action: fault.Forge, Forge: "delete"}); err == nil {
		t.Fatal("forge with no ISAKMP SA accepted")
	}
	if err := p.i.InjectFault(fault.Fault{Plane: fault.IKE, Action: fault.Drop, Message: msg("quick-mode 1/3"), Conn: "nope"}); err == nil {
		t.Fatal("a fault for an unknown connection accepted")
	}
}

// A replayed Quick Mode 1/3 reaches the responder after the exchange ended:
// a late duplicate, ignored.
func TestFaultReplayIgnored(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("quick-mode 1/3"), Action: fault.Replay})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	if s := p.r.Stats(); s.Duplicates != 1 || s.Malformed != 0 {
		t.Errorf("responder: %d duplicates, %d malformed; want 1, 0\n%s", s.Duplicates, s.Malformed, p.dump())
	}
	if n := len(p.r.SAs().IPsec); n != 1 {
		t.Errorf("responder holds %d pairs", n)
	}
}

// Delay and reorder hold a message back; the exchange still completes.
func TestFaultDelayAndReorder(t *testing.T) {
	for _, f := range []fault.Fault{
		{Message: msg("main-mode 1/6"), Action: fault.Delay, Delay: 3 * time.Second},
		{Message: msg("quick-mode 3/3"), Action: fault.Reorder},
		{Message: msg("aggressive-mode 2/3"), Action: fault.Delay, Delay: 1500 * time.Millisecond},
	} {
		t.Run(f.String(), func(t *testing.T) {
			mode := ike.MainMode
			if f.Message.Exchange == fault.Aggressive {
				mode = ike.AggressiveMode
			}
			p := newFaultPair(t, mode)
			e := p.i
			if f.Message.Exchange == fault.Aggressive {
				e = p.r
			}
			p.arm(t, e, f)
			if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
				t.Fatalf("initiate: %v (stuck %v)\n%s", err, stuck, p.dump())
			}
			if n := len(p.r.SAs().IPsec); n != 1 {
				t.Errorf("responder holds %d pairs\n%s", n, p.dump())
			}
		})
	}
}

// The nth occurrence: the second Main Mode 3/6 (the retransmission after the
// first was dropped) is dropped too; the third gets through.
func TestFaultOccurrences(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("main-mode 3/6"), Action: fault.Drop, Occurrence: fault.Occurrence{Count: 2}})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	if s := p.i.Stats(); s.Retransmits != 2 || s.FaultsInjected != 2 {
		t.Errorf("initiator: %d retransmissions, %d faults; want 2, 2", s.Retransmits, s.FaultsInjected)
	}

	// Every Main Mode 1/6 dropped: phase 1 fails cleanly after the
	// retransmission budget.
	p = newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("main-mode 1/6"), Action: fault.Drop, Occurrence: fault.Occurrence{Every: true}})
	err, stuck := p.run(t, 120*time.Second)
	if stuck || err == nil || !strings.Contains(err.Error(), "no answer to Main Mode 1/6") {
		t.Fatalf("initiate: %v (stuck %v), want no answer", err, stuck)
	}
	if s := p.i.Stats(); s.FaultsInjected != uint64(ike.DefaultRetransmitTries+1) {
		t.Errorf("%d faults for %d sendings", s.FaultsInjected, ike.DefaultRetransmitTries+1)
	}
	if p.i.ClearFaults() != 1 {
		t.Errorf("ClearFaults did not report the fault armed for every message")
	}
}

// An Informational (the Delete of a terminated tunnel) that is dropped
// leaves the peer with its SAs: no Delete reached it.
func TestFaultDropInformational(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	p.arm(t, p.i, fault.Fault{Message: msg("informational"), Action: fault.Drop, Occurrence: fault.Occurrence{Every: true}})
	if err := p.i.Terminate(context.Background(), "lab"); err != nil {
		t.Fatal(err)
	}
	p.settle(time.Second)
	if n := len(p.r.SAs().IPsec); n != 1 {
		t.Errorf("the responder lost its SAs without a Delete: %d pairs", n)
	}
	if s := p.i.Stats(); s.FaultsInjected != 2 {
		t.Errorf("%d Informationals dropped, want 2 (IPsec SAs, ISAKMP SA)", s.FaultsInjected)
	}
}

// Aggressive Mode 2/3 with a corrupted HASH_R: the initiator refuses it.
func TestFaultAggressiveCorruptHash(t *testing.T) {
	p := newFaultPair(t, ike.AggressiveMode)
	p.arm(t, p.r, fault.Fault{Message: msg("aggressive-mode 2/3"), Action: fault.Corrupt, Payload: fault.PayloadHash})
	err, stuck := p.run(t, 60*time.Second)
	if stuck || err == nil {
		t.Fatalf("initiate: %v (stuck %v), want a failure", err, stuck)
	}
	if p.i.Stats().AuthFailed != 1 {
		t.Errorf("initiator auth failures: %d\n%s", p.i.Stats().AuthFailed, p.dump())
	}
}

// A fault armed where nothing matches costs nothing and does nothing.
func TestFaultNotMatchingLeavesTrafficAlone(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("transaction"), Action: fault.Drop})
	if err, stuck := p.run(t, 30*time.Second); err != nil || stuck {
		t.Fatalf("initiate: %v (stuck %v)", err, stuck)
	}
	if s := p.i.Stats(); s.FaultsInjected != 0 || s.Retransmits != 0 {
		t.Errorf("%+v", s)
	}
	if l := p.i.ArmedFaults(); len(l) != 1 || l[0].Remaining != 1 || l[0].Seen != 0 {
		t.Errorf("the fault should still wait for its message: %+v", l)
	}
}

// ArmedFaults says what remains of each fault: one armed for a duration
// lists its end, and is gone once it has passed.
func TestArmedFaultsForADuration(t *testing.T) {
	p := newFaultPair(t, ike.MainMode)
	p.arm(t, p.i, fault.Fault{Message: msg("dpd"), Action: fault.Drop, Occurrence: fault.Occurrence{For: 10 * time.Second}})
	l := p.i.ArmedFaults()
	if len(l) != 1 || l[0].Remaining != -1 || l[0].Until.IsZero() {
		t.Fatalf("ArmedFaults: %+v", l)
	}
	p.settle(11 * time.Second)
	if l := p.i.ArmedFaults(); len(l) != 0 {
		t.Errorf("a fault past its duration is still listed: %+v", l)
	}
}

// Transaction (XAUTH, Mode Config) messages take faults too: the gateway's
// first XAUTH request is dropped and retransmitted; a corrupted HASH in the
// client's answer is refused, and its retransmission (the same damaged
// message) too, until the gateway gives up.
func TestFaultTransaction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     fault.Fault
		onGW  bool
		fails bool
	}{
		{"drop", fault.Fault{Message: msg("transaction"), Action: fault.Drop}, true, false},
		{"duplicate", fault.Fault{Message: msg("transaction"), Action: fault.Duplicate}, false, false},
		{"corrupt hash", fault.Fault{Message: msg("transaction"), Action: fault.Corrupt, Payload: fault.PayloadHash}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, gateway := remoteAccessConns(t, ike.MainMode, false, "wonderland")
			bus := events.NewBus("fault")
			p := &faultPair{pair: newPairOn(t, 13, client, gateway, bus), bus: bus}
			e := p.i
			if tc.onGW {
				e = p.r
			}
			p.arm(t, e, tc.f)
			err, stuck := p.run(t, 120*time.Second)
			if stuck {
				t.Fatalf("stuck\n%s", p.dump())
			}
			if (err != nil) != tc.fails {
				t.Fatalf("initiate: %v, want failure %v\n%s", err, tc.fails, p.dump())
			}
			p.firstSeq(t, events.FaultInjected, "", "XAUTH")
			if s := e.Stats(); s.FaultsInjected != 1 {
				t.Errorf("%d faults injected, want 1", s.FaultsInjected)
			}
		})
	}
}
