package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// The causal order of a run's event stream, as a class reads it: a message is
// sent before it is received, message n of an exchange comes before n+1, and
// a node's reaction to a message (an error notify, a failed authentication)
// comes after the node received it. Checked on every shipped lab's JSON
// stream (TestEveryShippedLabPasses).

// msgKey names one IKE message, the same at its sender and its receiver: the
// responder's cookie is not in it, since the initiator's first message has
// none yet.
type msgKey struct {
	icookie, exchange string
	msgID             uint32
	num               int
}

func keyOf(e *events.Event) msgKey {
	return msgKey{e.IKE.ICookie, e.IKE.Exchange, e.IKE.MsgID, e.IKE.MsgNum}
}

// exchangeKey names one exchange: phase 1 (message ID 0), one Quick Mode, one
// Informational.
type exchangeKey struct {
	icookie, exchange string
	msgID             uint32
}

func isMessage(e *events.Event) bool {
	return e.IKE != nil && (e.Kind == events.IKEMessage || e.Kind == events.IKERetransmit)
}

// causalViolations lists every way the stream breaks causal order. The
// stream must be in sequence order, without gaps, with times that never go
// back.
func causalViolations(evs []events.Event) []string {
	var bad []string
	firstSent := map[msgKey]int{}  // index of the first send of each message
	received := map[msgKey][]int{} // indexes of its receipts
	firstSentOfNum := map[exchangeKey]map[int]int{}
	for i := range evs {
		e := &evs[i]
		if i > 0 {
			if e.Seq != evs[i-1].Seq+1 {
				bad = append(bad, fmt.Sprintf("event #%d follows #%d: the stream skips or reorders events", e.Seq, evs[i-1].Seq))
			}
			if e.Time.Before(evs[i-1].Time) {
				bad = append(bad, fmt.Sprintf("event #%d (%s) is stamped before #%d", e.Seq, e.Time.Format(time.RFC3339Nano), evs[i-1].Seq))
			}
		}
		if !isMessage(e) {
			continue
		}
		k := keyOf(e)
		if e.IKE.Dir == events.Sent {
			if _, ok := firstSent[k]; !ok {
				firstSent[k] = i
			}
			xk := exchangeKey{k.icookie, k.exchange, k.msgID}
			if firstSentOfNum[xk] == nil {
				firstSentOfNum[xk] = map[int]int{}
			}
			if _, ok := firstSentOfNum[xk][k.num]; !ok {
				firstSentOfNum[xk][k.num] = i
			}
		} else if e.Kind == events.IKEMessage {
			received[k] = append(received[k], i)
		}
	}
	// A receipt follows the message's first send. A message with no send in
	// the stream came from a peer that publishes none (charon).
	for k, idx := range received {
		s, ok := firstSent[k]
		if !ok {
			continue
		}
		for _, r := range idx {
			if r < s {
				bad = append(bad, fmt.Sprintf("%s: received by %s (#%d) before %s sent it (#%d)", describe(&evs[r]), evs[r].Node, evs[r].Seq, evs[s].Node, evs[s].Seq))
			}
		}
	}
	// Message n+1 of an exchange is sent after message n, and after its
	// sender received message n.
	for xk, nums := range firstSentOfNum {
		for n, i := range nums {
			if prev, ok := nums[n-1]; ok && prev > i {
				bad = append(bad, fmt.Sprintf("%s (#%d) was sent before message %d of its exchange (#%d)", describe(&evs[i]), evs[i].Seq, n-1, evs[prev].Seq))
			}
			for _, r := range received[msgKey{xk.icookie, xk.exchange, xk.msgID, n - 1}] {
				if evs[r].Node == evs[i].Node && r > i {
					bad = append(bad, fmt.Sprintf("%s: %s sent it (#%d) before it received message %d (#%d)", describe(&evs[i]), evs[i].Node, evs[i].Seq, n-1, evs[r].Seq))
				}
			}
		}
	}
	// A reaction follows what it reacts to: a node that reports a failed
	// authentication or an error notify about an ISAKMP SA has, before that,
	// received a message of that SA.
	for i := range evs {
		e := &evs[i]
		cookie := ""
		switch {
		case e.Kind == events.AuthFailed && e.SA != nil:
			cookie = e.SA.ICookie
		case e.Kind == events.Notify && e.Field("direction") == string(events.Sent) && e.IKE != nil:
			cookie = e.IKE.ICookie
		}
		if cookie == "" {
			continue
		}
		heard := false
		for j := 0; j < i; j++ {
			p := &evs[j]
			if !isMessage(p) || p.Node != e.Node || p.IKE.Dir != events.Received || p.IKE.ICookie != cookie {
				continue
			}
			heard = true
			if s, ok := firstSent[keyOf(p)]; ok && s > i {
				bad = append(bad, fmt.Sprintf("%s at %s (#%d) comes before the %s it answers was sent (#%d)", e.Kind, e.Node, e.Seq, describe(p), evs[s].Seq))
			}
		}
		if !heard {
			bad = append(bad, fmt.Sprintf("%s at %s (#%d) comes before %s received anything of that ISAKMP SA", e.Kind, e.Node, e.Seq, e.Node))
		}
	}
	return bad
}

func describe(e *events.Event) string {
	s := e.IKE.Exchange
	if e.IKE.MsgNum > 0 {
		s += fmt.Sprintf(" %d/%d", e.IKE.MsgNum, e.IKE.MsgTotal)
	}
	return fmt.Sprintf("%s %08x of %s", s, e.IKE.MsgID, e.IKE.ICookie)
}

// parseJSONLines reads `run --json` output.
func parseJSONLines(t *testing.T, out string) []events.Event {
	t.Helper()
	var evs []events.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("run --json wrote a line that is not an event: %v\n%s", err, sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// The checker finds what it is meant to find; a checker that passes
// everything would make the lab runs prove nothing.
func TestCausalViolationsAreFound(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	seq := uint64(0)
	msg := func(node string, dir events.Direction, ex string, mid uint32, num, total int) events.Event {
		seq++
		return events.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Node: node, Kind: events.IKEMessage,
			IKE: &events.IKEInfo{Exchange: ex, MsgID: mid, MsgNum: num, MsgTotal: total, Dir: dir, ICookie: "c1"}}
	}
	good := []events.Event{
		msg("a", events.Sent, "main", 0, 1, 6), msg("b", events.Received, "main", 0, 1, 6),
		msg("b", events.Sent, "main", 0, 2, 6), msg("a", events.Received, "main", 0, 2, 6),
		msg("a", events.Sent, "main", 0, 5, 6), msg("b", events.Received, "main", 0, 5, 6),
	}
	seq++
	good = append(good, events.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Node: "b", Kind: events.AuthFailed, SA: &events.SAInfo{ICookie: "c1"}})
	if v := causalViolations(good); len(v) != 0 {
		t.Fatalf("a causal stream was refused: %v", v)
	}

	reorder := func(evs []events.Event, i, j int) []events.Event {
		out := append([]events.Event(nil), evs...)
		out[i], out[j] = out[j], out[i]
		for k := range out { // keep the numbering and the clock in order: only causality is wrong
			out[k].Seq, out[k].Time = uint64(k+1), t0.Add(time.Duration(k+1)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		name string
		evs  []events.Event
		want string
	}{
		{"reply before request", reorder(good, 1, 2), "sent it"},
		{"receipt before send", reorder(good, 0, 1), "before a sent it"},
		{"auth failure before the message it answers", append(append(append([]events.Event(nil), good[:4]...), good[5], good[6]), good[4]), "comes before the main 5/6"},
		{"auth failure from nowhere", []events.Event{good[6]}, "received anything"},
		{"a gap", append(append([]events.Event(nil), good[:2]...), good[3:]...), "skips"},
	} {
		v := causalViolations(c.evs)
		if !strings.Contains(strings.Join(v, "\n"), c.want) {
			t.Errorf("%s: violations %q, want one saying %q", c.name, v, c.want)
		}
	}
}

// The run ends when every node's events up to the script's end are written:
// a script whose last step takes the tunnel down, right after bringing it
// up, still shows the responder's half of both.
func TestRunEndsWithTheLastEventsOfEveryNode(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-last", os.Getpid())
	lab := writeLab(t, name, twoSites("gw-a", "gateway", "gw-b", "gateway", `ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {secret: lab-only-secret}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, start: none}
script:
  - tunnel-up: office
  - tunnel-down: office
`))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	for i := 1; i <= 10; i++ {
		r := run(t, "run", lab, "--json")
		if r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
		evs := parseJSONLines(t, r.stdout)
		var up, deleted bool
		for _, e := range evs {
			up = up || (e.Node == "gw-b" && e.Kind == events.Phase2Up)
			deleted = deleted || (e.Node == "gw-b" && e.Kind == events.SADeleted && strings.Contains(e.Message, "the peer deleted it"))
		}
		if !up || !deleted {
			t.Fatalf("run %d: gw-b's phase2-up (%v) or its sa-deleted (%v) is missing from the stream", i, up, deleted)
		}
		if v := causalViolations(evs); len(v) > 0 {
			t.Fatalf("run %d: %s", i, strings.Join(v, "\n"))
		}
	}
}
