package stack_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// ikeHeader decodes the ISAKMP header of a datagram on port 500 or 4500.
func ikeHeader(d *sim.Datagram) (isakmp.Header, bool) {
	if d.Proto != sim.ProtoUDP || (d.Dst.Port() != 500 && d.Dst.Port() != 4500) {
		return isakmp.Header{}, false
	}
	b := d.Data
	if d.Dst.Port() == 4500 {
		if len(b) < 4 || b[0]|b[1]|b[2]|b[3] != 0 {
			return isakmp.Header{}, false // ESP or a keepalive
		}
		b = b[4:]
	}
	h, err := isakmp.DecodeHeader(b)
	return h, err == nil
}

// label names an IKE datagram by its place in the negotiation between
// initiator A and responder B: "MM1".."MM6", "QM1".."QM3", or the exchange.
func label(d *sim.Datagram) string {
	h, ok := ikeHeader(d)
	if !ok {
		return ""
	}
	fromA := d.Src.Addr() == addrA
	switch h.Exchange {
	case isakmp.ExchangeMainMode:
		n := 1 // SA
		switch {
		case h.Flags&isakmp.FlagEncryption != 0:
			n = 5
		case h.NextPayload == isakmp.PayloadKE:
			n = 3
		}
		if !fromA {
			n++
		}
		return "MM" + string(rune('0'+n))
	case isakmp.ExchangeQuickMode:
		switch {
		case !fromA:
			return "QM2"
		case h.Length < 100: // HASH(3) alone
			return "QM3"
		}
		return "QM1"
	}
	return h.Exchange.Abbrev()
}

// dropper loses the first copy of each labelled message.
type dropper struct {
	mu    sync.Mutex
	drops map[string]bool
}

func (d *dropper) filter(dg *sim.Datagram) bool {
	l := label(dg)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drops[l] {
		delete(d.drops, l)
		return false
	}
	return true
}

// initiateAsync runs Initiate in the background, for tests that must move
// the clock meanwhile.
func initiateAsync(t *testing.T, n *gw, conn string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- n.stack.Initiate(ctx(t), conn) }()
	return done
}

// TestRetransmissionAndDuplicates loses one copy of most messages of Main
// Mode and Quick Mode. The waiting side resends, the other recognises the
// repeat and answers it from its cache: the negotiation completes with one
// SA of each kind per side.
func TestRetransmissionAndDuplicates(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.IKERetransmit)
	d := &dropper{drops: map[string]bool{
		"MM1": true, // A resends it
		"MM4": true, // A resends MM3, B answers from its cache
		"MM6": true, // A resends MM5, B (already up) answers from its cache
		"QM2": true, // A resends QM1, B answers from its cache
		"QM3": true, // B resends QM2, A answers from its cache
	}}
	w.net.SetFilter(d.filter)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16-modp2048")
	a, b := w.pair(ca, cb, nil)
	done := initiateAsync(t, a, "lab")
	var err error
	w.advanceUntil(t, "the negotiation", 250*time.Millisecond, time.Minute, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPairMirrors(t, a, b)
	for _, n := range []*gw{a, b} {
		if st := n.stack.SAs(); len(st.ISAKMP) != 1 {
			t.Errorf("%s holds %d ISAKMP SAs, want 1", n.name, len(st.ISAKMP))
		}
	}
	if len(d.drops) != 0 {
		t.Errorf("messages never dropped (the exchange took another path): %v", d.drops)
	}
	sa, sb := a.stack.Stats().IKE, b.stack.Stats().IKE
	if sa.Retransmits != 4 || sb.Retransmits < 1 {
		t.Errorf("retransmissions: A %d (want MM1, MM3, MM5, QM1), B %d (want QM2)", sa.Retransmits, sb.Retransmits)
	}
	if sb.Duplicates < 3 || sa.Duplicates < 1 {
		t.Errorf("duplicates answered from the cache: A %d, B %d", sa.Duplicates, sb.Duplicates)
	}
	cached := rec.find(events.IKERetransmit, "B", "cached Main Mode 6/6")
	if len(cached) != 1 {
		t.Errorf("B should have answered the repeated MM5 with its cached MM6 once; events: %v", rec.all())
	}
}

// TestRetransmissionGivesUp: a peer that never answers ends the negotiation
// after the configured tries, with exponential back-off.
func TestRetransmissionGivesUp(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.IKERetransmit, events.Phase1Failed)
	w.net.SetFilter(func(d *sim.Datagram) bool { return d.Src.Addr() != addrB })
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.Retransmit = ike.Retransmit{Timeout: 2 * time.Second, Tries: 3, Base: 2}
	a, _ := w.pair(ca, cb, nil)
	done := initiateAsync(t, a, "lab")
	start := w.clock.Now()
	var err error
	w.advanceUntil(t, "giving up", time.Second, time.Minute, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err == nil || !strings.Contains(err.Error(), "no answer to Main Mode 1/6") {
		t.Fatalf("Initiate returned %v", err)
	}
	// 2 s, 4 s, 8 s between the sends, then 16 s more: gave up at 30 s.
	if took := w.clock.Now().Sub(start); took < 30*time.Second || took > 31*time.Second {
		t.Errorf("gave up after %v of simulated time, want 30 s (2+4+8+16)", took)
	}
	if n := len(rec.find(events.IKERetransmit, "A", "")); n != 3 {
		t.Errorf("%d retransmissions, want 3", n)
	}
	rec.waitFor(t, events.Phase1Failed, "A", "no answer")
}
