package ike_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// TestResponderPolicyBeforeQM2: the responder's policy, and with it its
// route into the TUN, is in place before Quick Mode 2/3 leaves. The
// initiator may send ESP as soon as it has sent QM3; had the route come
// later, the reply to that first packet would have left the responder's
// gateway in the clear by its default route.
func TestResponderPolicyBeforeQM2(t *testing.T) {
	bus := events.NewBus("policy")
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	p := newPairOn(t, 1, ci, cr, bus)
	p.dpR.sent = func() int {
		p.wire.mu.Lock()
		defer p.wire.mu.Unlock()
		return len(p.wire.log)
	}
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	bus.Close()
	qm2 := -1
	for i, d := range p.wire.log {
		// The ISAKMP header's exchange type is its 19th byte.
		if d.from.Addr() == addrR && len(d.data) > 18 && isakmp.ExchangeType(d.data[18]) == isakmp.ExchangeQuickMode {
			qm2 = i
			break
		}
	}
	if qm2 < 0 {
		t.Fatal("the responder sent no Quick Mode message")
	}
	p.dpR.mu.Lock()
	defer p.dpR.mu.Unlock()
	if len(p.dpR.policySent) == 0 {
		t.Fatal("the responder installed no policy")
	}
	for k, n := range p.dpR.policySent {
		if n > qm2 {
			t.Errorf("policy %v went in after %d datagrams; Quick Mode 2/3 was datagram %d", k, n, qm2+1)
		}
	}
}

// TestResponderPolicyRefused: a policy the data plane refuses fails the
// responder's phase 2 with the reason, answers NO-PROPOSAL-CHOSEN instead
// of Quick Mode 2/3, and leaves no SA on either side.
func TestResponderPolicyRefused(t *testing.T) {
	bus := events.NewBus("policy")
	sub := bus.SubscribeWithHistory(nil)
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	p := newPairOn(t, 1, ci, cr, bus)
	p.dpR.policyErr = errors.New("the kernel refused the route")
	if err := p.initiate(t); err == nil {
		t.Error("Initiate succeeded although the responder refused the pair")
	}
	for p.deliver() {
	}
	bus.Close()
	var evs []events.Event
	for e := range sub.C() {
		evs = append(evs, e)
	}
	for _, e := range evs {
		if e.Kind == events.IKEMessage && e.Node == addrR.String() && e.IKE.Dir == events.Sent && e.IKE.Exchange == "quick" {
			t.Errorf("the responder sent Quick Mode 2/3 for a pair it cannot route\n%s", eventLines(evs))
		}
	}
	failed := findEvents(evs, events.Phase2Failed)
	var reason bool
	for _, f := range failed {
		reason = reason || f.Node == addrR.String() && strings.Contains(f.Message+f.Explain, "the kernel refused the route")
	}
	if !reason {
		t.Fatalf("the responder's phase 2 failure does not name its reason:\n%s", eventLines(evs))
	}
	for name, dp := range map[string]*fakeDataPlane{"initiator": p.dpI, "responder": p.dpR} {
		if sas := dp.SAs(); len(sas) != 0 {
			t.Errorf("the %s kept %d SAs: %v\n%s", name, len(sas), sas, eventLines(evs))
		}
	}
}
