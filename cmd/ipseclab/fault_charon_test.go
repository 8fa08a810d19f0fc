package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/labrun"
)

// The robustness sweep's charon part, beyond TestFaultsAgainstStrongSwan
// (our gateway initiating Main Mode): charon initiating Main Mode against
// our faulted responder, and Aggressive Mode both ways. One lab, and so one
// charon, per mode and direction; the cases run one after the other in it,
// each brought down and checked clean before the next. Each case must end
// either up after recovery or in a clean failure with the notification it
// draws (want), never a stuck exchange: afterwards neither side holds any
// SA and our gateway no half-open one. `go test -run
// TestFaultSweepAgainstStrongSwan -v` prints the table of outcomes.
func TestFaultSweepAgainstStrongSwan(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	msg := func(s string) fault.Message {
		m, err := fault.ParseMessage(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	f := func(m string, a fault.Action) fault.Fault {
		return fault.Fault{Plane: fault.IKE, Message: msg(m), Action: a}
	}
	corrupt := func(m string, p fault.Payload, after bool) fault.Fault {
		x := f(m, fault.Corrupt)
		x.Payload, x.After = p, after
		return x
	}
	omit := func(m string, p fault.Payload) fault.Fault {
		x := f(m, fault.Omit)
		x.Payload = p
		return x
	}
	every := func(x fault.Fault) fault.Fault { x.Occurrence.Every = true; return x }
	forge := fault.Fault{Plane: fault.IKE, Action: fault.Forge, Forge: "delete"}
	labs := []struct {
		name      string
		initiator string
		mode      string
		cases     []charonCase
	}{
		{"main, charon initiates", "sw", "main", []charonCase{
			{f: f("main-mode 2/6", fault.Drop), want: "up"},
			{f: f("main-mode 2/6", fault.Duplicate), want: "up"},
			{f: f("main-mode 4/6", fault.Drop), want: "up"},
			// Without NAT-D charon sees no NAT and wants plain ESP, which
			// kernel-libipsec cannot do: NO-PROPOSAL-CHOSEN.
			{f: omit("main-mode 4/6", fault.PayloadNATD), want: "failed", expect: "NO-PROPOSAL-CHOSEN (charon sent)"},
			{f: f("main-mode 6/6", fault.Drop), want: "up"},
			{f: corrupt("main-mode 6/6", fault.PayloadHash, true), want: "failed", expect: "HASH mismatch"},
			{f: f("quick-mode 2/3", fault.Drop), want: "up"},
			{f: f("quick-mode 2/3", fault.Duplicate), want: "up"},
			{f: forge, afterUp: true, want: "up"},
			{f: every(f("dpd", fault.Drop)), afterUp: true, want: "failed", expect: "declared dead"},
			// The byte flipped is the last attribute's, the lifetime:
			// charon takes the shorter one.
			{f: corrupt("main-mode 2/6", fault.PayloadSA, false), want: "up"},
			{f: corrupt("main-mode 4/6", fault.PayloadNonce, false), want: "failed", expect: "AUTHENTICATION-FAILED (gw sent)"},
			{f: corrupt("main-mode 6/6", fault.PayloadHash, false), want: "failed", expect: "HASH mismatch"},
			// charon refuses it and each copy our cached answer repeats
			// (INVALID-HASH-INFORMATION), gives its Quick Mode up after its
			// retransmissions, and re-establishes the IKE SA on its own:
			// the new Quick Mode succeeds.
			{f: corrupt("quick-mode 2/3", fault.PayloadHash, false), want: "failed, then up", expect: "INVALID-HASH-INFORMATION (charon sent)"},
		}},
		{"aggressive, ours initiates", "gw", "aggressive", []charonCase{
			{f: f("aggressive-mode 1/3", fault.Drop), want: "up"},
			{f: f("aggressive-mode 1/3", fault.Duplicate), want: "up"},
			{f: f("aggressive-mode 3/3", fault.Drop), want: "up"},
			{f: corrupt("aggressive-mode 1/3", fault.PayloadNonce, false), want: "failed", expect: "AUTHENTICATION-FAILED (gw sent)"},
			{f: corrupt("aggressive-mode 3/3", fault.PayloadHash, false), want: "failed", expect: "HASH mismatch"},
		}},
		{"aggressive, charon initiates", "sw", "aggressive", []charonCase{
			{f: f("aggressive-mode 2/3", fault.Drop), want: "up"},
			{f: f("aggressive-mode 2/3", fault.Duplicate), want: "up"},
			{f: corrupt("aggressive-mode 2/3", fault.PayloadHash, false), want: "failed", expect: "AUTHENTICATION-FAILED (charon sent)"},
		}},
	}
	type row struct{ lab, fault, outcome string }
	var rows []row
	for i, l := range labs {
		t.Run(strings.ReplaceAll(strings.ReplaceAll(l.name, ", ", "/"), " ", "-"), func(t *testing.T) {
			s := startCharonSweep(t, fmt.Sprintf("fcs%d%d", i, os.Getpid()%10000), l.initiator, l.mode)
			for _, c := range l.cases {
				name := c.f.String()
				t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
					rows = append(rows, row{l.name, name, s.runCase(t, c)})
				})
			}
		})
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAB\tFAULT ON OUR GATEWAY\tOUTCOME")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.lab, r.fault, r.outcome)
	}
	tw.Flush()
	t.Logf("%d cases:\n%s", len(rows), b.String())
}

// charonCase is one fault on our gateway gw, and how the case must end:
// "up", "failed", or "failed, then up" (the initiation failed, and charon
// started over on its own).
type charonCase struct {
	f       fault.Fault
	afterUp bool   // armed once the tunnel is up (a forgery, DPD)
	want    string // up, failed, or failed, then up
	expect  string // what the outcome must say: the notification, the reason
}

// charonSweep is one deployed lab of our gateway gw and charon sw, and the
// events it publishes.
type charonSweep struct {
	c         *labrun.Client
	initiator string
	mu        sync.Mutex
	events    []events.Event
}

// charonRetransmit is both sides' ike.retransmit: charon gives up on a
// silent peer in about 5 s (1 + 1.5 + 2.25 s).
const charonRetransmit = "{timeout: 1s, tries: 2, base: 1.5}"

func startCharonSweep(t *testing.T, name, initiator, mode string) *charonSweep {
	responder := map[string]string{"gw": "sw", "sw": "gw"}[initiator]
	local, remote := "10.1.0.0/24", "10.2.0.0/24"
	if initiator == "sw" {
		local, remote = remote, local
	}
	lab := writeLab(t, name, twoSites("gw", "gateway", "sw", "strongswan", fmt.Sprintf(`ipsec:
  mixed:
    initiator: %s
    responder: %s
    auth: {secret: sweep-secret}
    ike: {mode: %s, proposals: [aes128-sha256-modp2048], retransmit: %s, dpd: {delay: 2s, timeout: 6s}}
    child: {local-ts: %s, remote-ts: %s, esp: [aes128-sha256], start: none}
`, initiator, responder, mode, charonRetransmit, local, remote)))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	c, err := labrun.DialLab(name)
	if err != nil {
		t.Fatal(err)
	}
	s := &charonSweep{c: c, initiator: initiator}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready := make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		_ = c.Events(ctx, 0, func(e events.Event) bool {
			once()
			s.mu.Lock()
			s.events = append(s.events, e)
			s.mu.Unlock()
			return true
		}, nil)
	}()
	<-ready
	return s
}

// since returns the events from index i on.
func (s *charonSweep) since(i int) []events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events[min(i, len(s.events)):])
}

func (s *charonSweep) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func (s *charonSweep) tunnel(up bool, timeout time.Duration) error {
	return s.c.Tunnel(context.Background(), labrun.TunnelRequest{Connection: "mixed", Up: up, TimeoutMS: timeout.Milliseconds()})
}

// state is what both sides hold: ESP SAs up on both, and whether anything
// at all (an SA of any kind and state, a half-open SA) is left.
func (s *charonSweep) state(t *testing.T) (up bool, left []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sas, err := s.c.SAs(ctx, "")
	if err != nil {
		t.Fatalf("sas: %v", err)
	}
	var ours, theirs bool
	for _, sa := range sas {
		left = append(left, fmt.Sprintf("%s %s %s", sa.Node, sa.Type, sa.State))
		if sa.Type == "esp" && sa.Impl == "ipseclab" {
			ours = true
		}
		if sa.Type == "esp" && sa.Impl == "strongswan" && sa.State == "INSTALLED" {
			theirs = true
		}
	}
	if n := s.counter(t, "gw", "half_open"); n != 0 {
		left = append(left, fmt.Sprintf("gw: %d half-open", n))
	}
	return ours && theirs, left
}

// counter reads one of a node's counters, whatever its group.
func (s *charonSweep) counter(t *testing.T, node, name string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.c.Stats(ctx, node)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	for _, ns := range st {
		for _, g := range ns.Counters {
			for _, c := range g.Counters {
				if c.Name == name {
					var v int64
					_ = json.Unmarshal(c.Value, &v)
					return v
				}
			}
		}
	}
	return 0
}

// runCase runs one case and returns its outcome in words.
func (s *charonSweep) runCase(t *testing.T, c charonCase) string {
	start := s.mark()
	arm := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.c.Fault(ctx, labrun.FaultRequest{Node: "gw", Fault: c.f}); err != nil {
			t.Fatalf("fault: %v", err)
		}
	}
	var err error
	if c.afterUp {
		if err := s.tunnel(true, 20*time.Second); err != nil {
			t.Fatalf("tunnel up before the fault: %v", err)
		}
		arm()
		// Long enough for charon's DPD (2 s idle, 6 s without an answer)
		// to conclude, or for a forged Delete to have done its harm.
		time.Sleep(10 * time.Second)
	} else {
		arm()
		err = s.tunnel(true, 20*time.Second)
		time.Sleep(time.Second) // a last retransmission answered, a late notification
	}
	up, _ := s.state(t)
	evs := s.since(start)
	outcome := describeCharonCase(evs, up, err)
	got := "failed"
	switch {
	case up && err != nil:
		got = "failed, then up"
	case up:
		got = "up"
	}
	if got != c.want || !strings.Contains(outcome, c.expect) {
		t.Errorf("%s: %s, want %s with %q (tunnel: %v)\n%s", c.f.String(), outcome, c.want, c.expect, err, eventLines(evs))
	}
	if !slices.ContainsFunc(evs, func(e events.Event) bool { return e.Kind == events.FaultInjected }) {
		t.Errorf("%s: the fault never acted", c.f.String())
	}
	// Clean up as a user would (the initiator brings the tunnel down), then
	// check that nothing is left: an exchange still under way, an SA one
	// side believes in, a half-open SA on ours. Ours forgets a half-open SA
	// whose peer gave up after its half-open timeout (30 s).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, _ = s.c.Fault(ctx, labrun.FaultRequest{Node: "gw", Clear: true})
	cancel()
	_ = s.tunnel(false, 10*time.Second)
	began := time.Now()
	for {
		_, left := s.state(t)
		if len(left) == 0 {
			if d := time.Since(began); d > 3*time.Second {
				outcome += fmt.Sprintf("; clean %.0fs after", d.Seconds())
			}
			break
		}
		if time.Since(began) > 40*time.Second {
			t.Errorf("%s: still there 40 s after the tunnel went down: %v\n%s", c.f.String(), left, eventLines(s.since(start)))
			outcome += "; LEFT " + strings.Join(left, ", ")
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return outcome
}

// describeCharonCase names how a case ended: up or failed, and the
// retransmissions and notifications that got it there.
func describeCharonCase(evs []events.Event, up bool, err error) string {
	var notes, notifies []string
	count := func(pred func(events.Event) bool) int {
		n := 0
		for _, e := range evs {
			if pred(e) {
				n++
			}
		}
		return n
	}
	if n := count(func(e events.Event) bool { return e.Kind == events.IKERetransmit && e.Node == "gw" }); n > 0 {
		notes = append(notes, fmt.Sprintf("gw retransmitted %d", n))
	}
	if n := count(func(e events.Event) bool {
		return e.Kind == events.StrongSwanLog && strings.Contains(e.Message, "retransmit") && strings.Contains(e.Message, "of request")
	}); n > 0 {
		notes = append(notes, fmt.Sprintf("charon retransmitted %d", n))
	}
	if n := count(func(e events.Event) bool { return e.Kind == events.Unprotected }); n > 0 {
		notes = append(notes, fmt.Sprintf("%d unprotected ignored", n))
	}
	if n := count(func(e events.Event) bool { return e.Kind == events.DPDDead }); n > 0 {
		notes = append(notes, "peer declared dead (DPD)")
	}
	for _, e := range evs {
		var n string
		switch {
		case e.Kind == events.AuthFailed && e.Node == "sw":
			n = "charon: authentication failed"
		case e.Kind == events.StrongSwanLog && strings.Contains(e.Message, "calculated HASH does not match"):
			n = "charon: HASH mismatch, IKE SA deleted"
		case e.Node == "gw" && (e.Kind == events.Notify || e.Kind == events.AuthFailed || e.Kind == events.NoProposal):
			name, _ := e.Fields["notify"].(string)
			dir, _ := e.Fields["direction"].(string)
			if name == "" {
				if s, _, ok := strings.Cut(e.Message, ":"); ok {
					name = s
				}
			}
			switch dir {
			case "sent":
				n = name + " (gw sent)"
			case "received":
				n = name + " (charon sent)"
			default:
				n = name + " (gw)"
			}
		}
		if n != "" && !slices.Contains(notifies, n) {
			notifies = append(notifies, n)
		}
	}
	s := "up"
	if !up || err != nil {
		s = "failed"
		if len(notifies) == 0 && err != nil {
			s += " (" + firstLine(err.Error()) + ")"
		}
	}
	if len(notifies) > 0 {
		s += " (" + strings.Join(notifies, ", ") + ")"
	}
	if up && err != nil {
		s += ", then up: charon started over"
	}
	if len(notes) > 0 {
		s += "; " + strings.Join(notes, ", ")
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func eventLines(evs []events.Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind == events.StrongSwanLog && e.Level == events.Debug {
			continue
		}
		fmt.Fprintf(&b, "  %s %s %s\n", e.Node, e.Kind, e.Message)
	}
	return b.String()
}
