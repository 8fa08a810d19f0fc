package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// sseEvent is one event of a stream as a browser's EventSource sees it.
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseReader reads a text/event-stream.
type sseReader struct {
	t    *testing.T
	body io.ReadCloser
	sc   *bufio.Scanner
}

func openStream(t *testing.T, url string, header map[string]string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s, %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	r := &sseReader{t: t, body: resp.Body, sc: sc}
	t.Cleanup(func() { resp.Body.Close() })
	return r
}

// next returns the next event (or comment), skipping retry: lines.
func (r *sseReader) next() sseEvent {
	r.t.Helper()
	var ev sseEvent
	got := false
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if got {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			return sseEvent{comment: true, data: line}
		case strings.HasPrefix(line, "id: "):
			ev.id, got = line[4:], true
		case strings.HasPrefix(line, "event: "):
			ev.event, got = line[7:], true
		case strings.HasPrefix(line, "data: "):
			ev.data, got = line[6:], true
		case strings.HasPrefix(line, "retry: "):
		default:
			r.t.Fatalf("unexpected line %q", line)
		}
	}
	r.t.Fatalf("stream ended: %v", r.sc.Err())
	return ev
}

// expectEvents reads events and checks their ids are exactly want.
func (r *sseReader) expectEvents(want ...uint64) {
	r.t.Helper()
	for _, w := range want {
		ev := r.next()
		if ev.event != "ev" || ev.id != strconv.FormatUint(w, 10) {
			r.t.Fatalf("got %+v, want event %d", ev, w)
		}
		if !strings.Contains(ev.data, fmt.Sprintf(`"seq":%d,`, w)) {
			r.t.Fatalf("event %d's data is %s", w, ev.data)
		}
	}
}

func (r *sseReader) expectControl(name string) {
	r.t.Helper()
	if ev := r.next(); ev.event != name || ev.data != "{}" {
		r.t.Fatalf("got %+v, want event %s", ev, name)
	}
}

func testEvent(seq uint64) *events.Event {
	return &events.Event{Seq: seq, Time: time.Date(2026, 12, 7, 10, 0, 0, int(seq)*1000, time.UTC), Lab: "t", Node: "gw-a",
		Kind: events.IKEMessage, Step: events.StepPhase1, Message: fmt.Sprintf("message %d", seq)}
}

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// TestStreamHistoryThenLive: a browser that connects late gets the history
// first, then `live`, then each event as it is added, and `end` when the
// source ends.
func TestStreamHistoryThenLive(t *testing.T) {
	s, ts := newTestServer(t, Config{Mode: Live})
	for i := uint64(1); i <= 3; i++ {
		if err := s.Add(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	r := openStream(t, ts.URL+"/api/events", nil)
	r.expectEvents(1, 2, 3)
	r.expectControl("live")
	s.Add(testEvent(4))
	r.expectEvents(4)
	s.Add(testEvent(5))
	s.Add(testEvent(6))
	r.expectEvents(5, 6)
	s.End()
	r.expectControl("end")
}

// TestStreamDataIsTheJSONLine: each event's data is the line `run --json`
// writes for it (encoding/json's bytes).
func TestStreamDataIsTheJSONLine(t *testing.T) {
	s, ts := newTestServer(t, Config{Mode: Live})
	e := testEvent(7)
	e.IKE = &events.IKEInfo{Exchange: "main", MsgNum: 5, MsgTotal: 6, Dir: events.Sent, Plain: []byte{1, 2, 3, 0xff}}
	s.Add(e)
	r := openStream(t, ts.URL+"/api/events", nil)
	ev := r.next()
	want, _ := e.MarshalJSONLine()
	if ev.data != strings.TrimSuffix(string(want), "\n") {
		t.Fatalf("data\n%s\nwant\n%s", ev.data, want)
	}
}

// TestStreamReconnectsWithoutDuplicatesOrGaps: a browser whose connection
// dropped reconnects with Last-Event-ID (as EventSource does) and gets
// what it missed, once; ?since=SEQ does the same for the first connection.
func TestStreamReconnectsWithoutDuplicatesOrGaps(t *testing.T) {
	s, ts := newTestServer(t, Config{Mode: Live})
	for i := uint64(1); i <= 5; i++ {
		s.Add(testEvent(i))
	}
	r := openStream(t, ts.URL+"/api/events", nil)
	r.expectEvents(1, 2, 3, 4, 5)
	r.expectControl("live")
	r.body.Close() // the connection drops
	for i := uint64(6); i <= 9; i++ {
		s.Add(testEvent(i))
	}
	r = openStream(t, ts.URL+"/api/events", map[string]string{"Last-Event-ID": "5"})
	r.expectEvents(6, 7, 8, 9)
	r.expectControl("live")
	s.Add(testEvent(10))
	r.expectEvents(10)

	r = openStream(t, ts.URL+"/api/events?since=8", nil)
	r.expectEvents(9, 10)
	r.expectControl("live")
	// Last-Event-ID wins over ?since, as it is what the browser last saw.
	r = openStream(t, ts.URL+"/api/events?since=2", map[string]string{"Last-Event-ID": "9"})
	r.expectEvents(10)
	r.expectControl("live")
}

// TestStreamIgnoresRepeatedEvents: a source that repeats itself (a lab
// stream read again after a reconnection) adds nothing twice.
func TestStreamIgnoresRepeatedEvents(t *testing.T) {
	s, ts := newTestServer(t, Config{Mode: Live})
	for _, i := range []uint64{1, 2, 3, 2, 3, 4} {
		s.Add(testEvent(i))
	}
	r := openStream(t, ts.URL+"/api/events", nil)
	r.expectEvents(1, 2, 3, 4)
	r.expectControl("live")
}

// TestReplayStreamEnds: a recorded run is history, `live`, then `end`, and
// /api/replay counts its events.
func TestReplayStreamEnds(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s, ts := newTestServer(t, Config{Mode: Replay})
	s.Load(recs)
	r := openStream(t, ts.URL+"/api/events", nil)
	var ids []uint64
	for range recs {
		ev := r.next()
		id, _ := strconv.ParseUint(ev.id, 10, 64)
		ids = append(ids, id)
	}
	for i, id := range ids {
		if id != recs[i].Event.Seq {
			t.Fatalf("event %d has id %d, want %d", i, id, recs[i].Event.Seq)
		}
	}
	r.expectControl("live")
	r.expectControl("end")
	var n struct{ Events int }
	getJSON(t, ts.URL+"/api/replay", &n)
	if n.Events != len(recs) {
		t.Fatalf("/api/replay: %d events, want %d", n.Events, len(recs))
	}
}

// TestStreamPings: an idle stream gets a comment now and then, so that
// proxies and browsers keep it open.
func TestStreamPings(t *testing.T) {
	_, ts := newTestServer(t, Config{Mode: Live, PingInterval: 20 * time.Millisecond})
	r := openStream(t, ts.URL+"/api/events", nil)
	r.expectControl("live")
	if ev := r.next(); !ev.comment || ev.data != ": ping" {
		t.Fatalf("got %+v, want a ping", ev)
	}
}

// TestStreamEndsWithTheRequest: a browser that goes away ends its stream's
// goroutine (no leak per visitor).
func TestStreamEndsWithTheRequest(t *testing.T) {
	s := NewServer(Config{Mode: Live})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/api/events", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { s.ServeHTTP(w, req); close(done) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end with its request")
	}
}

// TestServerIsReadOnly: only GET and HEAD of the server's own resources;
// anything else is refused, and nothing else is found.
func TestServerIsReadOnly(t *testing.T) {
	s, ts := newTestServer(t, Config{Mode: Live})
	s.Add(testEvent(1))
	for _, path := range []string{"/", "/api/lab", "/api/events", "/api/state", "/api/packet/1", "/assets/index.html"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
			req, _ := http.NewRequest(m, ts.URL+path, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %s (Allow %q), want 405", m, path, resp.Status, resp.Header.Get("Allow"))
			}
		}
	}
	for _, path := range []string{"/nope", "/api", "/api/", "/api/labs", "/api/packet/", "/api/packet/x", "/api/packet/-1",
		"/api/replay" /* live mode */, "/assets/", "/assets", "/assets/nope.js", "/assets/../server.go", "/../../etc/passwd", "/index.htm"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
	for _, path := range []string{"/", "/api/lab", "/api/state", "/assets/index.html"} {
		for _, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, ts.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s %s: %s, want 200", m, path, resp.Status)
			}
		}
	}
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := Assets.ReadFile("assets/index.html")
	if string(b) != string(want) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / is not the embedded index.html (%s)", resp.Header.Get("Content-Type"))
	}
}

// TestStateInReplayIsEmpty: a recorded run has no lab to ask.
func TestStateInReplayIsEmpty(t *testing.T) {
	_, ts := newTestServer(t, Config{Mode: Replay, State: func(context.Context) (any, error) { return map[string]int{"x": 1}, nil }})
	var st map[string]any
	getJSON(t, ts.URL+"/api/state", &st)
	if len(st) != 0 {
		t.Fatalf("replay state %v, want {}", st)
	}
	_, ts = newTestServer(t, Config{Mode: Live, State: func(context.Context) (any, error) {
		return map[string]any{"nat": map[string]any{}, "sas": map[string]any{"gw-a": []int{1}}}, nil
	}})
	getJSON(t, ts.URL+"/api/state", &st)
	if _, ok := st["sas"].(map[string]any)["gw-a"]; !ok {
		t.Fatalf("live state %v", st)
	}
}

// TestListenDefaultsToLoopback: no address, or one without a host, listens
// on this machine only; other machines need an explicit address.
func TestListenDefaultsToLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", ":0", "0"} {
		l, err := Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		if host := l.Addr().String(); !strings.HasPrefix(host, "127.0.0.1:") {
			t.Errorf("Listen(%q) listens on %s", addr, host)
		}
		if u := URL(l); !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, "/") {
			t.Errorf("URL %s", u)
		}
		l.Close()
	}
	if _, err := Listen("nonsense"); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("Listen(nonsense): %v", err)
	}
}

// TestStateIsShared: however many browsers poll /api/state, the lab is
// asked at most once a second, one question at a time.
func TestStateIsShared(t *testing.T) {
	var mu sync.Mutex
	asked := 0
	_, ts := newTestServer(t, Config{Mode: Live, State: func(context.Context) (any, error) {
		mu.Lock()
		asked++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return map[string]any{"nat": map[string]any{}, "sas": map[string]any{}}, nil
	}})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st map[string]any
			if code := getJSON(t, ts.URL+"/api/state", &st); code != 200 || st["sas"] == nil {
				t.Errorf("state %d %v", code, st)
			}
		}()
	}
	wg.Wait()
	if asked != 1 {
		t.Fatalf("50 browsers asked the lab %d times", asked)
	}
	time.Sleep(stateTTL + 10*time.Millisecond)
	var st map[string]any
	getJSON(t, ts.URL+"/api/state", &st)
	if asked != 2 {
		t.Fatalf("after a second, asked %d times, want 2", asked)
	}
}
