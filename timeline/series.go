package timeline

import (
	"fmt"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// A series is a routine that repeats: NAT-T keepalives from one node to one
// peer, DPD's R-U-THERE and R-U-THERE-ACK on one connection. Its first is
// drawn in full; the next ones are counted, and told as one line per
// window:
//
//	gw-a  NAT-T keepalive ×3 to 203.0.113.2 in the last 60 s
//	gw-a  DPD R-U-THERE/ACK ×5 with gw-b in the last 60 s, all answered
//
// An R-U-THERE that goes unanswered is not routine: the count so far is
// told at once, and the series is drawn in full until an answer comes again.
type series struct {
	dpd      bool   // else NAT-T keepalives
	who      string // the node the summary is about: the keepalives' sender, the R-U-THERE's asker
	peer     string
	conn     string
	step     events.Step
	counting bool      // the first was drawn in full; the next are counted
	start    time.Time // the counts run from here: the last line printed about the series
	n        int       // keepalives, or R-U-THEREs
	answered int       // R-U-THERE-ACKs
	waiting  bool      // an R-U-THERE has had no answer yet
}

// dpdNotify says which DPD notification an Informational message carries:
// "R-U-THERE", "R-U-THERE-ACK" or "".
func dpdNotify(e events.Event) string {
	if !isMessage(e) || e.IKE.Exchange != "informational" {
		return ""
	}
	for _, n := range notifies(e) {
		if n == "R-U-THERE" || n == "R-U-THERE-ACK" {
			return n
		}
	}
	return ""
}

// notifies lists the notification types a message carries, from the
// "notify" field the engine sets on every message with Notify payloads.
func notifies(e events.Event) []string {
	switch v := e.Fields["notify"].(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any: // as decoded from JSON
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// seriesOf finds the series e belongs to, or nil.
func (t *Timeline) seriesOf(e events.Event) *series {
	var key string
	dpd := false
	switch {
	case e.Kind == events.NATKeepalive:
		key = "keepalive\x00" + e.Node + "\x00" + peerAddr(e)
	case e.Kind == events.DPDSent || e.Kind == events.DPDAck || dpdNotify(e) != "":
		// By connection: the asker's and the answerer's events are one
		// conversation, and the events about it do not all name the peer.
		dpd = true
		key = "dpd\x00" + e.Conn
		if e.Conn == "" {
			key += e.Node
		}
	default:
		return nil
	}
	s := t.series[key]
	if s == nil {
		s = &series{dpd: dpd, conn: e.Conn}
		t.series[key] = s
		t.order = append(t.order, s)
	}
	return s
}

// summarise tells the counts that are due before e: all of them before a
// warning, an error or the end of the script, which read better after the
// routine that led to them, and otherwise those whose window has passed.
// own is e's series, which take handles.
func (t *Timeline) summarise(e events.Event, own *series) {
	closing := e.Level == events.Warn || e.Level == events.Error || e.Kind == events.ScriptFinished
	for _, s := range t.order {
		switch {
		case s == own:
		case closing:
			s.emit(t, e.Time, false)
		case !s.waiting && e.Time.Sub(s.start) >= window:
			s.emit(t, e.Time, false)
		}
	}
}

// take counts e into the series and says whether it is drawn.
func (s *series) take(t *Timeline, e events.Event) bool {
	s.step = e.Step
	if s.counting && s.n == 0 && e.Time.Sub(s.start) >= window {
		s.counting = false // quiet for a whole window: it starts again, in full
	}
	if !s.dpd {
		s.who, s.peer = e.Node, peerAddr(e)
		if !s.counting {
			s.counting, s.start = true, e.Time
			return true
		}
		s.n++
		if e.Time.Sub(s.start) >= window {
			s.emit(t, e.Time, true)
		}
		return false
	}
	s.learn(t, e)
	notify := dpdNotify(e)
	probe := e.Kind == events.DPDSent || (notify == "R-U-THERE" && e.IKE.Dir == events.Sent)
	if s.counting && probe && s.waiting {
		// The last R-U-THERE got no answer: tell the count, then show
		// what happens next in full.
		s.emit(t, e.Time, true)
		s.counting = false
	}
	if !s.counting {
		switch e.Kind {
		case events.DPDSent:
			s.waiting = true
		case events.DPDAck:
			s.waiting = false
			s.counting, s.start, s.n, s.answered = true, e.Time, 0, 0
		}
		return true
	}
	switch e.Kind {
	case events.DPDSent:
		s.n++
		s.waiting = true
	case events.DPDAck:
		s.answered++
		s.waiting = false
		if e.Time.Sub(s.start) >= window {
			s.emit(t, e.Time, true)
		}
	}
	return false
}

// learn names the asker and the answerer of a DPD conversation. The node
// that published an event is sure of itself; its peer's name, found from an
// address that may be a NAT's, only fills a gap.
func (s *series) learn(t *Timeline, e events.Event) {
	sure, other := &s.who, &s.peer // the publisher asks: a DPD event, an R-U-THERE sent, an ACK received
	if notify := dpdNotify(e); notify != "" && (notify == "R-U-THERE") != (e.IKE.Dir == events.Sent) {
		sure, other = &s.peer, &s.who // the publisher answers
	}
	*sure = e.Node
	if *other == "" && e.IKE != nil {
		*other = t.peerNode(e)
	}
}

// emit prints the series' count, if any, as one line at time at. Unless
// settled, an R-U-THERE still waiting for its answer stays counted for the
// next summary rather than be called unanswered.
func (s *series) emit(t *Timeline, at time.Time, settled bool) {
	if !s.counting {
		return
	}
	inflight := 0
	if s.waiting && !settled {
		inflight = 1
	}
	n := s.n - inflight
	if n <= 0 {
		return
	}
	span := fmt.Sprintf("%d s", max(1, int(at.Sub(s.start).Round(time.Second)/time.Second)))
	e := events.Event{Time: at, Node: s.who, Conn: s.conn, Step: s.step, Level: events.Info}
	if s.dpd {
		peer := s.peer
		if peer == "" {
			peer = "the peer"
		}
		// Pairs when every probe was answered, else probes and how many
		// got their answer.
		e.Kind = events.DPDSent
		switch answered := min(s.answered, n); answered {
		case n:
			e.Message = fmt.Sprintf("DPD R-U-THERE/ACK ×%d with %s in the last %s, all answered", n, peer, span)
		case 0:
			e.Message = fmt.Sprintf("DPD R-U-THERE ×%d to %s in the last %s, none answered", n, peer, span)
		default:
			e.Message = fmt.Sprintf("DPD R-U-THERE ×%d to %s in the last %s, %d answered, %d not", n, peer, span, answered, n-answered)
		}
	} else {
		e.Kind = events.NATKeepalive
		e.Message = fmt.Sprintf("NAT-T keepalive ×%d", n)
		if s.peer != "" {
			e.Message += " to " + s.peer
		}
		e.Message += " in the last " + span
	}
	s.start, s.n, s.answered = at, inflight, 0
	t.print(e)
}
