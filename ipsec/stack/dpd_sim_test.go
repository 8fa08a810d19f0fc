package stack_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

func dpdPair(t *testing.T, action ike.DPDAction) (*world, *recorder, *gw, *gw) {
	w := newWorld(t)
	rec := w.record(events.DPDSent, events.DPDAck, events.DPDDead, events.SADeleted, events.Phase2Up, events.Acquire)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ca.DPD = ike.DPD{Delay: 10 * time.Second, Timeout: 30 * time.Second, Action: action}
	if action == ike.DPDHold {
		ca.Child.Start = ike.StartTrap
	}
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	return w, rec, a, b
}

// TestDPDAlive: an idle peer that answers R-U-THERE stays up.
func TestDPDAlive(t *testing.T) {
	w, rec, a, b := dpdPair(t, ike.DPDClear)
	w.advanceUntil(t, "an R-U-THERE-ACK", time.Second, 15*time.Second, func() bool { return len(rec.find(events.DPDAck, "A", "")) > 0 })
	w.run(time.Minute)
	if len(rec.find(events.DPDDead, "", "")) != 0 {
		t.Fatalf("a live peer was declared dead")
	}
	if p1, p2 := a.established(); p1 != 1 || p2 != 1 {
		t.Errorf("A lost its SAs: %d/%d", p1, p2)
	}
	sendThrough(t, a, b, hostA, hostB, "still there")
}

// TestDPDTrafficIsEnough: while ESP arrives from the peer, no R-U-THERE is
// needed (RFC 3706 §5.3).
func TestDPDTrafficIsEnough(t *testing.T) {
	w, rec, a, b := dpdPair(t, ike.DPDClear)
	for i := 0; i < 8; i++ {
		sendThrough(t, b, a, hostB, hostA, "sign of life")
		w.clock.Advance(5 * time.Second)
	}
	if n := len(rec.find(events.DPDSent, "A", "")); n != 0 {
		t.Errorf("A sent %d R-U-THERE while traffic came in", n)
	}
}

// TestDPDDeadClear: a peer that vanishes silently is declared dead after the
// timeout, and its SAs are removed.
func TestDPDDeadClear(t *testing.T) {
	w, rec, a, b := dpdPair(t, ike.DPDClear)
	b.stack.Crash()
	start := w.clock.Now()
	w.advanceUntil(t, "DPD to declare B dead", time.Second, 2*time.Minute, func() bool { return len(rec.find(events.DPDDead, "A", "")) > 0 })
	// Idle for 10 s, then R-U-THERE at 10, 20 and 30 s, unanswered for 30 s.
	if took := w.clock.Now().Sub(start); took < 40*time.Second || took > 41*time.Second {
		t.Errorf("declared dead after %v, want 40 s", took)
	}
	if n := len(rec.find(events.DPDSent, "A", "")); n != 3 {
		t.Errorf("%d R-U-THERE sent, want 3", n)
	}
	if !noSAs(a) || len(a.stack.DataPlane().SAs()) != 0 || len(a.stack.DataPlane().Policies()) != 0 {
		t.Errorf("A still holds SAs or policies after clearing: %+v %v", a.stack.SAs(), a.stack.DataPlane().Policies())
	}
}

// TestDPDDeadRestart: after the peer restarted (and lost its SAs), DPD
// declares the old SAs dead and negotiates new ones at once.
func TestDPDDeadRestart(t *testing.T) {
	w, rec, a, b := dpdPair(t, ike.DPDRestart)
	old := a.installed()[0]
	b.stack.Crash()
	if err := b.stack.Restart(); err != nil {
		t.Fatal(err)
	}
	w.advanceUntil(t, "new SAs after the restart", time.Second, 2*time.Minute, func() bool {
		in := a.installed()
		return len(rec.find(events.DPDDead, "A", "")) > 0 && len(in) == 1 && in[0].SPIIn != old.SPIIn
	})
	checkPairMirrors(t, a, b)
	sendThrough(t, a, b, hostA, hostB, "after the restart")
}

// TestDPDDeadHold: the SAs go, the trap policy stays, and the next packet
// negotiates again.
func TestDPDDeadHold(t *testing.T) {
	w, rec, a, b := dpdPair(t, ike.DPDHold)
	b.stack.Crash()
	w.advanceUntil(t, "DPD to declare B dead", time.Second, 2*time.Minute, func() bool { return len(rec.find(events.DPDDead, "A", "")) > 0 })
	if len(a.installed()) != 0 || len(a.stack.DataPlane().Policies()) != 1 {
		t.Fatalf("after hold: SAs %+v, policies %v", a.installed(), a.stack.DataPlane().Policies())
	}
	if err := b.stack.Restart(); err != nil {
		t.Fatal(err)
	}
	sendThrough(t, a, b, hostA, hostB, "wakes the tunnel")
	rec.waitFor(t, events.Acquire, "A", "")
}

// step advances the simulated clock in small steps for d, letting each
// step's messages arrive (and, with B alive, each R-U-THERE get its ACK)
// before the next, so that every event happens at its own instant.
func (w *world) step(t *testing.T, d time.Duration, rec *recorder, bAlive bool) {
	t.Helper()
	for ; d > 0; d -= 250 * time.Millisecond {
		w.clock.Advance(min(d, 250*time.Millisecond))
		if bAlive {
			eventually(t, "every R-U-THERE answered", func() bool {
				return len(rec.find(events.DPDAck, "A", "")) == len(rec.find(events.DPDSent, "A", ""))
			})
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// instants returns when the events happened, relative to t0.
func instants(evs []events.Event, t0 time.Time) []time.Duration {
	var out []time.Duration
	for _, e := range evs {
		out = append(out, e.Time.Sub(t0))
	}
	return out
}

func secs(ss ...float64) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		out = append(out, time.Duration(s*float64(time.Second)))
	}
	return out
}

// TestDPDProbeInstants (periodic, strongSwan's way, delay 3 s, timeout
// 10 s): the first R-U-THERE goes out exactly 3 s after the peer's last ESP
// packet, not at a later check that notices the counter moved (it used to
// come 6 s after); an answered probe restarts the 3 s; once the peer is
// gone, probes go every 3 s and it is declared dead 10 s after the first
// unanswered one.
func TestDPDProbeInstants(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.DPDSent, events.DPDAck, events.DPDDead)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ca.DPD = ike.DPD{Delay: 3 * time.Second, Timeout: 10 * time.Second}
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	w.clock.Advance(1500 * time.Millisecond)
	sendThrough(t, b, a, hostB, hostA, "the peer's last packet")
	t1 := w.clock.Now()
	w.step(t, 7*time.Second, rec, true)
	if got, want := instants(rec.find(events.DPDSent, "A", ""), t1), secs(3, 6); !slices.Equal(got, want) {
		t.Fatalf("R-U-THERE at %v after the last packet, want %v", got, want)
	}
	b.stack.Crash()
	w.step(t, 13*time.Second, rec, false)
	if got, want := instants(rec.find(events.DPDSent, "A", ""), t1), secs(3, 6, 9, 12, 15, 18); !slices.Equal(got, want) {
		t.Errorf("R-U-THERE at %v after the last packet, want %v", got, want)
	}
	if got, want := instants(rec.find(events.DPDDead, "A", ""), t1), secs(19); !slices.Equal(got, want) {
		t.Errorf("declared dead at %v, want %v (10 s after the first unanswered R-U-THERE)", got, want)
	}
}

// TestDPDOnDemand (RFC 3706 §5.3): an idle tunnel, or one where only the
// peer sends, is never probed; traffic we send into the peer's silence is
// what makes the next check (every delay after the last sign of life) ask.
func TestDPDOnDemand(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.DPDSent, events.DPDAck, events.DPDDead)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ca.DPD = ike.DPD{Mode: ike.DPDOnDemand, Delay: 3 * time.Second, Timeout: 10 * time.Second}
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	w.step(t, 15*time.Second, rec, true)
	sendThrough(t, b, a, hostB, hostA, "inbound only")
	heard := w.clock.Now()
	w.step(t, 10*time.Second, rec, true)
	if n := len(rec.find(events.DPDSent, "A", "")); n != 0 {
		t.Fatalf("on-demand DPD probed an idle tunnel %d times", n)
	}
	// Both ways, the peer answering: its packets are signs of life.
	for range 4 {
		sendThrough(t, a, b, hostA, hostB, "request")
		sendThrough(t, b, a, hostB, hostA, "reply")
		w.step(t, 2*time.Second, rec, true)
	}
	if n := len(rec.find(events.DPDSent, "A", "")); n != 0 {
		t.Fatalf("on-demand DPD probed a peer that answers %d times", n)
	}
	heard = w.clock.Now().Add(-2 * time.Second) // the last reply
	b.stack.Crash()
	w.step(t, 4200*time.Millisecond, rec, false) // the checks at +3 and +6 find nothing sent
	a.host.TUN().Send(sim.UDPPacket(hostA, hostB, []byte("into the void")))
	w.step(t, 20*time.Second, rec, false)
	if got, want := instants(rec.find(events.DPDSent, "A", ""), heard), secs(9, 12, 15, 18); !slices.Equal(got, want) {
		t.Errorf("R-U-THERE at %v after the peer's last packet, want %v (the first check after we sent, then every delay)", got, want)
	}
	if got, want := instants(rec.find(events.DPDDead, "A", ""), heard), secs(19); !slices.Equal(got, want) {
		t.Errorf("declared dead at %v, want %v", got, want)
	}
}

// TestDPDHoldOnTheResponder: hold leaves a trap on the side that declared the
// peer dead, whichever role it plays, and, as strongSwan's trap, that side's
// next packet negotiates: here the responder's.
func TestDPDHoldOnTheResponder(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.DPDDead, events.Acquire, events.Phase2Up)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	cb.DPD = ike.DPD{Delay: 10 * time.Second, Timeout: 30 * time.Second, Action: ike.DPDHold}
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	a.stack.Crash()
	w.advanceUntil(t, "DPD to declare A dead", time.Second, 2*time.Minute, func() bool { return len(rec.find(events.DPDDead, "B", "")) > 0 })
	if len(b.installed()) != 0 || len(b.stack.DataPlane().Policies()) != 1 {
		t.Fatalf("after hold, B holds SAs %+v and policies %v; want none and the trap", b.installed(), b.stack.DataPlane().Policies())
	}
	if err := a.stack.Restart(); err != nil {
		t.Fatal(err)
	}
	sendThrough(t, b, a, hostB, hostA, "from the responder's side")
	rec.waitFor(t, events.Acquire, "B", "")
	checkPairMirrors(t, a, b)
}
