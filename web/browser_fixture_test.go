package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/labs"
)

// fixtureServer serves the page's contract (GET /, /assets/, /api/lab,
// /api/events, /api/state, /api/packet/SEQ, /api/replay) from recorded
// files, with no lab and no root: it lets the page's tests check what the
// page does with a stream paced as the test wants (a slow live run, a
// flood of events, unknown kinds, garbage), independently of how the real
// server gets its events. /api/packet is the real server's, fed with the
// same events. The tests of the real verbs are in browser_live_test.go.
type fixtureServer struct {
	assets  fs.FS
	lab     map[string]any
	events  [][]byte // one JSON event per entry
	history int      // events sent before `event: live`
	pace    time.Duration
	burst   int      // live events sent at each tick of pace (1 if 0)
	end     bool     // send `event: end` after the last event
	seqs    []uint64 // of events, computed by start
	decoder *Server  // the real server with the same events, for /api/packet
}

// newFixture reads testdata/NAME.jsonl (a run of the shipped lab NAME
// recorded with `run --json`); /api/lab is the real server's view of NAME.
func newFixture(t testing.TB, name string) *fixtureServer {
	t.Helper()
	f := &fixtureServer{assets: os.DirFS("assets"), end: true}
	lab, _, err := labs.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	view := viewOfLab(lab)
	view.Mode = Live
	b, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f.lab); err != nil {
		t.Fatal(err)
	}
	f.events = readJSONLines(t, "testdata/"+name+".jsonl")
	f.history = len(f.events)
	return f
}

func readJSONLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, append([]byte(nil), line...))
		}
	}
	return out
}

func seqOf(ev []byte) uint64 {
	var e struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(ev, &e)
	return e.Seq
}

// start serves on a loopback port and returns the page's URL.
func (f *fixtureServer) start(t testing.TB) string {
	t.Helper()
	f.seqs = make([]uint64, len(f.events))
	f.decoder = NewServer(Config{Mode: Replay})
	for i, ev := range f.events {
		f.seqs[i] = seqOf(ev)
		if f.seqs[i] != 0 {
			f.decoder.AddLine(f.seqs[i], ev)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func (f *fixtureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/":
		fixtureAsset(w, f.assets, "index.html")
	case strings.HasPrefix(p, "/assets/"):
		fixtureAsset(w, f.assets, strings.TrimPrefix(p, "/assets/"))
	case p == "/api/lab":
		fixtureJSON(w, f.lab)
	case p == "/api/state":
		fixtureJSON(w, map[string]any{})
	case p == "/api/replay":
		if f.lab["mode"] != "replay" {
			http.NotFound(w, r)
			return
		}
		fixtureJSON(w, map[string]any{"events": len(f.events)})
	case strings.HasPrefix(p, "/api/packet/"):
		f.decoder.ServeHTTP(w, r)
	case p == "/api/events":
		f.serveEvents(w, r)
	default:
		http.NotFound(w, r)
	}
}

func fixtureAsset(w http.ResponseWriter, assets fs.FS, name string) {
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		http.Error(w, "no such asset", http.StatusNotFound)
		return
	}
	switch {
	case strings.HasSuffix(name, ".html"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Write(b)
}

func fixtureJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fixtureServer) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	after, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	bw := bufio.NewWriterSize(w, 64<<10)
	i := 0
	send := func(ev []byte) {
		seq := f.seqs[i]
		i++
		if seq != 0 && seq <= after {
			return
		}
		fmt.Fprintf(bw, "id: %d\nevent: ev\ndata: %s\n\n", seq, ev)
	}
	for _, ev := range f.events[:f.history] {
		send(ev)
	}
	bw.WriteString("event: live\ndata: {}\n\n")
	bw.Flush()
	if fl != nil {
		fl.Flush()
	}
	burst := max(f.burst, 1)
	for i, ev := range f.events[f.history:] {
		if i%burst == 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(f.pace):
			}
		}
		send(ev)
		if (i+1)%burst != 0 {
			continue
		}
		bw.Flush()
		if fl != nil {
			fl.Flush()
		}
	}
	bw.Flush()
	if fl != nil {
		fl.Flush()
	}
	if !f.end {
		<-r.Context().Done()
		return
	}
	bw.WriteString("event: end\ndata: {}\n\n")
	bw.Flush()
	if fl != nil {
		fl.Flush()
	}
}
