package timeline

import (
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// A NAT mapping change is drawn in full under data transfer, every time (it
// is no routine), with its explanation once.
func TestNATMappingChangedIsDrawnWithItsExplanation(t *testing.T) {
	change := func(s int, from, to string) events.Event {
		return events.Event{Time: at(s * 1000), Kind: events.NATMapChanged, Step: events.StepData, Node: "office-gw", Conn: "office", Level: events.Info,
			Message: "NAT mapping of laptop changed: " + from + " → " + to, Explain: "Only an authenticated packet may move the SAs.",
			Fields: map[string]any{"old": from, "new": to}}
	}
	out := render(Options{Explain: true, Names: names},
		change(1, "198.51.100.2:4000", "198.51.100.2:5000"), change(2, "198.51.100.2:5000", "198.51.100.2:6000"))
	for _, want := range []string{
		"Step 4 · Data transfer",
		"office-gw  NAT mapping of laptop changed: 198.51.100.2:4000 → 198.51.100.2:5000",
		"office-gw  NAT mapping of laptop changed: 198.51.100.2:5000 → 198.51.100.2:6000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Only an authenticated packet may move the SAs."); n != 1 {
		t.Errorf("explanation told %d times:\n%s", n, out)
	}
}
