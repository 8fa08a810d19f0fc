// Package timeline renders a lab's event stream for a person at a terminal:
// grouped under the five steps of a tunnel's life, IKE messages drawn as a
// ladder between the peers, each line with a one-line explanation tied to the
// concept.
package timeline

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Options tune the rendering.
type Options struct {
	Color   bool // ANSI colours (only on a terminal)
	Explain bool // add the one-line explanation under each line
	Verbose bool // also show debug-level events
	Keys    bool // show the derived keys (events.KeysDerived), for teaching
	// Names maps addresses to node names, so the ladder names both peers.
	Names map[string]string
}

// Timeline writes events as they come.
type Timeline struct {
	w         io.Writer
	opt       Options
	t0        time.Time
	step      events.Step
	began     bool
	lastSeen  map[events.Step]time.Time
	explained map[string]bool
}

// New returns a timeline writing to w.
func New(w io.Writer, opt Options) *Timeline {
	return &Timeline{w: w, opt: opt, step: -1, lastSeen: map[events.Step]time.Time{}, explained: map[string]bool{}}
}

// stepMarks tag a line whose step is not the heading's (a data packet in the
// middle of Quick Mode, say), so the reader can still tell.
var stepMarks = [...]string{"  ", "①", "②", "③", "④", "⑤"}

// regroup says whether an event of step s starts a new heading. Steps move
// forward as a tunnel comes up; an event of an earlier step opens a new
// heading only when that step had been quiet for a while (a rekey, a new
// tunnel), so interleaved events do not make the headings flicker.
func (t *Timeline) regroup(e events.Event) bool {
	if t.step < 0 {
		return true
	}
	if e.Step == t.step || e.Step == events.StepNone {
		return false
	}
	if e.Step > t.step {
		return true
	}
	last, seen := t.lastSeen[e.Step]
	return !seen || e.Time.Sub(last) > 2*time.Second
}

const (
	reset  = "\033[0m"
	bold   = "\033[1m"
	dim    = "\033[2m"
	red    = "\033[31m"
	green  = "\033[32m"
	yellow = "\033[33m"
	blue   = "\033[34m"
	cyan   = "\033[36m"
)

func (t *Timeline) c(code, s string) string {
	if !t.opt.Color {
		return s
	}
	return code + s + reset
}

// quiet kinds are summarised elsewhere or too chatty for the timeline.
var quiet = map[events.Kind]bool{
	events.LabProgress:  true,
	events.PingReply:    true,
	events.LinkCounters: true,
	events.SACounters:   true,
}

// Write renders one event.
func (t *Timeline) Write(e events.Event) {
	if !t.began {
		t.t0, t.began = e.Time, true
	}
	keys := t.opt.Keys && e.Kind == events.KeysDerived
	if !t.opt.Verbose && !keys && (e.Level == events.Debug || quiet[e.Kind]) {
		return
	}
	if e.IKE != nil && e.IKE.Dir == events.Received && !t.opt.Verbose {
		return // the ladder draws each message once, from its sender's event
	}
	if t.regroup(e) {
		t.header(e.Step)
	}
	mark := "  "
	if e.Step != t.step && int(e.Step) < len(stepMarks) {
		mark = stepMarks[e.Step]
	}
	t.lastSeen[e.Step] = e.Time
	at := fmt.Sprintf("%+8.3fs", e.Time.Sub(t.t0).Seconds())
	var line string
	switch {
	case e.IKE != nil && (e.Kind == events.IKEMessage || e.Kind == events.IKERetransmit):
		line = t.ladder(e)
	default:
		who := e.Node
		if who == "" && e.Link != "" {
			who = e.Link
		}
		if who != "" {
			who = t.c(cyan, who) + "  "
		}
		line = who + t.message(e)
	}
	fmt.Fprintf(t.w, "%s%s  %s\n", mark, t.c(dim, at), line)
	// Each explanation is told once: the first ESP packet explains tunnel
	// mode, the next ones need not.
	if t.opt.Explain && e.Explain != "" && !t.explained[e.Explain] {
		t.explained[e.Explain] = true
		fmt.Fprintf(t.w, "  %s  %s\n", strings.Repeat(" ", len(at)), t.c(dim, "↳ "+e.Explain))
	}
}

func (t *Timeline) header(s events.Step) {
	t.step = s
	title := s.Title()
	bar := strings.Repeat("━", max(2, 60-len([]rune(title))))
	fmt.Fprintf(t.w, "\n%s\n", t.c(bold, "━━ "+title+" "+bar))
}

func (t *Timeline) message(e events.Event) string {
	switch e.Level {
	case events.Error:
		if e.Kind == events.ExpectFailed {
			return t.c(red, "✘ "+e.Message)
		}
		return t.c(red, e.Message)
	case events.Warn:
		return t.c(yellow, e.Message)
	}
	switch e.Kind {
	case events.ExpectPassed:
		return t.c(green, "✔ "+e.Message)
	case events.Phase1Up, events.Phase2Up:
		return t.c(green, e.Message)
	}
	return e.Message
}

// ladder draws an IKE message as an arrow between the two peers:
//
//	gw-a ── Main Mode 1/6: SA, VID ──────────▶ gw-b
func (t *Timeline) ladder(e events.Event) string {
	ike := e.IKE
	from, to := e.Node, t.peerName(e)
	label := exchangeName(ike.Exchange)
	if ike.MsgNum > 0 {
		label += fmt.Sprintf(" %d", ike.MsgNum)
		if ike.MsgTotal > 0 {
			label += fmt.Sprintf("/%d", ike.MsgTotal)
		}
	}
	if len(ike.Payloads) > 0 {
		label += ": " + strings.Join(ike.Payloads, ", ")
	}
	if ike.Encrypted {
		label += " 🔒"
	}
	if e.Kind == events.IKERetransmit {
		label += " ↻ sent again"
	}
	arrow := "── " + label + " "
	if n := 56 - len([]rune(arrow)); n > 0 {
		arrow += strings.Repeat("─", n)
	}
	arrow += "▶"
	s := fmt.Sprintf("%s %s %s", t.c(cyan, pad(from, 10)), t.c(blue, arrow), t.c(cyan, to))
	if ike.Proposal != "" {
		s += "  " + t.c(dim, "("+ike.Proposal+")")
	}
	if e.Conn != "" {
		s += "  " + t.c(dim, "["+e.Conn+"]")
	}
	return s
}

func (t *Timeline) peerName(e events.Event) string {
	if p, ok := e.Fields["peer"].(string); ok && p != "" {
		return p
	}
	host := e.IKE.Remote
	if ap, err := netip.ParseAddrPort(host); err == nil {
		host = ap.Addr().String()
	}
	if n := t.opt.Names[host]; n != "" {
		if e.IKE.Remote != host {
			return n + " (" + e.IKE.Remote + ")"
		}
		return n
	}
	return e.IKE.Remote
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

func exchangeName(x string) string {
	switch x {
	case "main":
		return "Main Mode"
	case "aggressive":
		return "Aggressive Mode"
	case "quick":
		return "Quick Mode"
	case "informational":
		return "Informational"
	case "transaction":
		return "Transaction"
	}
	return x
}
