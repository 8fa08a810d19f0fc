package timeline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// A rung of the ladder is one IKE message:
//
//	gw-a       ── Main Mode 1/6: SA, VID ──────────▶ gw-b (203.0.113.2:500)  [office]
//
// drawn from its sender's event, or from the receiver's when the sender
// publishes nothing (a strongSwan node). With Verbose, the receiver's event
// is drawn too, as a receipt at the receiver:
//
//	gw-b       ◀── Main Mode 1/6 received from gw-a (198.51.100.2:500)  [office]
type rung struct {
	from, to string // node names, or addresses no node owns
	toAddr   string // the address the message went to
	name     string // "Main Mode 3/6"
	payloads []string
	lock     bool
	again    string // how a retransmission came about, "" for a first sending
	proposal string
	conn     string
	receipt  bool
}

// form is one way of drawing a rung, from the richest to the leanest: the
// first that fits the width wins.
type form struct {
	payloads int // payloadsFull, payloadsShort or payloadsBelow
	addr     bool
	proposal bool
	conn     bool
	wide     bool // the arrow's head at the wide ladder's column, else the compact one's
}

const (
	payloadsFull  = iota // "SA, VID, VID, VID"
	payloadsShort        // "SA, VID×3"
	payloadsBelow        // on a line of their own under the arrow
)

var (
	// The proposal is on the phase 1 and proposal lines; repeating it on
	// every arrow is for the unlimited (log) form only.
	logForm   = form{payloadsFull, true, true, true, true}
	wideForms = []form{
		{payloadsFull, true, false, true, true},
		{payloadsFull, false, false, true, true},
	}
	compactForms = []form{
		{payloadsShort, false, false, true, false},
		{payloadsShort, false, false, false, false},
		{payloadsBelow, false, false, false, false},
	}
)

// wideArrow is the wide ladder's arrow length, so that the heads line up for
// the usual labels.
const wideArrow = 57

func (t *Timeline) rungOf(e events.Event) rung {
	ike := e.IKE
	r := rung{from: e.Node, to: t.peerNode(e), toAddr: peerAddr(e), name: exchangeName(ike.Exchange),
		payloads: nameNotifies(ike.Payloads, notifies(e)), lock: ike.Encrypted, again: again(e),
		proposal: ike.Proposal, conn: e.Conn}
	if ike.MsgTotal > 1 {
		r.name += fmt.Sprintf(" %d/%d", ike.MsgNum, ike.MsgTotal)
	}
	if ike.Dir == events.Received {
		if t.silentSender(e) {
			// The sender tells nothing: the receipt is all there is, so
			// it is drawn as the sender's arrow.
			r.from, r.to, r.toAddr = r.to, e.Node, ike.Local
		} else {
			r.receipt = true
		}
	}
	return r
}

func (t *Timeline) ladder(e events.Event, col int) []string {
	r := t.rungOf(e)
	forms := wideForms
	switch {
	case t.opt.Width <= 0:
		forms = []form{logForm}
	case t.compact():
		forms = compactForms
	default:
		forms = append(append([]form{}, wideForms...), compactForms...)
	}
	var lines []string
	for _, f := range forms {
		lines = t.drawRung(r, f, col)
		if t.opt.Width <= 0 || DisplayWidth(lines[0]) <= t.opt.Width-col {
			return lines
		}
	}
	// Names too long for any form: wrap the leanest under the arrow.
	avail := max(t.opt.Width-col, 20)
	text := Wrap(StripANSI(lines[0]), avail, max(avail-t.namePad-1, 20))
	for i := 1; i < len(text); i++ {
		text[i] = strings.Repeat(" ", t.namePad+1) + text[i]
	}
	return append(text, lines[1:]...)
}

// drawRung renders r in form f; lines after the first are indented relative
// to the arrow's start and exclude the prefix.
func (t *Timeline) drawRung(r rung, f form, col int) []string {
	label := r.name
	payloads := strings.Join(r.payloads, ", ")
	if f.payloads == payloadsShort {
		payloads = shortPayloads(r.payloads)
	}
	if payloads != "" && f.payloads != payloadsBelow && !r.receipt {
		label += ": " + payloads
	}
	if r.lock {
		label += " 🔒"
	}
	label += r.again
	to := r.to
	if f.addr && r.toAddr != "" && r.toAddr != r.to {
		to += " (" + r.toAddr + ")"
	}
	from := pad(r.from, t.namePad)
	var s string
	if r.receipt {
		s = t.c(cyan, from) + " " + t.c(dim, "◀── "+label+" received from ") + t.c(cyan, to)
	} else {
		arrow := "── " + label + " "
		length := wideArrow
		if !f.wide {
			// The head at a fixed column leaves room for " peer  [conn]".
			length = t.opt.Width - 16 - col - DisplayWidth(from) - 1
		}
		arrow += strings.Repeat("─", max(1, length-1-DisplayWidth(arrow))) + "▶"
		s = t.c(cyan, from) + " " + t.c(blue, arrow) + " " + t.c(cyan, to)
	}
	if f.proposal && r.proposal != "" && !r.receipt {
		s += "  " + t.c(dim, "("+r.proposal+")")
	}
	if f.conn && r.conn != "" {
		s += "  " + t.c(dim, "["+r.conn+"]")
	}
	lines := []string{s}
	if f.payloads == payloadsBelow && payloads != "" && !r.receipt {
		in := DisplayWidth(from) + 4 // under the label, after "── "
		for _, l := range t.wrap(payloads, col+in) {
			lines = append(lines, strings.Repeat(" ", in)+t.c(blue, l))
		}
	}
	return lines
}

// again tells a retransmission by its place in the back-off, "↻ sent again
// (2 of 8, after 1s)", or as the answer to a duplicate.
func again(e events.Event) string {
	if e.Kind != events.IKERetransmit {
		return ""
	}
	num := func(k string) (int64, bool) {
		switch v := e.Fields[k].(type) {
		case int:
			return int64(v), true
		case int64:
			return v, true
		case float64: // from JSON
			return int64(v), true
		}
		return 0, false
	}
	if d, _ := e.Fields["duplicate"].(bool); d {
		return " ↻ sent again for a duplicate"
	}
	try, ok1 := num("try")
	tries, ok2 := num("tries")
	after, ok3 := num("after_ms")
	if !ok1 || !ok2 || !ok3 {
		return " ↻ sent again"
	}
	return fmt.Sprintf(" ↻ sent again (%d of %d, after %v)", try, tries, time.Duration(after)*time.Millisecond)
}

// nameNotifies writes each N payload with its type, "N(R-U-THERE)", when
// the types are known, one for each N: an Informational's notification is
// its whole point, and the explanation that names it is told only once.
func nameNotifies(payloads, types []string) []string {
	n := 0
	for _, p := range payloads {
		if p == "N" {
			n++
		}
	}
	if n == 0 || n != len(types) {
		return payloads
	}
	out := slices.Clone(payloads)
	for i, p := range out {
		if p == "N" {
			out[i] = "N(" + types[0] + ")"
			types = types[1:]
		}
	}
	return out
}

// shortPayloads writes runs of one payload once with a count: "SA, VID×5".
func shortPayloads(p []string) string {
	var out []string
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] == p[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, fmt.Sprintf("%s×%d", p[i], j-i))
		} else {
			out = append(out, p[i])
		}
		i = j
	}
	return strings.Join(out, ", ")
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
	case "xauth":
		return "XAUTH"
	case "modecfg":
		return "Mode Config"
	}
	return x
}
