// Package timeline renders a lab's event stream for a person at a terminal:
// grouped under the five steps of a tunnel's life, IKE messages drawn as a
// ladder between the peers, each line with a one-line explanation tied to the
// concept, everything fitted to the terminal's width.
package timeline

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Options tune the rendering.
type Options struct {
	Color   bool // ANSI colours (only on a terminal)
	Explain bool // add the one-line explanation under each line
	Verbose bool // also show debug-level events, and each IKE message's receipt
	Keys    bool // show the derived keys (events.KeysDerived), for teaching
	// Names maps addresses to node names, so the ladder names both peers.
	Names map[string]string
	// Silent names the nodes that publish no IKE events of their own
	// (strongSwan's charon): their messages are known only from the
	// receiver's event, so the ladder draws them from that.
	Silent map[string]bool
	// Width is the terminal's width in columns: every line fits it, long
	// ones wrap under their text, and below wideLadder columns the ladder
	// takes a compact form. Zero means no limit: one line per event, as in
	// a log file.
	Width int
}

// Below this width the ladder drops the peer's address and the proposal and
// shortens payload lists: the wide form needs about 140 columns, and half
// of it would wrap.
const wideLadder = 100

// window is how long a series of routine events (NAT-T keepalives, DPD
// probes) is counted before its summary is printed.
const window = 60 * time.Second

// Timeline writes events as they come.
type Timeline struct {
	w         io.Writer
	opt       Options
	t0        time.Time
	now       time.Time // the latest event's time
	began     bool
	sec       section // what the lines being printed are under
	heading   bool    // sec's heading is printed
	started   bool    // some section was opened
	lastSeen  map[events.Step]time.Time
	explained map[string]bool
	series    map[string]*series
	order     []*series // in order of first appearance, so that flushes are deterministic
	namePad   int       // the ladder's column for the sender's name
	// sides lists, by initiator cookie, the nodes that published events
	// about an ISAKMP SA: the other side of a message is the node at the
	// SA's other end, even when its address is a NAT's.
	sides map[string][]string
}

// section is what a heading announces: a step, and for a rekey, which
// connection's SAs are being replaced.
type section struct {
	step    events.Step
	rekey   bool
	conn    string
	phase15 bool // remote access between the phases: XAUTH, Mode Config
}

func (s section) title() string {
	if s.phase15 {
		return "Phase 1.5 · XAUTH, Mode Config"
	}
	t := s.step.Title()
	if s.rekey {
		t += " · rekey"
		if s.conn != "" {
			t += " [" + s.conn + "]"
		}
	}
	return t
}

// New returns a timeline writing to w.
func New(w io.Writer, opt Options) *Timeline {
	t := &Timeline{w: w, opt: opt, lastSeen: map[events.Step]time.Time{}, explained: map[string]bool{}, series: map[string]*series{}, sides: map[string][]string{}, namePad: 10}
	if t.compact() {
		// Node names in labs are short: aligning on the longest one rather
		// than on ten columns leaves the compact ladder room for its label.
		t.namePad = 4
		for _, n := range opt.Names {
			t.namePad = max(t.namePad, min(DisplayWidth(n), 10))
		}
	}
	return t
}

func (t *Timeline) compact() bool { return t.opt.Width > 0 && t.opt.Width < wideLadder }

// stepMarks tag a line whose step is not the heading's (a data packet in the
// middle of Quick Mode, say), so the reader can still tell. Each takes two
// columns, as the blank mark does.
var stepMarks = [...]string{"  ", "① ", "② ", "③ ", "④ ", "⑤ "}

// rekeyTrigger says whether e starts the replacement of IPsec SAs: the rekey
// itself, or the soft lifetime that asks for it. Whatever step the publisher
// gives the soft expiry, it is the start of a new Quick Mode, not a
// termination.
func rekeyTrigger(e events.Event) bool {
	if e.Kind == events.Rekey {
		return true
	}
	hard, ok := e.Fields["hard"].(bool)
	return e.Kind == events.SAExpired && ok && !hard
}

// sectionOf says under which heading e belongs, given the current one.
// Steps move forward as a tunnel comes up; an event of an earlier step opens
// a new heading only when that step had been quiet for a while (a new
// tunnel), so interleaved events do not make the headings flicker. A rekey
// always opens a Phase 2 heading of its own.
func (t *Timeline) sectionOf(e events.Event) (section, bool) {
	if rekeyTrigger(e) {
		s := section{step: events.StepPhase2, rekey: true, conn: e.Conn}
		return s, !t.started || t.sec != s
	}
	if phase15(e) {
		s := section{step: events.StepPhase1, phase15: true}
		return s, !t.started || t.sec != s
	}
	s := section{step: e.Step}
	switch {
	case !t.started:
		return s, true
	case e.Step == t.sec.step || e.Step == events.StepNone:
		return t.sec, false
	case e.Step > t.sec.step:
		return s, true
	}
	last, seen := t.lastSeen[e.Step]
	return s, !seen || e.Time.Sub(last) > 2*time.Second
}

// phase15 reports whether e belongs to the Transaction exchanges that
// remote access runs between phase 1 and Quick Mode.
func phase15(e events.Event) bool {
	if e.Kind == events.XAuth || e.Kind == events.ModeConfig {
		return true
	}
	return e.IKE != nil && (e.IKE.Exchange == "xauth" || e.IKE.Exchange == "modecfg")
}

// effectiveStep is the step e is shown as: a rekey's trigger belongs to
// Phase 2 whatever its publisher said.
func effectiveStep(e events.Event) events.Step {
	if rekeyTrigger(e) {
		return events.StepPhase2
	}
	return e.Step
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
	if !t.opt.Color || s == "" {
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

// summarised kinds are shown whatever their level: the NAT-T and DPD lessons
// name them, and summarised they cost a line a minute.
var summarised = map[events.Kind]bool{
	events.NATKeepalive: true,
	events.DPDSent:      true,
	events.DPDAck:       true,
}

// isMessage says whether e is an IKE message on the wire, as opposed to an
// outcome (an SA up, a proposal chosen) that carries IKEInfo for context.
func isMessage(e events.Event) bool {
	return e.IKE != nil && (e.Kind == events.IKEMessage || e.Kind == events.IKERetransmit)
}

// visible says whether e is shown at all. The ladder draws each message once,
// from its sender's event, so a receipt is shown only with Verbose, or when
// the sender publishes nothing of its own.
func (t *Timeline) visible(e events.Event) bool {
	if t.opt.Keys && e.Kind == events.KeysDerived || summarised[e.Kind] {
		return true
	}
	if !t.opt.Verbose && (e.Level == events.Debug || quiet[e.Kind]) {
		return false
	}
	if isMessage(e) && e.IKE.Dir == events.Received {
		return t.opt.Verbose || t.silentSender(e)
	}
	return true
}

func (t *Timeline) silentSender(e events.Event) bool {
	return t.opt.Silent[t.peerNode(e)]
}

// Write renders one event.
func (t *Timeline) Write(e events.Event) {
	if !t.began {
		t.t0, t.began = e.Time, true
	}
	if e.Time.After(t.now) {
		t.now = e.Time
	}
	if e.IKE != nil && e.IKE.ICookie != "" && e.Node != "" {
		if sides := t.sides[e.IKE.ICookie]; !slices.Contains(sides, e.Node) {
			t.sides[e.IKE.ICookie] = append(sides, e.Node)
		}
	}
	if !t.visible(e) {
		return
	}
	s := t.seriesOf(e)
	t.summarise(e, s)
	if s != nil && !s.take(t, e) {
		return
	}
	t.print(e)
}

// Flush prints what is counted but not yet told (the summaries of routine
// series). Call it when the stream ends.
func (t *Timeline) Flush() {
	for _, s := range t.order {
		s.emit(t, t.now, true)
	}
}

// print draws one event under its heading.
func (t *Timeline) print(e events.Event) {
	sec, open := t.sectionOf(e)
	if open {
		t.sec, t.heading, t.started = sec, false, true
	}
	step := effectiveStep(e)
	mark := stepMarks[0]
	if step != t.sec.step && step >= 0 && int(step) < len(stepMarks) {
		mark = stepMarks[step]
	}
	t.lastSeen[step] = e.Time
	prefix := mark + t.c(dim, fmt.Sprintf("%+8.3fs", e.Time.Sub(t.t0).Seconds())) + "  "
	col := DisplayWidth(prefix)
	indent := strings.Repeat(" ", col)
	var lines []string
	if isMessage(e) {
		lines = t.ladder(e, col)
	} else {
		lines = t.plain(e, col)
	}
	lines[0] = prefix + lines[0]
	for i := 1; i < len(lines); i++ {
		lines[i] = indent + lines[i]
	}
	if t.opt.Keys && e.Kind == events.KeysDerived {
		lines = append(lines, t.keys(e, col+t.whoWidth(e))...)
	}
	// Each explanation is told once: the first ESP packet explains tunnel
	// mode, the next ones need not.
	if t.opt.Explain && e.Explain != "" && !t.explained[e.Explain] {
		t.explained[e.Explain] = true
		for i, l := range t.wrap(e.Explain, col+2) {
			arrow := "  "
			if i == 0 {
				arrow = "↳ "
			}
			lines = append(lines, indent+t.c(dim, arrow+l))
		}
	}
	t.printHeading()
	for _, l := range lines {
		fmt.Fprintln(t.w, l)
	}
}

// printHeading prints the current section's heading before its first line,
// so that no heading stands with nothing under it.
func (t *Timeline) printHeading() {
	if t.heading {
		return
	}
	t.heading = true
	t.Heading(t.sec.title())
}

// wrap fits text that starts at column indent to the width.
func (t *Timeline) wrap(text string, indent int) []string {
	if t.opt.Width <= 0 {
		return []string{text}
	}
	avail := t.opt.Width - indent
	if avail < 20 { // a width too narrow for any layout: overflow rather than one word a line
		avail = 20
	}
	return Wrap(text, avail, avail)
}

func (t *Timeline) who(e events.Event) string {
	if e.Node != "" {
		return e.Node
	}
	return e.Link
}

func (t *Timeline) whoWidth(e events.Event) int {
	if w := t.who(e); w != "" {
		return DisplayWidth(w) + 2
	}
	return 0
}

// plain draws an event as who, then its message, wrapped under the message.
func (t *Timeline) plain(e events.Event, col int) []string {
	code, sign := t.style(e)
	ww := t.whoWidth(e)
	text := t.wrap(sign+e.Message, col+ww)
	lines := make([]string, len(text))
	for i, l := range text {
		lines[i] = strings.Repeat(" ", ww) + t.c(code, l)
	}
	if ww > 0 {
		lines[0] = t.c(cyan, t.who(e)) + "  " + t.c(code, text[0])
	}
	return lines
}

// style is the colour and leading sign of an event's message.
func (t *Timeline) style(e events.Event) (code, sign string) {
	switch e.Level {
	case events.Error:
		if e.Kind == events.ExpectFailed {
			return red, "✘ "
		}
		return red, ""
	case events.Warn:
		if e.Kind == events.FaultInjected {
			// The cause a lesson about faults is about: marked, so that the
			// reaction below it reads as one.
			return yellow, "⚡ "
		}
		return yellow, ""
	}
	switch e.Kind {
	case events.ExpectPassed:
		return green, "✔ "
	case events.Phase1Up, events.Phase2Up:
		return green, ""
	}
	return "", ""
}

// peerAddr is the other end of an event: the peer field when the publisher
// gave one, else the IKE message's remote address.
func peerAddr(e events.Event) string {
	if p, ok := e.Fields["peer"].(string); ok && p != "" {
		return p
	}
	if e.IKE != nil {
		return e.IKE.Remote
	}
	return ""
}

// nameOf is the node that owns an address ("203.0.113.2:500" or
// "203.0.113.2"), or the address itself.
func (t *Timeline) nameOf(addr string) string {
	host := addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		host = ap.Addr().String()
	}
	if n := t.opt.Names[host]; n != "" {
		return n
	}
	return addr
}

// peerNode names the other end of an IKE event: the node at the other end of
// its ISAKMP SA once that node has told of it, else the node that owns the
// peer's address.
func (t *Timeline) peerNode(e events.Event) string {
	if e.IKE != nil {
		for _, n := range t.sides[e.IKE.ICookie] {
			if n != e.Node {
				return n
			}
		}
	}
	return t.nameOf(peerAddr(e))
}
