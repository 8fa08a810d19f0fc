package ike_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestResponderPolicyFailureAfterQM2: the responder installs its policy
// while Quick Mode 2/3 travels. When that fails, the phase 2 fails on its
// side with the reason, its inbound SA goes, and a Delete tells the
// initiator that the pair it installed cannot work: no SA is left on
// either side.
func TestResponderPolicyFailureAfterQM2(t *testing.T) {
	bus := events.NewBus("policy")
	sub := bus.SubscribeWithHistory(nil)
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	p := newPairOn(t, 1, ci, cr, bus)
	p.dpR.policyErr = errors.New("the kernel refused the route")
	_ = p.initiate(t) // the initiator may see its pair up before the Delete
	for p.deliver() {
	}
	bus.Close()
	var evs []events.Event
	for e := range sub.C() {
		evs = append(evs, e)
	}
	// The answer left before the policy went in: QM2, then a Delete of
	// the SA it offered, then the failure.
	order := ""
	for _, e := range evs {
		switch {
		case e.Kind == events.IKEMessage && e.Node == addrR.String() && e.IKE.Dir == events.Sent:
			order += " " + e.IKE.Exchange
		case e.Kind == events.Phase2Failed && e.Node == addrR.String():
			order += " failed"
		}
	}
	if !strings.Contains(order, "quick informational failed") {
		t.Errorf("the responder sent%s; want Quick Mode 2/3, then the Delete, then the failure\n%s", order, eventLines(evs))
	}
	failed := findEvents(evs, events.Phase2Failed)
	if len(failed) == 0 || !strings.Contains(failed[0].Message+failed[0].Explain, "the kernel refused the route") {
		t.Fatalf("the responder's phase 2 failure does not name its reason:\n%s", eventLines(evs))
	}
	for name, dp := range map[string]*fakeDataPlane{"initiator": p.dpI, "responder": p.dpR} {
		if sas := dp.SAs(); len(sas) != 0 {
			t.Errorf("the %s kept %d SAs: %v\n%s", name, len(sas), sas, eventLines(evs))
		}
	}
}
