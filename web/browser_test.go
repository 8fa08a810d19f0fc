package web

// Tests of the page in a real browser (Debian's chromium through chromedp).
// One chromium serves the whole test binary; each test opens its own tab.
// The page tests here run against fixtureServer (recorded events, paced as
// each test needs); browser_live_test.go drives the real verbs through
// shipped labs.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ipseclab/ipseclab/internal/testenv"
)

var browser struct {
	once  sync.Once
	ctx   context.Context
	err   error
	close func() // ends chromium and removes its profile directory
}

// TestMain closes the chromium the browser tests started, so that its
// temporary profile does not outlive the test binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if browser.close != nil {
		browser.close()
	}
	os.Exit(code)
}

// newTab opens a tab in the test binary's chromium, starting it the first
// time. In CI a missing chromium fails the test (testenv).
func newTab(t testing.TB) context.Context {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium")
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1600, 1000),
			chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
		// The browser lives as long as the test binary (TestMain ends it;
		// if the binary dies, the kernel kills it: chromedp sets Pdeathsig).
		actx, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, stopBrowser := chromedp.NewContext(actx)
		browser.err = chromedp.Do(bctx)
		browser.ctx = bctx
		browser.close = func() {
			stopBrowser()
			stopAlloc()
		}
	})
	if browser.err != nil {
		t.Fatalf("starting chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	ctx, stop := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		stop()
		cancel()
	})
	return ctx
}

func do(t testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it holds.
func waitFor(t testing.TB, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout))); err != nil {
		state := eval[string](t, ctx, `JSON.stringify({applied: document.body.dataset.applied, total: document.body.dataset.total, stream: document.body.dataset.stream, errors: window.ipseclab && ipseclab.errors, last: window.ipseclab && ipseclab.lastError})`)
		t.Fatalf("waiting for %s: %v (page: %s)", what, err, state)
	}
}

// waitEnded waits until the stream ended and the cursor is at its end.
func waitEnded(t testing.TB, ctx context.Context, timeout time.Duration) {
	t.Helper()
	waitFor(t, ctx, "the whole run on the page",
		`document.body.dataset.stream === "ended" && document.body.dataset.applied === document.body.dataset.total && Number(document.body.dataset.total) > 0`, timeout)
}

// artefactDir is where screenshots go: $IPSECLAB_ARTEFACTS/web if set, else
// the test's temporary directory.
func artefactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("IPSECLAB_ARTEFACTS"); d != "" {
		d = filepath.Join(d, "web")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(artefactDir(t), name+".png")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// ladderRow is a row of a connection's ladder as the page exposes it.
type ladderRow struct {
	Name     string `json:"name"`
	Proto    string `json:"proto"`
	From     string `json:"from"`
	To       string `json:"to"`
	Payloads string `json:"payloads"`
	Recv     bool   `json:"recv"`
	Lost     bool   `json:"lost"`
	Retrans  string `json:"retrans"`
	Note     string `json:"note"`
	Node     string `json:"node"`
}

func ladderRows(t testing.TB, ctx context.Context, conn string) []ladderRow {
	t.Helper()
	s := eval[string](t, ctx, fmt.Sprintf(`JSON.stringify(ipseclab.ladder.rows(%q))`, conn))
	var rows []ladderRow
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// ikeNames are the names of the IKE messages of a ladder, in order.
func ikeNames(rows []ladderRow) []string {
	var out []string
	for _, r := range rows {
		if r.Proto == "ike" {
			out = append(out, r.Name)
		}
	}
	return out
}

// checkStepsInOrder asserts that the five steps are lit, lit in order, and
// that their first events are in order.
func checkStepsInOrder(t *testing.T, ctx context.Context) {
	t.Helper()
	order := eval[[]int](t, ctx, `ipseclab.litOrder`)
	if !slices.Equal(order, []int{1, 2, 3, 4, 5}) {
		t.Errorf("the steps lit in the order %v, want 1 to 5", order)
	}
	lit := eval[[]string](t, ctx, `[...document.querySelectorAll("#steps .step")].map(li => li.classList.contains("lit") + ":" + (li.dataset.firstSeq || ""))`)
	prev := 0
	for i, s := range lit {
		on, seq, _ := strings.Cut(s, ":")
		var n int
		fmt.Sscan(seq, &n)
		if on != "true" || n <= prev {
			t.Errorf("step %d: lit=%s first event #%s, after #%d", i+1, on, seq, prev)
		}
		prev = n
	}
}

// checkSiteToSiteLadder asserts Main Mode 1/6…6/6 then Quick Mode 1/3…3/3,
// each from the initiator's side in turn, all received.
func checkSiteToSiteLadder(t *testing.T, rows []ladderRow, initiator, responder string) {
	t.Helper()
	want := []string{"Main Mode 1/6", "Main Mode 2/6", "Main Mode 3/6", "Main Mode 4/6", "Main Mode 5/6", "Main Mode 6/6",
		"Quick Mode 1/3", "Quick Mode 2/3", "Quick Mode 3/3"}
	var got []ladderRow
	for _, r := range rows {
		if r.Proto == "ike" && (strings.HasPrefix(r.Name, "Main Mode") || strings.HasPrefix(r.Name, "Quick Mode")) {
			got = append(got, r)
		}
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("ladder: %q, want %q", names, want)
	}
	for i, r := range got {
		from, to := initiator, responder
		if (i < 6 && i%2 == 1) || (i >= 6 && i == 7) {
			from, to = responder, initiator
		}
		if r.From != from || r.To != to || !r.Recv || r.Lost {
			t.Errorf("%s: %s → %s received=%v lost=%v, want %s → %s received", r.Name, r.From, r.To, r.Recv, r.Lost, from, to)
		}
	}
	if !strings.Contains(got[4].Payloads, "ID") || !strings.Contains(got[4].Payloads, "HASH") {
		t.Errorf("Main Mode 5/6 payloads %q, want ID and HASH", got[4].Payloads)
	}
}

// inspectMessage clicks a message of the ladder and returns the names of
// the inspector's tree.
func inspectMessage(t *testing.T, ctx context.Context, conn, name string) string {
	t.Helper()
	ok := eval[bool](t, ctx, fmt.Sprintf(`(() => {
		const c = ipseclab.model.conns.get(%q);
		const r = c && c.rows.find((r) => r.name === %q);
		if (!r) return false;
		const sc = document.getElementById("ladder-scroll");
		ipseclab.ladder.follow = false;
		sc.scrollTop = Math.max(0, r.index * ipseclab.ladder.rowHeight() - 60);
		ipseclab.ladder.lastSig = "";
		ipseclab.ladder.draw();
		return true;
	})()`, conn, name))
	if !ok {
		t.Fatalf("no %s in the ladder of %s", name, conn)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`.rung[data-name=%q] .label .text`, name))))
	waitFor(t, ctx, "the decoded "+name, `!!document.querySelector("#packet-layers")`, 10*time.Second)
	return eval[string](t, ctx, `[document.getElementById("packet-title").textContent, ...[...document.querySelectorAll("#packet-layers summary, #packet-layers th, #packet-layers td")].map(e => e.textContent)].join("\n")`)
}

func TestPageSiteToSite(t *testing.T) {
	f := newFixture(t, "site-to-site")
	// The lab's deployment arrives as history, the tunnel's life live.
	f.history, f.pace = 28, 4*time.Millisecond
	url := f.start(t)
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(url))
	waitEnded(t, ctx, 20*time.Second)
	checkStepsInOrder(t, ctx)
	rows := ladderRows(t, ctx, "office")
	checkSiteToSiteLadder(t, rows, "gw-a", "gw-b")
	if names := ikeNames(rows); !slices.Contains(names, "Delete") {
		t.Errorf("no Delete in the ladder: %q", names)
	}

	text := inspectMessage(t, ctx, "office", "Main Mode 5/6")
	for _, want := range []string{"Main Mode 5/6", "(ID)", "(HASH)", "198.51.100.2"} {
		if !strings.Contains(text, want) {
			t.Errorf("the inspector of Main Mode 5/6 lacks %q:\n%s", want, text)
		}
	}
	do(t, ctx, chromedp.Click(chromedp.ID("show-keys")))
	waitFor(t, ctx, "the keys", `!!document.querySelector("#packet-keys")`, 5*time.Second)

	// The topology: every node drawn with its kind.
	kinds := eval[[]string](t, ctx, `[...document.querySelectorAll("#topology .node")].map(n => n.dataset.node + "=" + n.dataset.kind).sort()`)
	if want := []string{"alice=host", "bob=host", "gw-a=gateway", "gw-b=gateway", "isp=router"}; !slices.Equal(kinds, want) {
		t.Errorf("topology nodes %q, want %q", kinds, want)
	}

	// Filters: the node filter and the search narrow the list.
	n := eval[int](t, ctx, `(() => { const s = document.getElementById("f-node"); s.value = "gw-b"; s.dispatchEvent(new Event("change")); return ipseclab.list.index.length })()`)
	all := eval[int](t, ctx, `ipseclab.list.index.every((i) => ipseclab.events[i].node === "gw-b") ? 1 : 0`)
	if n == 0 || all != 1 {
		t.Errorf("the node filter kept %d events, all on gw-b: %v", n, all == 1)
	}
	q := eval[[]string](t, ctx, `(() => { const q = document.getElementById("f-search"); q.value = "informational received"; q.dispatchEvent(new Event("input")); return ipseclab.list.index.map((i) => ipseclab.events[i].kind) })()`)
	if len(q) == 0 || slices.ContainsFunc(q, func(k string) bool { return k != "ike-message" }) {
		t.Errorf("searching gw-b's events for \"informational received\" gave %q", q)
	}
	if e := eval[int](t, ctx, `ipseclab.errors`); e != 0 {
		t.Errorf("%d errors on the page: %s", e, eval[string](t, ctx, `ipseclab.lastError`))
	}
	screenshot(t, ctx, "site-to-site")
}

func TestPageNATTraversal(t *testing.T) {
	f := newFixture(t, "nat-traversal")
	f.history, f.pace = 28, 3*time.Millisecond
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(f.start(t)))
	waitEnded(t, ctx, 20*time.Second)
	rows := ladderRows(t, ctx, "office")
	checkSiteToSiteLadder(t, rows, "laptop", "office-gw")
	// The float to 4500: a note at each side, before Main Mode 5/6.
	floatAt, mm5At, espUDP := -1, -1, 0
	for i, r := range rows {
		if strings.Contains(r.Note, "floated to UDP 4500") && floatAt < 0 {
			floatAt = i
		}
		if r.Name == "Main Mode 5/6" {
			mm5At = i
		}
		if r.Proto == "esp" && strings.Contains(r.Name, "ESP in UDP 4500") {
			espUDP++
		}
	}
	if floatAt < 0 || mm5At < floatAt {
		t.Errorf("the float to UDP 4500 is row %d, Main Mode 5/6 row %d", floatAt, mm5At)
	}
	if espUDP == 0 {
		t.Errorf("no ESP in UDP on the ladder: %+v", rows)
	}
	// From Main Mode 5/6 on, the arrows say UDP 4500.
	ports := eval[[]string](t, ctx, `(() => { const sc = document.getElementById("ladder-scroll"); ipseclab.ladder.follow = false; sc.scrollTop = 0; ipseclab.ladder.lastSig = ""; ipseclab.ladder.draw();
		return [...document.querySelectorAll(".rung.msg.ike")].map(r => r.dataset.name + (r.querySelector(".mark.port") ? " @4500" : "")) })()`)
	if !slices.Contains(ports, "Main Mode 5/6 @4500") || !slices.Contains(ports, "Main Mode 1/6") {
		t.Errorf("rungs in view: %q, want Main Mode 1/6 on 500 and 5/6 on 4500", ports)
	}
	// The topology: the SAs say ESP in UDP, the NAT box shows its table.
	info := eval[string](t, ctx, `[...document.querySelectorAll("#topology .info-line")].map(e => e.closest(".node").dataset.node + ": " + e.textContent).join("\n")`)
	for _, want := range []string{"laptop: ESP in UDP in e17b7824 out 8d992af8", "home-nat: NAT table", "home-nat: udp 192.168.1.10:4500 ⇒ 198.51.100.2:36466"} {
		if !strings.Contains(info, want) {
			t.Errorf("topology lacks %q:\n%s", want, info)
		}
	}
	if imp := eval[string](t, ctx, `[...document.querySelectorAll("#topology .link-g text.impair")].map(e => e.textContent).join("|")`); !strings.Contains(imp, "15ms, ±2ms") {
		t.Errorf("impairment labels %q, want 15ms, ±2ms", imp)
	}
	screenshot(t, ctx, "nat-traversal")
}

func TestPageReplayControls(t *testing.T) {
	live := newFixture(t, "site-to-site")
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(live.start(t)))
	waitEnded(t, ctx, 10*time.Second)
	want := ladderRows(t, ctx, "office")

	f := newFixture(t, "site-to-site")
	f.lab["mode"] = "replay"
	ctx = newTab(t)
	do(t, ctx, chromedp.Navigate(f.start(t)))
	waitFor(t, ctx, "the replay to start", `document.body.dataset.stream === "ended"`, 10*time.Second)
	// A replay plays from the start: it has not reached the end yet.
	if a := eval[int](t, ctx, `Number(document.body.dataset.applied)`); a >= len(f.events) {
		t.Errorf("the replay starts at event %d of %d, want the start", a, len(f.events))
	}
	do(t, ctx, chromedp.Click(chromedp.ID("live")))
	waitEnded(t, ctx, 5*time.Second)
	if got := ladderRows(t, ctx, "office"); !slices.Equal(got, want) {
		t.Errorf("the replay's ladder differs from the live one:\n got %+v\nwant %+v", got, want)
	}
	// Back to the start: nothing applied, no ladder, no step lit.
	do(t, ctx, chromedp.Click(chromedp.ID("start")))
	waitFor(t, ctx, "the start", `document.body.dataset.applied === "0"`, 5*time.Second)
	if n := len(ladderRows(t, ctx, "office")); n != 0 {
		t.Errorf("at the start the ladder has %d rows", n)
	}
	if lit := eval[int](t, ctx, `document.querySelectorAll("#steps .lit").length`); lit != 0 {
		t.Errorf("at the start %d steps are lit", lit)
	}
	// Step forward with the list filtered to IKE: each step is one event.
	eval[bool](t, ctx, `(() => { const s = document.getElementById("f-proto"); s.value = "ike"; s.dispatchEvent(new Event("change")); return true })()`)
	var kinds []string
	for range 3 {
		do(t, ctx, chromedp.Click(chromedp.ID("fwd")))
		kinds = append(kinds, eval[string](t, ctx, `ipseclab.events[ipseclab.model.applied - 1].kind`))
	}
	if !slices.Equal(kinds, []string{"acquire", "ike-message", "ike-message"}) {
		t.Errorf("three steps forward through IKE gave %q", kinds)
	}
	if names := ikeNames(ladderRows(t, ctx, "office")); !slices.Equal(names, []string{"Main Mode 1/6"}) {
		t.Errorf("after three steps the ladder is %q", names)
	}
	do(t, ctx, chromedp.Click(chromedp.ID("back")))
	if k := eval[string](t, ctx, `ipseclab.events[ipseclab.model.applied - 1].kind`); k != "ike-message" || eval[int](t, ctx, `ipseclab.model.applied`) != 30 {
		t.Errorf("a step back ends after %s #%d, want Main Mode 1/6 sent (#30)", k, eval[int](t, ctx, `ipseclab.model.applied`))
	}
	// The scrubber jumps anywhere; playing at 100× reaches the end.
	eval[bool](t, ctx, `(() => { const s = document.getElementById("scrub"); s.value = "60"; s.dispatchEvent(new Event("input")); return true })()`)
	if a := eval[int](t, ctx, `ipseclab.model.applied`); a != 60 {
		t.Errorf("scrubbed to 60, the cursor is at %d", a)
	}
	eval[bool](t, ctx, `(() => { const s = document.getElementById("speed"); s.value = "100"; s.dispatchEvent(new Event("change")); return true })()`)
	do(t, ctx, chromedp.Click(chromedp.ID("play")))
	waitEnded(t, ctx, 10*time.Second)
	if got := ladderRows(t, ctx, "office"); !slices.Equal(got, want) {
		t.Errorf("played to the end, the ladder differs from the live one")
	}
	screenshot(t, ctx, "replay")
}

func TestPageBadInput(t *testing.T) {
	f := newFixture(t, "site-to-site")
	bad := [][]byte{
		[]byte(`{"seq":200,"time":"2026-12-07T18:09:52Z","kind":"quantum-entanglement","node":"gw-a","step":9,"message":"an event of a kind the page does not know","fields":{"spooky":{"action":[1,2]}}}`),
		[]byte(`{"seq":201,"time":"not a time","kind":"ike-message","node":"gw-b","connection":"office","step":2,"message":"broken ike","ike":{"exchange":"main","payloads":"SA","dir":42}}`),
		[]byte(`{"seq":202,"kind":"esp-packet","node":"nowhere","packet":{"outer":7}}`),
		[]byte(`this is not JSON`),
		[]byte(`{"seq":203,"time":"2026-12-07T18:09:53Z","kind":"nat-mapping-new","node":"gw-a","fields":null}`),
		[]byte(`{"seq":204,"time":"2026-12-07T18:09:53Z","kind":"lab-destroyed","message":"the end"}`),
	}
	f.events = append(f.events, bad...)
	f.history = len(f.events) - 3
	f.pace = time.Millisecond
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(f.start(t)))
	waitFor(t, ctx, "the last event", `document.body.dataset.stream === "ended" && ipseclab.model.applied === ipseclab.events.length && ipseclab.events.at(-1).seq === 204`, 10*time.Second)
	// The unknown kind is listed like any other.
	kinds := eval[[]string](t, ctx, `[...document.querySelectorAll("#events .ev .kind")].map(e => e.textContent)`)
	if !slices.Contains(kinds, "quantum-entanglement") {
		t.Errorf("the unknown kind is not in the list: %q", kinds)
	}
	// The line that is not JSON is counted, and nothing else broke: the
	// ladder is whole.
	if e := eval[int](t, ctx, `ipseclab.errors`); e < 1 {
		t.Errorf("the page counted %d errors, want the line that is not JSON", e)
	}
	if !eval[bool](t, ctx, `!document.getElementById("errors").hidden`) {
		t.Error("the error count is not shown")
	}
	checkSiteToSiteLadder(t, ladderRows(t, ctx, "office"), "gw-a", "gw-b")
	// A packet the server cannot decode says so in the inspector.
	do(t, ctx, chromedp.Click(chromedp.CSS(`#events .ev[data-seq="204"]`)))
	waitFor(t, ctx, "the inspector", `document.querySelector("#inspector .insp-kind") && document.querySelector("#inspector .insp-kind").textContent === "lab-destroyed"`, 5*time.Second)
}

func TestPageLargeFont(t *testing.T) {
	f := newFixture(t, "site-to-site")
	url := f.start(t)
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(url))
	waitEnded(t, ctx, 10*time.Second)
	small := eval[float64](t, ctx, `ipseclab.ladder.rowHeight()`)
	do(t, ctx, chromedp.Click(chromedp.ID("big")))
	do(t, ctx, chromedp.Navigate(url))
	waitEnded(t, ctx, 10*time.Second)
	if !eval[bool](t, ctx, `document.body.classList.contains("big")`) {
		t.Fatal("the large font is not remembered across a reload")
	}
	if big := eval[float64](t, ctx, `ipseclab.ladder.rowHeight()`); big <= small {
		t.Errorf("ladder rows %vpx in large mode, %vpx in normal", big, small)
	}
	if fs := eval[string](t, ctx, `getComputedStyle(document.documentElement).fontSize`); fs != "21px" {
		t.Errorf("root font %s in large mode, want 21px", fs)
	}
	screenshot(t, ctx, "large-font")
	do(t, ctx, chromedp.Click(chromedp.ID("big")))
}
