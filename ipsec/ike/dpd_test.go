package ike_test

import (
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestDPDSequenceNumbers: an R-U-THERE-ACK counts only with the sequence
// number of our last R-U-THERE, and an R-U-THERE older than the last one
// answered is a replay; both are counted and ignored (RFC 3706 §7), while a
// repeat of the last R-U-THERE is answered again.
func TestDPDSequenceNumbers(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ci.DPD = ike.DPD{Delay: 10 * time.Second, Timeout: 30 * time.Second}
	bus := events.NewBus("dpd")
	p := newPairOn(t, 1, ci, cr, bus)
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	pump := func() {
		for p.deliver() {
		}
	}
	count := func(kind events.Kind, node string) int {
		n := 0
		for _, e := range bus.Since(0) {
			if e.Kind == kind && e.Node == node {
				n++
			}
		}
		return n
	}
	// What the initiator sends from here on are its ACKs.
	acks := func(node string) int {
		n := 0
		for _, e := range bus.Since(0) {
			if e.Kind == events.IKEMessage && e.Node == node && e.IKE.Dir == events.Sent && e.IKE.Exchange == "informational" {
				n++
			}
		}
		return n
	}
	nodeI := addrI.String()

	// The initiator's probe gets its ACK.
	p.clock.Advance(10 * time.Second)
	pump()
	if got := count(events.DPDAck, nodeI); got != 1 {
		t.Fatalf("%d R-U-THERE-ACKs taken after the first probe, want 1", got)
	}
	// An ACK with another number answers nothing.
	if err := p.r.SendDPD("lab", true, 7); err != nil {
		t.Fatal(err)
	}
	pump()
	if got := count(events.DPDAck, nodeI); got != 1 {
		t.Errorf("an ACK with a wrong sequence number was taken: %d ACKs", got)
	}
	if got := count(events.DPDIgnored, nodeI); got != 1 || p.i.Stats().DPDBadSequence != 1 {
		t.Errorf("a wrong ACK: %d dpd-ignored events, %d counted, want 1 and 1", got, p.i.Stats().DPDBadSequence)
	}

	// R-U-THERE 1000, then 1000 again (our ACK lost), 1001: all answered;
	// 999 after them is a replay.
	before := acks(nodeI)
	for _, seq := range []uint32{1000, 1000, 1001, 999} {
		if err := p.r.SendDPD("lab", false, seq); err != nil {
			t.Fatal(err)
		}
		pump()
	}
	if got := acks(nodeI) - before; got != 3 {
		t.Errorf("%d ACKs for R-U-THERE 1000, 1000, 1001, 999; want 3", got)
	}
	if got := p.i.Stats().DPDBadSequence; got != 2 {
		t.Errorf("%d DPD messages ignored for their sequence number, want 2", got)
	}
}
