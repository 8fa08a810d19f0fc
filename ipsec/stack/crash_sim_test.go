package stack_test

import (
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// TestInvalidSPIAfterACrash: B crashes and comes back empty while A keeps its
// SAs. A's ESP for the lost SPI is counted at B; with no ISAKMP SA to say so
// under, B stays silent. Once A renews its ISAKMP SA (no INITIAL-CONTACT: A
// still holds SAs with B), a burst of stale packets draws exactly one
// protected INVALID-SPI, A deletes the SA it names, and its next packet
// negotiates a fresh pair.
func TestInvalidSPIAfterACrash(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Notify, events.SADeleted, events.Phase1Up, events.Phase2Up)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ca.Lifetime, cb.Lifetime = time.Minute, time.Minute
	ca.Child.Start = ike.StartTrap
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	stale := a.installed()[0]
	b.stack.Crash()
	if err := b.stack.Restart(); err != nil {
		t.Fatal(err)
	}
	send := func(n int) {
		for range n {
			a.host.TUN().Send(sim.UDPPacket(hostA, hostB, []byte("into a lost SA")))
		}
	}
	send(3)
	eventually(t, "B to count the stale packets", func() bool { return b.stack.Stats().DataPlane.UnknownSPI == 3 })
	rec.waitFor(t, events.Notify, "B", "no ISAKMP SA with it to say INVALID-SPI under")
	if n := b.stack.Stats().IKE.InvalidSPISent; n != 0 {
		t.Fatalf("B sent %d INVALID-SPI without an ISAKMP SA", n)
	}

	// A renews its ISAKMP SA before the minute is out.
	contacts := len(rec.find(events.Notify, "B", "INITIAL-CONTACT")) // the first phase 1's
	w.advanceUntil(t, "a second ISAKMP SA", time.Second, time.Minute, func() bool { return len(rec.find(events.Phase1Up, "B", "")) == 2 })
	if ic := rec.find(events.Notify, "B", "INITIAL-CONTACT"); len(ic) != contacts {
		t.Fatalf("A sent INITIAL-CONTACT while it holds SAs with B: %v", ic)
	}
	w.clock.Advance(2 * time.Second) // past the last report's rate limit
	send(20)
	rec.waitFor(t, events.SADeleted, "A", "INVALID-SPI")
	if n := b.stack.Stats().IKE.InvalidSPISent; n != 1 {
		t.Errorf("B sent %d INVALID-SPI for a burst of 20 stale packets, want 1", n)
	}
	if got := rec.find(events.Notify, "A", "received protected notification INVALID-SPI"); len(got) != 1 {
		t.Errorf("A received %d protected INVALID-SPI notifications, want 1", len(got))
	}
	// The trap is still there: the next packet negotiates a new pair.
	sendThrough(t, a, b, hostA, hostB, "through a fresh SA")
	if now := a.installed(); len(now) != 1 || now[0].SPIOut == stale.SPIOut {
		t.Errorf("after INVALID-SPI A holds %+v, want one new pair (the stale one had SPI out %s)", now, stale.SPIOut)
	}
}
