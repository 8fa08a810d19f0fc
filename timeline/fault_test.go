package timeline

import (
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// A fault is drawn where it happened, marked, with its explanation, and the
// peer's reaction follows it: here gw-b drops Main Mode 4/6 and gw-a sends
// 3/6 again.
func TestFaultDrawnAtItsPlace(t *testing.T) {
	fault := events.Event{Time: at(2), Kind: events.FaultInjected, Step: events.StepPhase1, Node: "gw-b", Conn: "office", Level: events.Warn,
		Message: "fault injected: gw-b dropped Main Mode 4/6",
		Explain: "The lab made this node not send the message, as if the network lost it",
		IKE:     &events.IKEInfo{Exchange: "main", MsgNum: 4, MsgTotal: 6, Dir: events.Sent, Remote: "198.51.100.2:500", ICookie: "a99e1bbb83618303"},
		Fields:  map[string]any{"action": "drop", "message": "main-mode 4/6"}}
	again := msg(1002, "gw-a", events.StepPhase1, "main", 3, 6, events.Sent, "203.0.113.2:500", "KE", "NONCE")
	again.Kind = events.IKERetransmit
	for _, width := range []int{0, 80, 140} {
		out := render(Options{Explain: true, Names: names, Width: width},
			msg(0, "gw-a", events.StepPhase1, "main", 3, 6, events.Sent, "203.0.113.2:500", "KE", "NONCE"),
			msg(1, "gw-b", events.StepPhase1, "main", 4, 6, events.Sent, "198.51.100.2:500", "KE", "NONCE"),
			fault, again)
		f := strings.Index(out, "⚡ fault injected: gw-b dropped Main Mode 4/6")
		why := strings.Index(out, "↳ The lab made this node not send")
		if f < 0 || why < f {
			t.Fatalf("width %d: the fault or its explanation is missing:\n%s", width, out)
		}
		if r := strings.LastIndex(out, "Main Mode 3/6"); r < why {
			t.Errorf("width %d: the retransmission is not after the fault:\n%s", width, out)
		}
	}
}
