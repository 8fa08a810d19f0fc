package stack_test

import (
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
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
