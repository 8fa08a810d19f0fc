package timeline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

var names = map[string]string{"198.51.100.2": "gw-a", "203.0.113.2": "gw-b"}

func render(opt Options, evs ...events.Event) string {
	var b bytes.Buffer
	tl := New(&b, opt)
	for _, e := range evs {
		tl.Write(e)
	}
	tl.Flush()
	return b.String()
}

func msg(ms int, node string, step events.Step, exch string, num, total int, dir events.Direction, remote string, payloads ...string) events.Event {
	return events.Event{Time: at(ms), Kind: events.IKEMessage, Step: step, Node: node, Conn: "office", Level: events.Info,
		IKE: &events.IKEInfo{Exchange: exch, MsgNum: num, MsgTotal: total, Dir: dir, Remote: remote, ICookie: "a99e1bbb83618303", Payloads: payloads}}
}

// Outcomes carry the IKEInfo of the message that produced them, received
// ones included: they are shown; only the receipt of a message is left to
// its sender's arrow.
func TestOutcomesWithReceivedIKEAreShown(t *testing.T) {
	recv := &events.IKEInfo{Exchange: "main", Dir: events.Received, Remote: "198.51.100.2:500"}
	out := render(Options{Names: names},
		msg(0, "gw-b", events.StepPhase1, "main", 1, 6, events.Received, "198.51.100.2:500", "SA"),
		events.Event{Time: at(1), Kind: events.ProposalChosen, Step: events.StepPhase1, Node: "gw-b", IKE: recv, Message: "ISAKMP proposal aes128-sha256-modp2048 (we chose)"},
		events.Event{Time: at(2), Kind: events.NATDetected, Step: events.StepPhase1, Node: "gw-b", IKE: recv, Message: "no NAT between the peers"},
		events.Event{Time: at(3), Kind: events.Phase1Up, Step: events.StepPhase1, Node: "gw-b", IKE: recv, Message: "ISAKMP SA established with 198.51.100.2"},
	)
	for _, want := range []string{"(we chose)", "no NAT between the peers", "ISAKMP SA established"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q is hidden:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Main Mode 1/6") {
		t.Errorf("the receipt of a message is drawn without -v:\n%s", out)
	}
}

// With -v, gw-b's receipt of message 3 is drawn at gw-b, pointing back at
// its sender, never as a second arrow from gw-b.
func TestVerboseDrawsReceipts(t *testing.T) {
	for _, width := range []int{0, 80, 140} {
		out := render(Options{Verbose: true, Names: names, Width: width},
			msg(0, "gw-a", events.StepPhase1, "main", 3, 6, events.Sent, "203.0.113.2:500", "KE", "NONCE"),
			msg(1, "gw-b", events.StepPhase1, "main", 3, 6, events.Received, "198.51.100.2:500", "KE", "NONCE"),
		)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("width %d: want a heading, an arrow and a receipt:\n%s", width, out)
		}
		if !strings.Contains(lines[1], "gw-a ") || !strings.Contains(lines[1], "── Main Mode 3/6: KE, NONCE") || !strings.Contains(lines[1], "▶ gw-b") {
			t.Errorf("width %d: the sender's arrow is wrong:\n%s", width, out)
		}
		if !strings.Contains(lines[2], "gw-b ") || !strings.Contains(lines[2], "◀── Main Mode 3/6 received from gw-a") || strings.Contains(lines[2], "▶") {
			t.Errorf("width %d: the receipt is not drawn at the receiver:\n%s", width, out)
		}
	}
}

// A node that publishes nothing (strongSwan) is known only by its peer's
// receipts: those are drawn as its arrows, without -v.
func TestSilentSenderDrawnFromReceipt(t *testing.T) {
	out := render(Options{Names: map[string]string{"203.0.113.2": "charon", "198.51.100.2": "ours"}, Silent: map[string]bool{"charon": true}, Width: 80},
		events.Event{Time: at(0), Kind: events.IKEMessage, Step: events.StepPhase1, Node: "ours",
			IKE: &events.IKEInfo{Exchange: "main", MsgNum: 2, MsgTotal: 6, Dir: events.Received, Local: "198.51.100.2:500", Remote: "203.0.113.2:500", Payloads: []string{"SA", "VID", "VID"}}},
	)
	if !strings.Contains(out, "charon ── Main Mode 2/6: SA, VID×2 ─") || !strings.Contains(out, "▶ ours") {
		t.Errorf("charon's message is not drawn from charon to ours:\n%s", out)
	}
}

func keepalive(s int, node, peer string) events.Event {
	return events.Event{Time: at(s * 1000), Kind: events.NATKeepalive, Step: events.StepData, Node: node, Level: events.Info,
		Message: "NAT-T keepalive to " + peer, Fields: map[string]any{"peer": peer}}
}

// The first keepalive is drawn; the next are counted and told once a window
// (60 s) has passed, and Flush tells what is left.
func TestKeepalivesSummarised(t *testing.T) {
	var evs []events.Event
	for s := 20; s <= 180; s += 20 {
		evs = append(evs, keepalive(s, "laptop", "203.0.113.2"))
	}
	evs = append(evs, events.Event{Time: at(185_000), Kind: events.PingResult, Node: "laptop", Level: events.Info, Message: "ping done"})
	out := render(Options{Width: 80}, evs...)
	if n := strings.Count(out, "laptop  NAT-T keepalive to 203.0.113.2"); n != 1 {
		t.Errorf("the first keepalive should be drawn in full, once; got %d:\n%s", n, out)
	}
	// The clock starts at the first (20 s). 40, 60 and 80 are counted, and
	// at 80 the window since 20 has passed; then 100, 120 and 140; 160 and
	// 180 are left for Flush.
	for _, want := range []string{
		"+60.000s  laptop  NAT-T keepalive ×3 to 203.0.113.2 in the last 60 s",
		"+120.000s  laptop  NAT-T keepalive ×3 to 203.0.113.2 in the last 60 s",
		"+165.000s  laptop  NAT-T keepalive ×2 to 203.0.113.2 in the last 45 s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "ping done") > strings.Index(out, "in the last 45 s") {
		t.Errorf("Flush should tell the rest after the last event:\n%s", out)
	}
}

// A later event passes the window: the summary comes before it. Keepalives
// are shown even when published at debug level.
func TestSummaryWhenWindowPassesOnAnotherEvent(t *testing.T) {
	var evs []events.Event
	for _, s := range []int{0, 20, 40} {
		e := keepalive(s, "laptop", "203.0.113.2")
		e.Level = events.Debug
		evs = append(evs, e)
	}
	out := render(Options{}, append(evs,
		events.Event{Time: at(75_000), Kind: events.PingResult, Node: "laptop", Level: events.Info, Message: "ping done"},
	)...)
	if !strings.Contains(out, "laptop  NAT-T keepalive to 203.0.113.2") {
		t.Errorf("the first keepalive is not drawn:\n%s", out)
	}
	i, j := strings.Index(out, "NAT-T keepalive ×2 to 203.0.113.2 in the last 75 s"), strings.Index(out, "ping done")
	if i < 0 || j < i {
		t.Errorf("the summary should be told when the next event passes the window, before it:\n%s", out)
	}
}

func dpdRound(s int, seq int, answered bool) []events.Event {
	ms := s * 1000
	info := func(node string, dir events.Direction, remote, what string) events.Event {
		e := msg(ms, node, events.StepTermination, "informational", 1, 1, dir, remote, "HASH", "N")
		e.IKE.Encrypted = true
		e.Fields = map[string]any{"notify": []string{what}}
		return e
	}
	evs := []events.Event{
		info("gw-a", events.Sent, "203.0.113.2:500", "R-U-THERE"),
		{Time: at(ms), Kind: events.DPDSent, Step: events.StepTermination, Node: "gw-a", Conn: "office", Level: events.Info, Message: "R-U-THERE #" + string(rune('0'+seq)) + " to 203.0.113.2"},
	}
	if answered {
		evs = append(evs,
			info("gw-b", events.Received, "198.51.100.2:500", "R-U-THERE"),
			info("gw-b", events.Sent, "198.51.100.2:500", "R-U-THERE-ACK"),
			info("gw-a", events.Received, "203.0.113.2:500", "R-U-THERE-ACK"),
			events.Event{Time: at(ms + 1), Kind: events.DPDAck, Step: events.StepTermination, Node: "gw-a", Conn: "office", Level: events.Info, Message: "R-U-THERE-ACK #" + string(rune('0'+seq)) + " from 203.0.113.2: the peer is alive"})
	}
	return evs
}

// Routine DPD is summarised as R-U-THERE/ACK pairs; when an R-U-THERE goes
// unanswered the count is told at once and what follows is drawn in full.
func TestDPDSummarised(t *testing.T) {
	var evs []events.Event
	for i := range 7 {
		evs = append(evs, dpdRound(10+10*i, i+1, true)...) // 10 … 70 s
	}
	evs = append(evs, dpdRound(80, 8, false)...)
	evs = append(evs, dpdRound(83, 9, false)...)
	evs = append(evs, events.Event{Time: at(90_000), Kind: events.DPDDead, Step: events.StepTermination, Node: "gw-a", Conn: "office", Level: events.Error, Message: "peer 203.0.113.2 declared dead"})
	out := render(Options{Names: names, Width: 100}, evs...)
	for _, want := range []string{
		"R-U-THERE #1 to 203.0.113.2",       // the first in full
		"R-U-THERE-ACK #1 from 203.0.113.2", // with its answer
		"+60.001s  gw-a  DPD R-U-THERE/ACK ×6 with gw-b in the last 60 s, all answered",
		"+73.000s  gw-a  DPD R-U-THERE ×1 to gw-b in the last 13 s, none answered",
		"R-U-THERE #9 to 203.0.113.2", // a retry: in full
		"declared dead",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"#2 ", "#7 ", "#8 "} {
		if strings.Contains(out, gone) {
			t.Errorf("R-U-THERE %s should be counted, not drawn:\n%s", gone, out)
		}
	}
	if n := strings.Count(out, "── Informational: HASH, N(R-U-THERE"); n != 3 {
		t.Errorf("want the first R-U-THERE and its ACK and the retry drawn as arrows, got %d:\n%s", n, out)
	}
}

// A count still running when the stream ends is told by Flush; a probe
// still waiting for its answer then is told as unanswered.
func TestFlushTellsPendingCounts(t *testing.T) {
	var evs []events.Event
	for i := range 3 {
		evs = append(evs, dpdRound(10+3*i, i+1, true)...)
	}
	evs = append(evs, dpdRound(20, 4, false)...)
	var b bytes.Buffer
	tl := New(&b, Options{Names: names})
	for _, e := range evs {
		tl.Write(e)
	}
	if strings.Contains(b.String(), "×") {
		t.Fatalf("summarised before the window passed:\n%s", b.String())
	}
	tl.Flush()
	if !strings.Contains(b.String(), "DPD R-U-THERE ×3 to gw-b in the last 10 s, 2 answered, 1 not") {
		t.Errorf("Flush did not tell the count:\n%s", b.String())
	}
}

// A warning reads after the routine that led to it, and the in-flight
// R-U-THERE is not called unanswered by it.
func TestWarningTellsCountsFirst(t *testing.T) {
	var evs []events.Event
	for i := range 3 {
		evs = append(evs, dpdRound(10+3*i, i+1, true)...)
	}
	evs = append(evs, dpdRound(20, 4, false)...)
	evs = append(evs, events.Event{Time: at(20_500), Kind: events.LinkDown, Link: "isp:eth1--gw-b:eth0", Level: events.Warn, Message: "link down"})
	out := render(Options{Names: names}, evs...)
	i, j := strings.Index(out, "×2 with gw-b in the last 10 s, all answered"), strings.Index(out, "link down")
	if i < 0 || j < i {
		t.Errorf("the count should come before the warning, without the probe in flight:\n%s", out)
	}
	if k := strings.Index(out, "R-U-THERE ×1 to gw-b in the last 1 s, none answered"); k < j {
		t.Errorf("the probe still unanswered at the end should be told by Flush, after the warning:\n%s", out)
	}
}

// In pfs-rekey a soft lifetime (Step 5 as published today) comes before the
// rekey: both, and the Quick Mode after them, belong under Phase 2.
func TestRekeyUnderPhase2(t *testing.T) {
	for _, softStep := range []events.Step{events.StepTermination, events.StepPhase2} {
		out := render(Options{Names: names},
			events.Event{Time: at(0), Kind: events.Phase2Up, Step: events.StepPhase2, Node: "gw-a", Conn: "kilobytes", Message: "IPsec SAs established"},
			events.Event{Time: at(5), Kind: events.ESPPacket, Step: events.StepData, Node: "gw-a", Message: "esp 1"},
			events.Event{Time: at(1400), Kind: events.SAExpired, Step: softStep, Node: "gw-a", Conn: "kilobytes", Message: "soft lifetime", Fields: map[string]any{"hard": false}},
			events.Event{Time: at(1400), Kind: events.Rekey, Step: events.StepPhase2, Node: "gw-a", Conn: "kilobytes", Message: "rekeying"},
			msg(1401, "gw-a", events.StepPhase2, "quick", 1, 3, events.Sent, "203.0.113.2:500", "HASH", "SA"),
			events.Event{Time: at(1401), Kind: events.SAExpired, Step: softStep, Node: "gw-b", Conn: "kilobytes", Message: "soft lifetime too", Fields: map[string]any{"hard": false}},
			msg(1402, "gw-b", events.StepPhase2, "quick", 2, 3, events.Sent, "198.51.100.2:500", "HASH", "SA"),
			msg(1403, "gw-a", events.StepPhase2, "quick", 3, 3, events.Sent, "203.0.113.2:500", "HASH"),
			events.Event{Time: at(1404), Kind: events.Phase2Up, Step: events.StepPhase2, Node: "gw-a", Conn: "kilobytes", Message: "IPsec SAs established again"},
		)
		if strings.Contains(out, "Termination") || strings.ContainsAny(out, "③⑤") {
			t.Errorf("soft lifetime at step %d: a rekey drawn under Termination or tagged:\n%s", softStep, out)
		}
		rekey := strings.Index(out, "━━ Step 3 · IKE Phase 2 · rekey [kilobytes]")
		if rekey < 0 || strings.Count(out, "━━ Step 3") != 2 || rekey > strings.Index(out, "soft lifetime") {
			t.Errorf("soft lifetime at step %d: the rekey has no Phase 2 heading of its own:\n%s", softStep, out)
		}
		if strings.Index(out, "Quick Mode 3/3") < rekey || strings.Index(out, "established again") < rekey {
			t.Errorf("the rekey's Quick Mode is not under its heading:\n%s", out)
		}
	}
}

// A rekey collision (both ends rekeyed one pair at once) is told under the
// rekey's heading, with its explanation, once per gateway, and a redundant
// pair that is not rekeyed (a Rekey event of its own) stays under Phase 2.
func TestRekeyCollisionUnderPhase2(t *testing.T) {
	const why = "Both ends reached the soft lifetime within one round trip"
	out := render(Options{Names: names, Explain: true},
		events.Event{Time: at(0), Kind: events.Phase2Up, Step: events.StepPhase2, Node: "gw-a", Conn: "office", Message: "IPsec SAs established"},
		events.Event{Time: at(3600), Kind: events.Rekey, Step: events.StepPhase2, Node: "gw-a", Conn: "office", Message: "rekeying esp SAs a/b"},
		events.Event{Time: at(3615), Kind: events.Rekey, Step: events.StepPhase2, Node: "gw-b", Conn: "office", Message: "rekeying esp SAs b/a"},
		events.Event{Time: at(3650), Kind: events.RekeyCollision, Step: events.StepPhase2, Node: "gw-b", Conn: "office", Message: "rekey collision: the peer rekeyed esp SAs b/a while we did", Explain: why + "."},
		events.Event{Time: at(3665), Kind: events.RekeyCollision, Step: events.StepPhase2, Node: "gw-a", Conn: "office", Message: "rekey collision: the peer rekeyed esp SAs a/b while we did", Explain: why + "."},
		events.Event{Time: at(30000), Kind: events.Rekey, Step: events.StepPhase2, Node: "gw-a", Conn: "office", Message: "not rekeying esp SAs c/d: redundant", Fields: map[string]any{"redundant": true}},
	)
	rekey := strings.Index(out, "━━ Step 3 · IKE Phase 2 · rekey [office]")
	if rekey < 0 || strings.Contains(out, "Termination") {
		t.Fatalf("no rekey heading, or the collision drawn elsewhere:\n%s", out)
	}
	for _, node := range []string{"gw-a  rekey collision", "gw-b  rekey collision", "not rekeying esp SAs c/d"} {
		if i := strings.Index(out, node); i < rekey {
			t.Errorf("%q is missing or above the rekey heading:\n%s", node, out)
		}
	}
	if strings.Count(out, why) != 1 {
		t.Errorf("the collision's explanation should be told once:\n%s", out)
	}
}

// A heading is printed with its first line: events that are not shown (debug
// ones, counted keepalives) open none.
func TestNoEmptyHeading(t *testing.T) {
	out := render(Options{},
		events.Event{Time: at(0), Kind: events.Phase2Up, Step: events.StepPhase2, Node: "gw-a", Message: "up"},
		keepalive(1, "gw-a", "203.0.113.2"),
		keepalive(20, "gw-a", "203.0.113.2"),
		events.Event{Time: at(3000), Kind: events.StrongSwanLog, Step: events.StepTermination, Node: "charon", Level: events.Debug, Message: "debug"},
		events.Event{Time: at(3001), Kind: events.ScriptFinished, Message: "script finished"},
	)
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "━━") && (i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) == "" || strings.HasPrefix(lines[i+1], "━━")) {
			t.Errorf("heading %q has nothing under it:\n%s", l, out)
		}
	}
	if strings.Contains(out, "Termination") {
		t.Errorf("a hidden event opened a heading:\n%s", out)
	}
}

// --keys prints each key labelled, and wraps a long one under itself rather
// than overflow a narrow terminal.
func TestKeys(t *testing.T) {
	isakmp := events.Event{Time: at(0), Kind: events.KeysDerived, Step: events.StepPhase1, Node: "gw-a", Level: events.Debug,
		Message: "ISAKMP SA a99e1bbb83618303/71320ef5dc65f9e4 keys derived", Fields: map[string]any{
			"sa": "isakmp", "encryption": "AES-CBC",
			"skeyid":   "d3048674cf73cfdfaa4d6bdd2f7de6b3bdf26f70dce1a3b7799d496c84766f02",
			"skeyid_d": "878fee6bae7b06bf1f646befef4b24fe2135269987b83e574ec9cd6854fc7e76",
			"skeyid_a": "4fb2e32f70b0c08bee7533806421230bb9e0907d7f361be22ca9732fd17fc4b5",
			"skeyid_e": "6e3f3d266b61e5f317398fc50b28fb52752a20758122bf2fbf50b19e7c8d2db2",
			"ka":       "6e3f3d266b61e5f317398fc50b28fb52", "iv": "631c87269ee193711d497cd5b5307acf"}}
	gcm := events.Event{Time: at(1), Kind: events.KeysDerived, Step: events.StepPhase2, Node: "gw-a", Level: events.Debug,
		Message: "in esp SA 15481f17 keys derived", Fields: map[string]any{
			"sa": "esp", "dir": "in", "spi": "15481f17", "encryption": "aes128gcm16", "integrity": "none",
			"enc_key": "b2b0b815cec89b76faa0614cb59cbd1f", "salt": "9e11484b", "integ_key": ""}}
	cbc := events.Event{Time: at(2), Kind: events.KeysDerived, Step: events.StepPhase2, Node: "gw-a", Level: events.Debug,
		Message: "out esp SA 3ed92d3b keys derived", Fields: map[string]any{
			"sa": "esp", "dir": "out", "spi": "3ed92d3b", "encryption": "aes128", "integrity": "sha256",
			"enc_key": "77cad83926600f80fdf931cc8c5b3dbb", "integ_key": "4985f6e36c80ce6000190c8711b389a8eaa5643d7f727a5d4bec6dcb58c6fe28"}}

	if out := render(Options{}, isakmp, gcm, cbc); strings.Contains(out, "keys derived") {
		t.Errorf("keys without --keys:\n%s", out)
	}
	wide := render(Options{Keys: true}, isakmp, gcm, cbc)
	for _, want := range []string{
		"SKEYID         d3048674cf73cfdfaa4d6bdd2f7de6b3bdf26f70dce1a3b7799d496c84766f02",
		"SKEYID_d       878fee6bae7b06bf1f646befef4b24fe2135269987b83e574ec9cd6854fc7e76",
		"SKEYID_a       4fb2e32f70b0c08bee7533806421230bb9e0907d7f361be22ca9732fd17fc4b5",
		"SKEYID_e       6e3f3d266b61e5f317398fc50b28fb52752a20758122bf2fbf50b19e7c8d2db2",
		"Ka             6e3f3d266b61e5f317398fc50b28fb52  (AES-CBC)",
		"IV of phase 1  631c87269ee193711d497cd5b5307acf",
		"encryption key  b2b0b815cec89b76faa0614cb59cbd1f  (aes128gcm16)",
		"salt            9e11484b",
		"integrity key   (none: aes128gcm16 authenticates as it encrypts)",
		"encryption key  77cad83926600f80fdf931cc8c5b3dbb  (aes128)",
		"integrity key   4985f6e36c80ce6000190c8711b389a8eaa5643d7f727a5d4bec6dcb58c6fe28  (sha256)",
	} {
		if !strings.Contains(wide, want) {
			t.Errorf("missing %q:\n%s", want, wide)
		}
	}

	narrow := render(Options{Keys: true, Width: 60}, isakmp, cbc)
	checkWidth(t, narrow, 60)
	var skeyid []string
	lines := strings.Split(narrow, "\n")
	for i, l := range lines {
		if strings.Contains(l, "SKEYID    ") {
			skeyid = []string{l, lines[i+1], lines[i+2]}
			break
		}
	}
	if skeyid == nil {
		t.Fatalf("no SKEYID line:\n%s", narrow)
	}
	col := strings.Index(skeyid[0], "d3048674")
	joined := skeyid[0][col:]
	for _, l := range skeyid[1:] {
		if strings.TrimSpace(l[:col]) != "" {
			break
		}
		joined += strings.TrimSpace(l)
	}
	if joined != "d3048674cf73cfdfaa4d6bdd2f7de6b3bdf26f70dce1a3b7799d496c84766f02" {
		t.Errorf("a wrapped key should continue under itself, whole bytes a line; read back %q:\n%s", joined, narrow)
	}
}

// 🔒 takes two columns: the arrows' heads stay in one column with it.
func TestWideGlyphKeepsArrowsAligned(t *testing.T) {
	for _, width := range []int{0, 80, 140} {
		plain := msg(0, "gw-a", events.StepPhase1, "main", 3, 6, events.Sent, "203.0.113.2:500", "KE", "NONCE")
		locked := msg(1, "gw-a", events.StepPhase1, "main", 5, 6, events.Sent, "203.0.113.2:500", "ID", "HASH")
		locked.IKE.Encrypted = true
		out := render(Options{Names: names, Width: width}, plain, locked)
		var heads []int
		for _, l := range strings.Split(out, "\n") {
			if i := strings.Index(l, "▶"); i >= 0 {
				heads = append(heads, DisplayWidth(l[:i]))
			}
		}
		if len(heads) != 2 || heads[0] != heads[1] {
			t.Errorf("width %d: arrow heads at columns %v:\n%s", width, heads, out)
		}
	}
}

// A long message wraps under its text, not under the clock.
func TestWrapHangingIndent(t *testing.T) {
	out := render(Options{Width: 60, Explain: true}, events.Event{Time: at(0), Kind: events.RouteMTU, Step: events.StepData, Node: "gw-a",
		Message: "route 10.2.0.0/24 into the TUN: MTU 1423 = path 1500 − 77 (outer IPv4 header 20 + ESP header 8 + IV 16)",
		Explain: "An SA makes every packet longer; the route into the TUN tells the hosts behind the gateway how large an inner packet may be."})
	checkWidth(t, out, 60)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")[2:]
	text := DisplayWidth(lines[0][:strings.Index(lines[0], "route")])
	arrow := -1
	for _, l := range lines {
		if strings.Contains(l, "↳") {
			arrow = DisplayWidth(l[:strings.Index(l, "↳")]) + 2
		}
	}
	sawMessage, sawExplain := false, false
	for _, l := range lines[1:] {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		switch {
		case strings.Contains(l, "↳"):
		case indent == text:
			sawMessage = true
		case indent == arrow:
			sawExplain = true
		default:
			t.Errorf("continuation at column %d, want %d (message) or %d (explanation):\n%s", indent, text, arrow, out)
		}
	}
	if !sawMessage || !sawExplain {
		t.Errorf("expected both the message and the explanation to wrap at 60 columns:\n%s", out)
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in          string
		first, rest int
		want        []string
	}{
		{"a bb ccc dddd", 6, 6, []string{"a bb", "ccc", "dddd"}},
		{"abcdefghij", 4, 4, []string{"abcd", "efgh", "ij"}},
		{"🔒🔒🔒 x", 4, 4, []string{"🔒🔒", "🔒 x"}},
		{"short", 10, 4, []string{"short"}},
		{"one two three", 7, 5, []string{"one two", "three"}},
	} {
		got := Wrap(c.in, c.first, c.rest)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Wrap(%q, %d, %d) = %q, want %q", c.in, c.first, c.rest, got, c.want)
		}
	}
	if w := DisplayWidth("\033[34m── 🔒 ─▶\033[0m"); w != 8 {
		t.Errorf("DisplayWidth counts %d columns, want 8", w)
	}
}
