package stack_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// mirrored reports whether every pair installed or rekeyed on one side is
// held by the other with the SPIs crossed, and returns how many pairs each
// side has installed.
func mirrored(a, b *gw) (ok bool, na, nb int) {
	has := func(n *gw, in, out string) bool {
		for _, s := range n.stack.SAs().IPsec {
			if s.SPIIn == in && s.SPIOut == out {
				return true
			}
		}
		return false
	}
	for _, s := range a.stack.SAs().IPsec {
		if !has(b, s.SPIOut, s.SPIIn) {
			return false, 0, 0
		}
	}
	for _, s := range b.stack.SAs().IPsec {
		if !has(a, s.SPIOut, s.SPIIn) {
			return false, 0, 0
		}
	}
	return true, len(a.installed()), len(b.installed())
}

// TestRekeyCollision: with no random part in the byte limit (rand_bytes 0),
// A's outbound SA and B's inbound SA reach the soft limit with the same
// packet, and both ends start a Quick Mode for the same pair. As charon does,
// both new pairs stay and the old one goes; at the next soft time limit the
// pair due sooner is redundant and is not rekeyed, until one pair remains.
// Every datagram, both ways, arrives throughout.
func TestRekeyCollision(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Rekey, events.RekeyCollision, events.Phase2Up, events.SADeleted)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256")
	for _, c := range []*ike.Connection{&ca, &cb} {
		c.Child.Lifetime, c.Child.LifeBytes, c.Child.RandBytes = time.Minute, 20000, ike.NoRand
	}
	a, b := w.pair(ca, cb, nil)
	old, _ := up(t, a, b)

	n := 0
	send := func(size int) {
		n++
		sendThrough(t, a, b, hostA, hostB, fmt.Sprintf("%05d %s", n, strings.Repeat("a", size)))
		sendThrough(t, b, a, hostB, hostA, fmt.Sprintf("%05d back", n))
	}
	// The simulated network has no latency, so a Quick Mode could finish
	// before the other end has even counted the packet that crosses its
	// limit. Holding IKE back until both ends have started does what a link
	// delay longer than that gap does: both first messages are on their way
	// before either arrives (retransmitted here, a second later).
	var hold atomic.Bool
	hold.Store(true)
	w.net.SetFilter(func(d *sim.Datagram) bool { _, isIKE := ikeHeader(d); return !isIKE || !hold.Load() })
	for len(rec.find(events.Rekey, "A", "soft limit")) == 0 || len(rec.find(events.Rekey, "B", "soft limit")) == 0 {
		send(500)
		if n > 60 {
			t.Fatalf("no rekey by both ends after %d packets: %v", n, rec.all())
		}
	}
	hold.Store(false)
	w.advanceUntil(t, "the collision", 100*time.Millisecond, 3*time.Second, func() bool {
		return len(rec.find(events.RekeyCollision, "A", "rekey collision")) == 1 && len(rec.find(events.RekeyCollision, "B", "rekey collision")) == 1
	})
	if ra, rb := rec.find(events.Rekey, "A", "rekeying"), rec.find(events.Rekey, "B", "rekeying"); len(ra) != 1 || len(rb) != 1 {
		t.Fatalf("both ends should have rekeyed the pair once: A %d, B %d", len(ra), len(rb))
	}
	// Through the overlap and past the old pair's deletion.
	w.advanceUntil(t, "the old pair's deletion", 500*time.Millisecond, 10*time.Second, func() bool {
		send(20)
		for _, n := range []*gw{a, b} {
			for _, s := range n.stack.SAs().IPsec {
				if s.SPIIn == old.SPIIn || s.SPIOut == old.SPIIn {
					return false
				}
			}
		}
		return true
	})
	ok, na, nb := mirrored(a, b)
	if !ok || na+nb < 3 {
		t.Fatalf("after the collision the two ends should mirror each other and keep both new pairs (installed: A %d, B %d): A %+v B %+v",
			na, nb, a.stack.SAs().IPsec, b.stack.SAs().IPsec)
	}
	// Through the next soft time limits until one pair is left: at each
	// end the duplicate due sooner is not rekeyed but expires. The ends
	// judge apart (as two charons do), and when each keeps another pair
	// and both rekey it within a round trip they collide again; the
	// random part of the soft limits makes that ever less likely.
	w.advanceUntil(t, "one pair again", 250*time.Millisecond, 240*time.Second, func() bool {
		if w.clock.Now().Sub(epoch)%(5*time.Second) == 0 {
			send(20)
		}
		ok, na, nb := mirrored(a, b)
		return ok && na == 1 && nb == 1 && len(a.stack.SAs().IPsec) == 1 && len(b.stack.SAs().IPsec) == 1
	})
	if len(rec.find(events.Rekey, "", "redundant")) == 0 {
		t.Errorf("no end declared a duplicate redundant: %v", rec.all())
	}
	send(20)
	if testing.Verbose() {
		for _, e := range rec.all() {
			t.Logf("%v %s", e.Time.Sub(epoch), e)
		}
	}
}

// TestISAKMPSAExpiresIPsecSAsLiveOn: with NoReauth the ISAKMP SA is not
// re-established: at its lifetime both ends delete it, the IPsec SAs carry
// on without it, and the rekey at their soft lifetime negotiates a new phase
// 1 first, without INITIAL-CONTACT (the ends still share SAs).
func TestISAKMPSAExpiresIPsecSAsLiveOn(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Rekey, events.Phase1Up, events.Phase2Up, events.SADeleted, events.SAExpired, events.Notify)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	for _, c := range []*ike.Connection{&ca, &cb} {
		c.Lifetime, c.NoReauth, c.Child.Lifetime = 30*time.Second, true, time.Minute
	}
	a, b := w.pair(ca, cb, nil)
	old, _ := up(t, a, b)
	w.advanceUntil(t, "the ISAKMP SA's expiry", time.Second, 35*time.Second, func() bool {
		return len(a.stack.SAs().ISAKMP) == 0 && len(b.stack.SAs().ISAKMP) == 0
	})
	if at := w.clock.Now().Sub(epoch); at < 30*time.Second {
		t.Errorf("the ISAKMP SA went at %v, before its lifetime of 30 s", at)
	}
	if got := rec.find(events.Rekey, "", "re-establishing"); len(got) != 0 {
		t.Errorf("the ISAKMP SA was re-established: %v", got)
	}
	if x, _ := checkPairMirrors(t, a, b); x.SPIIn != old.SPIIn {
		t.Fatalf("the IPsec SAs should outlive the ISAKMP SA: %+v", x)
	}
	sendThrough(t, a, b, hostA, hostB, "without an ISAKMP SA")
	sendThrough(t, b, a, hostB, hostA, "and back")

	// The rekey (51 to 54 s) needs an ISAKMP SA: phase 1 first.
	w.advanceUntil(t, "the rekey", 100*time.Millisecond, 30*time.Second, func() bool {
		ia, ib := a.installed(), b.installed()
		return len(ia) == 1 && ia[0].SPIIn != old.SPIIn && len(ib) == 1 && ib[0].SPIOut != old.SPIIn
	})
	for _, n := range []string{"A", "B"} {
		if got := rec.find(events.Phase1Up, n, "ISAKMP SA established"); len(got) != 2 {
			t.Errorf("%s: want a second phase 1 for the rekey, got %d", n, len(got))
		}
		if got := rec.find(events.Phase2Up, n, "they replace"); len(got) != 1 {
			t.Errorf("%s: want the pair replaced once, got %d", n, len(got))
		}
		if got := rec.find(events.SADeleted, n, "INITIAL-CONTACT"); len(got) != 0 {
			t.Errorf("%s dropped SAs on INITIAL-CONTACT: %v", n, got)
		}
	}
	if got := rec.find(events.Notify, "", "INITIAL-CONTACT"); len(got) != 1 {
		t.Errorf("INITIAL-CONTACT belongs to the first phase 1 only: %v", got)
	}
	sendThrough(t, a, b, hostA, hostB, "after the rekey")
	sendThrough(t, b, a, hostB, hostA, "and back after the rekey")
}
