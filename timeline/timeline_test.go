package timeline

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestHeadingsLadderAndExplanations(t *testing.T) {
	var b bytes.Buffer
	tl := New(&b, Options{Explain: true, Names: map[string]string{"203.0.113.2": "gw-b"}})
	mm := func(ms, num int, dir events.Direction) events.Event {
		return events.Event{Time: at(ms), Kind: events.IKEMessage, Step: events.StepPhase1, Node: "gw-a", Conn: "office",
			IKE:     &events.IKEInfo{Exchange: "main", MsgNum: num, MsgTotal: 6, Dir: dir, Remote: "203.0.113.2:500", Payloads: []string{"KE", "NONCE"}},
			Explain: "Main Mode: DH values"}
	}
	for _, e := range []events.Event{
		{Time: at(0), Kind: events.LabDeployed, Message: "lab up"},
		{Time: at(1), Kind: events.Acquire, Step: events.StepInitiation, Node: "gw-a", Message: "acquire"},
		mm(2, 3, events.Sent),
		mm(3, 3, events.Received), // drawn once, from the sender
		mm(4, 5, events.Sent),
		{Time: at(4), Kind: events.IKEMessage, Step: events.StepPhase2, Node: "gw-a", IKE: &events.IKEInfo{Exchange: "quick", MsgNum: 1, MsgTotal: 3, Dir: events.Sent, Remote: "203.0.113.2:500"}},
		{Time: at(5), Kind: events.ESPPacket, Step: events.StepData, Node: "gw-a", Message: "esp 1", Explain: "tunnel mode"},
		{Time: at(6), Kind: events.Phase2Up, Step: events.StepPhase2, Node: "gw-a", Message: "phase 2 up"}, // interleaved: tagged, no new heading
		{Time: at(7), Kind: events.ESPPacket, Step: events.StepData, Node: "gw-a", Message: "esp 2", Explain: "tunnel mode"},
		{Time: at(8), Kind: events.LinkCounters, Message: "quiet"},
		{Time: at(9), Kind: events.KeysDerived, Level: events.Debug, Message: "SKEYID=..."},
		{Time: at(3000), Kind: events.SADeleted, Step: events.StepTermination, Node: "gw-b", Message: "deleted"},
	} {
		tl.Write(e)
	}
	out := b.String()
	if strings.Count(out, "━━ Step 4") != 1 || strings.Count(out, "━━ Step 3") != 1 {
		t.Errorf("phase 2 between data packets should be tagged, not a new heading:\n%s", out)
	}
	if !strings.Contains(out, "③") {
		t.Errorf("the interleaved phase 2 line carries no step mark:\n%s", out)
	}
	order := []string{"━━ Lab", "━━ Step 1", "━━ Step 2", "━━ Step 3", "━━ Step 4", "━━ Step 5"}
	last := -1
	for _, h := range order {
		i := strings.Index(out, h)
		if i < last {
			t.Fatalf("heading %s missing or out of order:\n%s", h, out)
		}
		last = i
	}
	if !strings.Contains(out, "gw-a       ── Main Mode 3/6: KE, NONCE") || !strings.Contains(out, "▶ gw-b (203.0.113.2:500)") {
		t.Errorf("ladder line wrong:\n%s", out)
	}
	if strings.Count(out, "Main Mode 3/6") != 1 {
		t.Errorf("a message should be drawn once, from its sender:\n%s", out)
	}
	if strings.Count(out, "↳ tunnel mode") != 1 || strings.Count(out, "↳ Main Mode: DH values") != 1 {
		t.Errorf("each explanation should be told once:\n%s", out)
	}
	if strings.Contains(out, "quiet") || strings.Contains(out, "SKEYID") {
		t.Errorf("counters and debug events belong in --verbose (keys in --keys):\n%s", out)
	}
	if strings.Contains(out, "\033[") {
		t.Error("colours without Options.Color")
	}
}

func TestKeysAndColour(t *testing.T) {
	var b bytes.Buffer
	tl := New(&b, Options{Keys: true, Color: true})
	tl.Write(events.Event{Time: at(0), Kind: events.KeysDerived, Level: events.Debug, Message: "SKEYID=abcd"})
	tl.Write(events.Event{Time: at(1), Kind: events.ExpectFailed, Level: events.Error, Message: "expect x"})
	out := b.String()
	if !strings.Contains(out, "SKEYID=abcd") {
		t.Errorf("--keys hides the keys:\n%s", out)
	}
	if !strings.Contains(out, "\033[31m✘ expect x") {
		t.Errorf("a failed expectation is not red with a cross:\n%q", out)
	}
}
