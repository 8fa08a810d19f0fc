package ike_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// The robustness sweep (issue 20): every fault kind on every message of
// Main Mode, Aggressive Mode, Quick Mode and Informational, injected on the
// side that sends it, ours against ours. Each case must end, within the
// retransmission budget, with the SAs up after recovery or with a clean
// failure: no panic (InternalErrors), no Initiate that never returns, no
// half-open SA left, no negotiation left hanging. `go test -run
// TestFaultSweep -v` prints the table of outcomes.
func TestFaultSweep(t *testing.T) {
	type row struct{ fault, outcome string }
	var rows []row
	for _, c := range sweepCases() {
		name := c.String()
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			outcome := sweepOne(t, c)
			rows = append(rows, row{name, outcome})
		})
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tOUTCOME")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.fault, r.outcome)
	}
	tw.Flush()
	t.Logf("%d cases:\n%s", len(rows), b.String())
}

// sweepCases lists the faults: each action on each message, corrupt and
// omit on each payload the message carries (corrupt before and after
// encryption).
func sweepCases() []fault.Fault {
	var msgs []fault.Message
	for n := 1; n <= 6; n++ {
		msgs = append(msgs, fault.Message{Exchange: fault.MainMode, Num: n})
	}
	for _, ex := range []string{fault.Aggressive, fault.QuickMode} {
		for n := 1; n <= 3; n++ {
			msgs = append(msgs, fault.Message{Exchange: ex, Num: n})
		}
	}
	msgs = append(msgs, fault.Message{Exchange: fault.Informational})
	var out []fault.Fault
	for _, m := range msgs {
		base := fault.Fault{Plane: fault.IKE, Message: m}
		add := func(f fault.Fault) { out = append(out, f) }
		for _, a := range []fault.Action{fault.Drop, fault.Duplicate, fault.Reorder, fault.Replay} {
			f := base
			f.Action = a
			add(f)
		}
		f := base
		f.Action, f.Delay = fault.Delay, 2*time.Second
		add(f)
		for _, v := range fault.CookieValues {
			f := base
			f.Action, f.Cookie = fault.Cookie, v
			add(f)
		}
		f = base
		f.Action, f.Forge = fault.Forge, "delete"
		add(f)
		for _, p := range fault.CarriedBy(m) {
			for _, after := range []bool{false, true} {
				f := base
				f.Action, f.Payload, f.After = fault.Corrupt, p, after
				add(f)
			}
			f := base
			f.Action, f.Payload = fault.Omit, p
			add(f)
		}
	}
	return out
}

// sweepOne runs one case and returns its outcome in words.
func sweepOne(t *testing.T, f fault.Fault) string {
	mode := ike.MainMode
	if f.Message.Exchange == fault.Aggressive {
		mode = ike.AggressiveMode
	}
	p := newFaultPair(t, mode)
	// The sender of the message: the initiator sends the odd messages of
	// each exchange (and the Informational Delete, below).
	sender := p.i
	if f.Message.Num%2 == 0 && f.Message.Num > 0 {
		sender = p.r
	}
	var err error
	var stuck bool
	if f.Message.Exchange == fault.Informational {
		if err, stuck = p.run(t, 30*time.Second); err != nil || stuck {
			t.Fatalf("setup: %v (stuck %v)", err, stuck)
		}
		p.arm(t, sender, f)
		if err := p.i.Terminate(context.Background(), "lab"); err != nil {
			t.Fatal(err)
		}
	} else {
		p.arm(t, sender, f)
		err, stuck = p.run(t, 120*time.Second)
	}
	if stuck {
		t.Fatalf("stuck: Initiate never returned\n%s", p.dump())
	}
	p.settle(40 * time.Second) // past the half-open timeout and every retransmission
	for _, e := range []*ike.Engine{p.i, p.r} {
		s := e.Stats()
		if s.InternalErrors != 0 {
			t.Errorf("internal errors: %+v\n%s", s, p.dump())
		}
		if s.HalfOpen != 0 {
			t.Errorf("%d half-open SAs left", s.HalfOpen)
		}
		for _, sa := range e.SAs().ISAKMP {
			if sa.State != "established" {
				t.Errorf("an ISAKMP SA left in state %q", sa.State)
			}
		}
	}
	applied := p.i.Stats().FaultsInjected + p.r.Stats().FaultsInjected
	out := outcomeOf(p, err, f)
	if applied == 0 {
		out = "(no match) " + out
	}
	return out
}

// outcomeOf names how a case ended: up (with what recovered it), or failed
// with the notification or reason.
func outcomeOf(p *faultPair, err error, f fault.Fault) string {
	si, sr := p.i.Stats(), p.r.Stats()
	var notes []string
	if n := si.Retransmits + sr.Retransmits; n > 0 {
		notes = append(notes, fmt.Sprintf("%d retransmitted", n))
	}
	if n := si.Duplicates + sr.Duplicates; n > 0 {
		notes = append(notes, fmt.Sprintf("%d duplicates", n))
	}
	if n := si.UnprotectedIgnored + sr.UnprotectedIgnored; n > 0 {
		notes = append(notes, fmt.Sprintf("%d unprotected ignored", n))
	}
	if n := si.InvalidCookies + sr.InvalidCookies; n > 0 {
		notes = append(notes, "INVALID-COOKIE")
	}
	if n := si.UnknownSA + sr.UnknownSA; n > 0 {
		notes = append(notes, fmt.Sprintf("%d for an unknown SA", n))
	}
	if n := si.Malformed + sr.Malformed; n > 0 {
		notes = append(notes, fmt.Sprintf("%d malformed", n))
	}
	var notifies []string
	for _, e := range p.find(events.Notify, events.AuthFailed) {
		if e.Kind == events.AuthFailed {
			if s, _, ok := strings.Cut(e.Message, ":"); ok && !slices.Contains(notifies, s) {
				notifies = append(notifies, s)
			}
			continue
		}
		if n, ok := e.Fields["notify"].(string); ok && e.Fields["direction"] == "sent" && !slices.Contains(notifies, n) {
			notifies = append(notifies, n)
		}
	}
	up := len(p.i.SAs().IPsec) == 1 && len(p.r.SAs().IPsec) == 1
	var s string
	switch {
	case f.Message.Exchange == fault.Informational && len(p.r.SAs().IPsec) > 0:
		s = "Delete of the IPsec SAs lost: the peer keeps them"
	case f.Message.Exchange == fault.Informational:
		s = "Deletes arrived: SAs gone on both sides"
	case err == nil && up:
		s = "up"
	case err == nil && len(p.i.SAs().IPsec) == 1 && f.Message == (fault.Message{Exchange: fault.QuickMode, Num: 3}):
		// Quick Mode 3/3 has no answer: the initiator installs its SAs
		// without knowing whether the responder took it (RFC 2409's commit
		// bit exists for this). ESP then meets an SPI the responder does
		// not hold, and INVALID-SPI clears the initiator's SAs.
		s = "initiator up, responder refused 3/3 (unacknowledged in IKEv1)"
	case err == nil:
		s = "up on one side only"
	default:
		s = "failed"
		if len(notifies) > 0 {
			s += " (" + strings.Join(notifies, ", ") + ")"
		}
	}
	if len(notes) > 0 {
		s += "; " + strings.Join(notes, ", ")
	}
	return s
}
