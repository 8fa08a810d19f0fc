package labrun

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/topology"
)

// ActionFunc carries out one script step of a kind that a component owns
// (links own impair and link, NAT boxes own nat-flush, IPsec stacks own
// tunnel-up, tunnel-down, crash and restart).
type ActionFunc func(ctx context.Context, step *topology.Step) error

// CounterFunc reads an SA counter for `expect: {sa: ..., counter: ...}`.
type CounterFunc func(node, conn, counter string) (int64, error)

// RegisterAction lets a component carry out a script action.
func (r *Runtime) RegisterAction(name string, f ActionFunc) {
	r.scriptMu.Lock()
	defer r.scriptMu.Unlock()
	if r.actions == nil {
		r.actions = map[string]ActionFunc{}
	}
	r.actions[name] = f
}

// RegisterCounters lets the IPsec stacks answer SA counter expectations.
func (r *Runtime) RegisterCounters(f CounterFunc) {
	r.scriptMu.Lock()
	defer r.scriptMu.Unlock()
	r.counters = f
}

// eventLog keeps what the script's expectations and waits ask about: the
// events that one of them could match, from the script's start, so that an
// expectation can look back to the step it follows and wait for what comes
// next. Of every other event it notes only the sequence number and, unless
// periodic, the time: where the next steps' anchor lies and when the lab
// last did something. Keeping every event instead made a script's memory
// grow with its length (some 40 events per negotiation, 80,000 in a script
// of 2,000 tunnel-up/tunnel-down pairs), and the lab process, under its
// soft memory limit, spent a fifth of its time collecting it.
type eventLog struct {
	wanted map[string][]topology.EventMatch // by event kind

	mu     sync.Mutex
	cond   *sync.Cond
	events []events.Event // the wanted ones, oldest first
	closed bool

	last   atomic.Uint64 // the newest event's sequence number
	active atomic.Int64  // when the newest event not periodic happened (Unix ns)
}

// newEventLog subscribes to the bus, with its history, for what the script
// can ask about.
func newEventLog(bus *events.Bus, script []*topology.Step) (*eventLog, *events.Subscription) {
	l := &eventLog{wanted: map[string][]topology.EventMatch{}}
	l.cond = sync.NewCond(&l.mu)
	for _, step := range script {
		var m topology.EventMatch
		switch {
		case step.Expect != nil:
			m = step.Expect.EventMatch
		case step.Wait != nil:
			m = step.Wait.EventMatch
		}
		if m.Event != "" && !slices.Contains(l.wanted[m.Event], m) {
			l.wanted[m.Event] = append(l.wanted[m.Event], m)
		}
	}
	// The filter sees every event as it is published, in order: it notes
	// the sequence number and the time there, and lets through only the
	// wanted events, so that the others cost no delivery either.
	sub := bus.SubscribeWithHistory(func(e *events.Event) bool {
		l.last.Store(e.Seq)
		if !periodic[e.Kind] {
			l.active.Store(e.Time.UnixNano())
		}
		return slices.ContainsFunc(l.wanted[string(e.Kind)], func(m topology.EventMatch) bool { return matches(m, e) })
	})
	go func() {
		for e := range sub.C() {
			l.mu.Lock()
			l.events = append(l.events, e)
			l.mu.Unlock()
			l.cond.Broadcast()
		}
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.cond.Broadcast()
	}()
	return l, sub
}

// lastSeq is the sequence number of the newest event published.
func (l *eventLog) lastSeq() uint64 { return l.last.Load() }

// forget drops the kept events up to seq: no step looks back before its
// anchor.
func (l *eventLog) forget(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.events) && l.events[n].Seq <= seq {
		n++
	}
	l.events = slices.Delete(l.events, 0, n)
}

// find returns the first event after seq that matches, waiting until deadline.
func (l *eventLog) find(ctx context.Context, after uint64, match func(*events.Event) bool, deadline time.Time) (events.Event, bool) {
	stop := context.AfterFunc(ctx, l.cond.Broadcast)
	defer stop()
	timer := time.AfterFunc(time.Until(deadline), l.cond.Broadcast)
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for {
		for ; i < len(l.events); i++ {
			if l.events[i].Seq > after && match(&l.events[i]) {
				return l.events[i], true
			}
		}
		if l.closed || ctx.Err() != nil || !time.Now().Before(deadline) {
			return events.Event{}, false
		}
		l.cond.Wait()
	}
}

// lastActivity is the time of the newest event that is not periodic, or
// the zero time.
func (l *eventLog) lastActivity() time.Time {
	if ns := l.active.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func matcher(m topology.EventMatch) func(*events.Event) bool {
	return func(e *events.Event) bool { return matches(m, e) }
}

func matches(m topology.EventMatch, e *events.Event) bool {
	return string(e.Kind) == m.Event &&
		(m.Node == "" || e.Node == m.Node) &&
		(m.Connection == "" || e.Conn == m.Connection) &&
		(m.Link == "" || strings.Contains(e.Link, m.Link))
}

func describeMatch(m topology.EventMatch) string {
	s := m.Event
	if m.Connection != "" {
		s += " of connection " + m.Connection
	}
	if m.Node != "" {
		s += " on " + m.Node
	}
	if m.Link != "" {
		s += " on link " + m.Link
	}
	return s
}

// RunScript runs the lab's script and publishes its progress and outcome.
// Steps run in order; a step's `at` is measured from the script's start.
func (r *Runtime) RunScript(ctx context.Context) events.ScriptResult {
	var res events.ScriptResult
	lab := r.Lab
	pub := events.Publisher{Bus: r.Bus}
	// The log starts with the lab's history, so that expectations before the
	// first action see what deploy did (a `start: start` connection, say).
	log, sub := newEventLog(r.Bus, lab.Script)
	defer sub.Close()
	start := time.Now()
	pub.Publish(events.Event{Kind: events.ScriptStarted, Message: fmt.Sprintf("script: %d steps", len(lab.Script))})
	anchor, afterExpect := uint64(0), true
	var bg background
	fail := func(step *topology.Step, name, where string, err error) {
		msg := fmt.Sprintf("step %d (%s) %s: %v", step.Index+1, where, name, err)
		bg.mu.Lock()
		res.Errors = append(res.Errors, msg)
		bg.mu.Unlock()
		pub.Publish(events.Event{Kind: events.ScriptStep, Level: events.Error, Message: msg})
	}
	for _, step := range lab.Script {
		name, val, _ := step.Action()
		if at := step.StepAt().Duration; at > 0 {
			select {
			case <-time.After(time.Until(start.Add(at))):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			res.Errors = append(res.Errors, "the script was interrupted")
			break
		}
		where := fmt.Sprintf("%s:%d", step.Pos.File, step.Pos.Line)
		pub.Publish(events.Event{Kind: events.ScriptStep, Message: fmt.Sprintf("step %d (%s): %s", step.Index+1, where, describeStep(name, val)),
			Fields: map[string]any{"step": step.Index + 1, "action": name, "at": where}})
		// Expectations look back to the start of the run of actions they
		// follow: after "tunnel-up a; tunnel-up b", an expectation about a
		// may be met by an event during either step.
		if name != "expect" && afterExpect {
			anchor = log.lastSeq()
			log.forget(anchor)
		}
		afterExpect = name == "expect"
		var err error
		switch a := val.(type) {
		case *topology.PingStep:
			err = bg.run(a.Background, func() error { _, err := r.scriptPing(ctx, a); return err }, func(err error) { fail(step, name, where, err) })
		case *topology.TrafficStep:
			err = bg.run(a.Background, func() error { _, err := r.scriptTraffic(ctx, a); return err }, func(err error) { fail(step, name, where, err) })
		case *topology.WaitStep:
			err = r.scriptWait(ctx, log, a)
		case *topology.ExpectStep:
			background := a.Ping != nil && a.Ping.Background || a.Traffic != nil && a.Traffic.Background
			anchor := anchor
			bg.run(background, func() error {
				er := r.expect(ctx, log, anchor, step, a)
				bg.mu.Lock()
				res.Expectations = append(res.Expectations, er)
				bg.mu.Unlock()
				kind, lvl := events.ExpectPassed, events.Info
				if !er.Passed {
					kind, lvl = events.ExpectFailed, events.Error
				}
				pub.Publish(events.Event{Kind: kind, Level: lvl, Message: fmt.Sprintf("%s (%s): %s", er.Name, where, er.Detail), Expect: &er})
				return nil
			}, nil)
		default:
			r.scriptMu.Lock()
			f := r.actions[name]
			r.scriptMu.Unlock()
			if f == nil {
				err = fmt.Errorf("this lab has nothing that carries out %q", name)
			} else {
				err = f(ctx, step)
			}
		}
		if err != nil {
			fail(step, name, where, err)
		}
	}
	bg.wg.Wait()
	r.settle(ctx, log)
	passed, failed := res.Counts()
	level := events.Info
	if !res.OK() {
		level = events.Error
	}
	pub.Publish(events.Event{Kind: events.ScriptFinished, Level: level,
		Message: fmt.Sprintf("script finished in %s: %d expectations passed, %d failed, %d step errors", time.Since(start).Round(time.Millisecond), passed, failed, len(res.Errors)),
		Script:  &res})
	return res
}

// background runs the steps marked `background: true` beside the script:
// a stream that goes on while later steps reboot a NAT or cut a link. The
// script waits for them before it ends; mu guards the results they add.
type background struct {
	wg sync.WaitGroup
	mu sync.Mutex
}

// run runs f now, or, in the background, on its own goroutine, with its
// error handed to failed.
func (b *background) run(inBackground bool, f func() error, failed func(error)) error {
	if !inBackground {
		return f()
	}
	b.wg.Go(func() {
		if err := f(); err != nil && failed != nil {
			failed(err)
		}
	})
	return nil
}

// Settling: the script's last step may start work that is still under way
// when it returns (a tunnel-down's Delete on its way to the peer, the
// responder's half of a Quick Mode). The script ends when the lab has been
// quiet for longer than a packet takes to cross it, so that every node's
// events caused before the end are published before ScriptFinished, which is
// where `run` stops reading.
const (
	settleQuiet = 100 * time.Millisecond // beyond the links' delays
	settleLimit = 3 * time.Second        // a lab that never quiets down
)

// periodic kinds come on their own clock, not as the consequence of anything
// the script did: they do not keep a lab from settling.
var periodic = map[events.Kind]bool{
	events.LinkCounters: true, events.SACounters: true, events.LabProgress: true, events.NATKeepalive: true,
}

func (r *Runtime) settle(ctx context.Context, log *eventLog) {
	quiet := settleQuiet + 2*r.linkDelays()
	deadline := time.Now().Add(settleLimit + quiet)
	for ctx.Err() == nil {
		last := log.lastActivity()
		wait := time.Until(last.Add(quiet))
		if wait <= 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-time.After(min(wait, time.Until(deadline))):
		case <-ctx.Done():
		}
	}
}

// linkDelays bounds the time a packet spends on the lab's links, now: the
// sum over the links of each one's largest delay plus jitter.
func (r *Runtime) linkDelays() time.Duration {
	var sum time.Duration
	for _, l := range r.Lab.Topology.Links {
		il, ok := r.Deployment.Wire(l.Name).(*impair.Link)
		if !ok {
			continue
		}
		p := il.Params()
		sum += max(time.Duration(p.AtoB.Delay+p.AtoB.Jitter), time.Duration(p.BtoA.Delay+p.BtoA.Jitter))
	}
	return sum
}

func describeStep(name string, v any) string {
	switch a := v.(type) {
	case *topology.PingStep:
		return fmt.Sprintf("ping from %s to %s", a.From, a.To) + inBackground(a.Background)
	case *topology.TrafficStep:
		return fmt.Sprintf("traffic from %s to %s", a.From, a.To) + inBackground(a.Background)
	case *topology.TunnelStep:
		return fmt.Sprintf("%s %s", name, a.Connection)
	case *topology.LinkStep:
		if a.Down {
			return "link " + a.Name + " down"
		}
		return "link " + a.Name + " up"
	case *topology.ImpairStep:
		return "impair " + a.Link
	case *topology.NodeStep:
		return name + " " + a.Node
	case *topology.FaultStep:
		if f, clear, err := a.Fault(); err == nil && !clear {
			return "fault on " + a.Node + ": " + f.String()
		}
		return "fault on " + a.Node + ": clear"
	case *topology.WaitStep:
		if a.Event != "" {
			return "wait for " + describeMatch(a.EventMatch)
		}
		return "wait " + a.For.String()
	case *topology.ExpectStep:
		return "expect " + expectName(a) + inBackground(a.Ping != nil && a.Ping.Background || a.Traffic != nil && a.Traffic.Background)
	}
	return name
}

func inBackground(b bool) string {
	if b {
		return ", in the background"
	}
	return ""
}

func expectName(a *topology.ExpectStep) string {
	if a.Name != "" {
		return a.Name
	}
	switch {
	case a.Event != "" && a.Absent:
		return fmt.Sprintf("no %s within %s", describeMatch(a.EventMatch), withinOr(a))
	case a.Event != "":
		return fmt.Sprintf("%s within %s", describeMatch(a.EventMatch), withinOr(a))
	case a.Ping != nil && maxSuccessOr(a) == 0:
		return fmt.Sprintf("ping %s → %s gets no reply", a.Ping.From, a.Ping.To)
	case a.Ping != nil && maxSuccessOr(a) < 100:
		return fmt.Sprintf("ping %s → %s succeeds %g%%-%g%%", a.Ping.From, a.Ping.To, successOr(a), maxSuccessOr(a))
	case a.Ping != nil:
		return fmt.Sprintf("ping %s → %s succeeds ≥ %g%%", a.Ping.From, a.Ping.To, successOr(a))
	case a.Traffic != nil && (a.Traffic.Proto == "tcp"):
		return fmt.Sprintf("tcp %s → %s arrives intact", a.Traffic.From, a.Traffic.To)
	case a.Traffic != nil:
		return fmt.Sprintf("udp %s → %s loses at most %g%%", a.Traffic.From, a.Traffic.To, maxLossOr(a))
	case a.SA != nil:
		s := fmt.Sprintf("SA counter %s of %s on %s", a.Counter, a.SA.Connection, a.SA.Node)
		if a.Min != nil {
			s += fmt.Sprintf(" ≥ %d", *a.Min)
		}
		if a.Max != nil {
			s += fmt.Sprintf(" ≤ %d", *a.Max)
		}
		return s
	}
	return "expectation"
}

func withinOr(a *topology.ExpectStep) time.Duration {
	if a.Within.Duration > 0 {
		return a.Within.Duration
	}
	return 10 * time.Second
}

func successOr(a *topology.ExpectStep) float64 {
	if a.Success == nil {
		if a.MaxSuccess != nil {
			return 0
		}
		return 100
	}
	return float64(*a.Success)
}

func maxLossOr(a *topology.ExpectStep) float64 {
	if a.MaxLoss == nil {
		return 0
	}
	return float64(*a.MaxLoss)
}

func maxSuccessOr(a *topology.ExpectStep) float64 {
	if a.MaxSuccess == nil {
		return 100
	}
	return float64(*a.MaxSuccess)
}

func (r *Runtime) expect(ctx context.Context, log *eventLog, anchor uint64, step *topology.Step, a *topology.ExpectStep) events.ExpectResult {
	er := events.ExpectResult{Step: step.Index + 1, At: fmt.Sprintf("%s:%d", step.Pos.File, step.Pos.Line), Name: "expect " + expectName(a)}
	switch {
	case a.Event != "":
		deadline := time.Now().Add(withinOr(a))
		e, found := log.find(ctx, anchor, matcher(a.EventMatch), deadline)
		if a.Absent {
			if found {
				er.Detail = fmt.Sprintf("it happened: %s", e.Message)
			} else {
				er.Passed, er.Detail = true, "it did not happen"
			}
		} else if found {
			er.Passed, er.Detail = true, e.Message
		} else {
			er.Detail = fmt.Sprintf("no %s event within %s", describeMatch(a.EventMatch), withinOr(a))
		}
	case a.Ping != nil:
		res, err := r.scriptPing(ctx, a.Ping)
		if err != nil {
			er.Detail = err.Error()
			break
		}
		rate := 100 * (1 - res.Loss())
		er.Passed = rate+1e-9 >= successOr(a) && rate-1e-9 <= maxSuccessOr(a)
		er.Detail = fmt.Sprintf("%d/%d replies (%.0f%%), expected %g%% to %g%%", res.Received, res.Sent, rate, successOr(a), maxSuccessOr(a))
	case a.Traffic != nil:
		res, err := r.scriptTraffic(ctx, a.Traffic)
		if err != nil {
			er.Detail = err.Error()
			break
		}
		if res.Proto == "tcp" {
			er.Passed = res.Intact()
		} else {
			loss := 100 * float64(res.Lost) / float64(max(res.Sent, 1))
			er.Passed = loss <= maxLossOr(a)+1e-9 && res.Duplicated == 0
		}
		er.Detail = res.String()
	case a.SA != nil:
		r.scriptMu.Lock()
		f := r.counters
		r.scriptMu.Unlock()
		if f == nil {
			er.Detail = "no IPsec stack answers SA counter questions in this lab"
			break
		}
		v, err := f(a.SA.Node, a.SA.Connection, a.Counter)
		if err != nil {
			er.Detail = err.Error()
			break
		}
		er.Passed = (a.Min == nil || v >= *a.Min) && (a.Max == nil || v <= *a.Max)
		er.Detail = fmt.Sprintf("%s is %d", a.Counter, v)
	}
	return er
}

func (r *Runtime) nsOf(node string) string { return NetnsPath(NodeNetns(r.Lab.Name, node)) }

func (r *Runtime) scriptPing(ctx context.Context, a *topology.PingStep) (PingResult, error) {
	opt := PingOptions{Count: a.Count, Interval: a.Interval.Duration, Timeout: a.Timeout.Duration, Size: a.Size, DontFragment: a.DF}
	if opt.Interval == 0 {
		opt.Interval = 200 * time.Millisecond
	}
	pub := events.Publisher{Bus: r.Bus, Node: a.From}
	res, err := Ping(ctx, r.nsOf(a.From), a.To.Addr, opt, func(rep PingReply) {
		pub.Publish(events.Event{Kind: events.PingReply, Level: events.Debug,
			Message: fmt.Sprintf("%d bytes from %s: icmp_seq=%d ttl=%d time=%.3f ms", rep.Size, rep.From, rep.Seq, rep.TTL, float64(rep.RTT.Microseconds())/1000),
			Fields:  map[string]any{"seq": rep.Seq, "rtt_ms": float64(rep.RTT.Microseconds()) / 1000, "ttl": rep.TTL, "from": rep.From.String()}})
	})
	if err != nil {
		return res, err
	}
	lvl := events.Info
	if res.Received < res.Sent {
		lvl = events.Warn
	}
	pub.Publish(events.Event{Kind: events.PingResult, Level: lvl,
		Message: fmt.Sprintf("ping %s → %s: %d sent, %d received, %.0f%% loss%s%s%s", a.From, a.To, res.Sent, res.Received, 100*res.Loss(), lostSeqs(res), rttSummary(res), pingErrors(res)),
		Fields: map[string]any{"sent": res.Sent, "received": res.Received, "loss": res.Loss(), "errors": res.Errors,
			"rtt_avg_ms": float64(res.Avg.Microseconds()) / 1000}})
	return res, nil
}

// lostSeqs names the requests that got no reply, as ranges: where in a
// stream the loss fell, and how long it lasted.
func lostSeqs(r PingResult) string {
	if r.Received >= r.Sent {
		return ""
	}
	got := map[int]bool{}
	for _, rep := range r.Replies {
		got[rep.Seq] = true
	}
	var ranges []string
	for seq := 1; seq <= r.Sent; seq++ {
		if got[seq] {
			continue
		}
		end := seq
		for end+1 <= r.Sent && !got[end+1] {
			end++
		}
		if end == seq {
			ranges = append(ranges, fmt.Sprint(seq))
		} else {
			ranges = append(ranges, fmt.Sprintf("%d–%d", seq, end))
		}
		seq = end
	}
	return " (no reply to icmp_seq " + strings.Join(ranges, ", ") + ")"
}

// pingErrors lists what came back instead of replies (ICMP errors, local
// send errors), each once.
func pingErrors(r PingResult) string {
	var uniq []string
	for _, e := range r.Errors {
		if !slices.Contains(uniq, e) {
			uniq = append(uniq, e)
		}
	}
	if len(uniq) == 0 {
		return ""
	}
	return " (" + strings.Join(uniq, "; ") + ")"
}

func rttSummary(r PingResult) string {
	if r.Received == 0 {
		return ""
	}
	return fmt.Sprintf(", rtt avg %.3f ms", float64(r.Avg.Microseconds())/1000)
}

func (r *Runtime) scriptTraffic(ctx context.Context, a *topology.TrafficStep) (TrafficResult, error) {
	owner, _, ok := r.Lab.Owner(a.To.Addr)
	if !ok {
		return TrafficResult{}, fmt.Errorf("no node of the lab has address %s to receive the traffic", a.To)
	}
	opt := TrafficOptions{Proto: a.Proto, Port: a.Port, Duration: a.Duration.Duration, Size: a.Size, Count: a.Count, Bytes: int64(a.Bytes)}
	if a.Rate != "" {
		rate, err := netem.ParseRate(a.Rate)
		if err != nil {
			return TrafficResult{}, err
		}
		opt.Rate = float64(rate)
	}
	res, err := Traffic(ctx, r.nsOf(a.From), r.nsOf(owner), a.To.Addr, opt)
	if err != nil {
		return res, err
	}
	lvl := events.Info
	if !res.Intact() {
		lvl = events.Warn
	}
	events.Publisher{Bus: r.Bus, Node: a.From}.Publish(events.Event{Kind: events.TrafficReport, Level: lvl, Message: res.String(),
		Fields: map[string]any{"result": res}})
	return res, nil
}

func (r *Runtime) scriptWait(ctx context.Context, log *eventLog, a *topology.WaitStep) error {
	if a.Event == "" {
		select {
		case <-time.After(a.For.Duration):
		case <-ctx.Done():
		}
		return nil
	}
	timeout := a.Timeout.Duration
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if _, ok := log.find(ctx, log.lastSeq(), matcher(a.EventMatch), time.Now().Add(timeout)); !ok {
		return fmt.Errorf("no %s within %s", describeMatch(a.EventMatch), timeout)
	}
	return nil
}
