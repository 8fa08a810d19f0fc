//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// webProcess is an ipseclab verb serving the web view.
type webProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr chan string // the lines after the web view's
	done   chan error
}

// startWeb runs ipseclab with args and waits for its `web view: URL` line.
func startWeb(t testing.TB, args ...string) *webProcess {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdout = io.Discard
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &webProcess{cmd: cmd, stderr: make(chan string, 1000), done: make(chan error, 1)}
	urlc := make(chan string, 1)
	var head []string
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "web view: "); ok && p.url == "" {
				urlc <- u
				continue
			}
			head = append(head, line)
			select {
			case p.stderr <- line:
			default:
			}
		}
		close(p.stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	select {
	case p.url = <-urlc:
	case err := <-p.done:
		t.Fatalf("ipseclab %v ended before serving: %v\n%s", args, err, strings.Join(head, "\n"))
	case <-time.After(60 * time.Second):
		t.Fatalf("ipseclab %v: no web view line", args)
	}
	return p
}

// waitLine waits for a line of stderr that contains s.
func (p *webProcess) waitLine(t testing.TB, s string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case line, ok := <-p.stderr:
			if !ok {
				t.Fatalf("stderr ended before %q", s)
			}
			if strings.Contains(line, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q on stderr within %s", s, within)
		}
	}
}

// stop interrupts the process (Ctrl-C) and returns its exit code.
func (p *webProcess) stop(t testing.TB) int {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the web view did not stop on Ctrl-C")
	}
	return p.cmd.ProcessState.ExitCode()
}

// webStream reads the view's event stream.
type webStream struct {
	t    *testing.T
	body io.ReadCloser
	sc   *bufio.Scanner
}

func openWebStream(t *testing.T, url string) *webStream {
	t.Helper()
	resp, err := http.Get(url + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("api/events: %s %s", resp.Status, ct)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<24)
	return &webStream{t: t, body: resp.Body, sc: sc}
}

// next returns the next SSE event's type and decoded event (for `ev`).
func (s *webStream) next() (string, *events.Event) {
	s.t.Helper()
	var typ, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && typ != "":
			if typ != "ev" {
				return typ, nil
			}
			var e events.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				s.t.Fatalf("event data %s: %v", data, err)
			}
			return typ, &e
		}
	}
	s.t.Fatalf("the stream ended: %v", s.sc.Err())
	return "", nil
}

// until reads the stream until fn returns true, failing after a while.
func (s *webStream) until(within time.Duration, what string, fn func(typ string, e *events.Event) bool) {
	s.t.Helper()
	timer := time.AfterFunc(within, func() { s.body.Close() })
	defer timer.Stop()
	for {
		typ, e := s.next()
		if fn(typ, e) {
			return
		}
		if typ == "end" {
			s.t.Fatalf("the stream ended before %s", what)
		}
	}
}

func webGet(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// labView is the part of /api/lab the tests read.
type labView struct {
	Name, Mode string
	Inferred   bool
	Nodes      []struct{ Name, Kind string }
	Links      []struct{ ID string }
}

// TestRunWebServesTheLab: `run site-to-site --web 127.0.0.1:0` serves the
// lab, its events from the first (history) through the script's end, the
// decrypted Main Mode 5/6 and the SAs; after the script it keeps serving,
// Ctrl-C destroys the lab, and the exit code is the script's.
func TestRunWebServesTheLab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-web", os.Getpid())
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	p := startWeb(t, "run", "site-to-site", "--name", name, "--web", "127.0.0.1:0")
	if !strings.HasPrefix(p.url, "http://127.0.0.1:") {
		t.Fatalf("url %s", p.url)
	}
	var lab labView
	webGet(t, p.url+"api/lab", &lab)
	kinds := map[string]string{}
	for _, n := range lab.Nodes {
		kinds[n.Name] = n.Kind
	}
	if lab.Name != name || lab.Mode != "live" || kinds["gw-a"] != "gateway" || kinds["isp"] != "router" || len(lab.Links) != 4 {
		t.Fatalf("api/lab: %+v", lab)
	}
	s := openWebStream(t, p.url)
	var first, mm5 uint64
	finished := false
	s.until(90*time.Second, "end", func(typ string, e *events.Event) bool {
		if e != nil {
			if first == 0 {
				first = e.Seq
			}
			if e.Kind == events.IKEMessage && e.IKE != nil && e.IKE.Exchange == "main" && e.IKE.MsgNum == 5 && mm5 == 0 {
				mm5 = e.Seq
			}
			finished = finished || e.Kind == events.ScriptFinished
		}
		return typ == "end"
	})
	if first != 1 || mm5 == 0 || !finished {
		t.Fatalf("stream: first event %d, Main Mode 5/6 %d, script finished %v", first, mm5, finished)
	}
	var pkt struct {
		Title  string
		Layers []struct {
			Name     string
			Children []struct {
				Name   string
				Fields [][2]string
			}
		}
	}
	webGet(t, fmt.Sprintf("%sapi/packet/%d", p.url, mm5), &pkt)
	var payloads []string
	for _, l := range pkt.Layers {
		for _, c := range l.Children {
			payloads = append(payloads, c.Name)
		}
	}
	if pkt.Title != "Main Mode 5/6" || !strings.Contains(strings.Join(payloads, ","), "Identification (ID),Hash (HASH)") {
		t.Fatalf("Main Mode 5/6: %q %q", pkt.Title, payloads)
	}
	p.waitLine(t, "the script has finished", 30*time.Second)
	// The lab is still up while the page is served.
	var state struct {
		SAs map[string][]labrun.SAInfo `json:"sas"`
		NAT map[string]any             `json:"nat"`
	}
	webGet(t, p.url+"api/state", &state)
	if state.SAs == nil || state.NAT == nil {
		t.Fatalf("api/state: %+v", state)
	}
	if _, err := labrun.ReadState(name); err != nil {
		t.Fatalf("the lab is gone while the page is served: %v", err)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("run --web exited %d, want the script's 0", code)
	}
	if _, err := labrun.ReadState(name); err == nil {
		t.Fatal("the lab is still up after Ctrl-C")
	}
}

// TestWebFollowsTheCLI: `web --name LAB` shows what students do from the
// command line (tunnel up, impair) as it happens, and ends the stream when
// the lab is destroyed.
func TestWebFollowsTheCLI(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-webcli", os.Getpid())
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", "site-to-site", "--name", name); r.code != 0 {
		t.Fatalf("deploy: %d\n%s", r.code, r.stderr)
	}
	p := startWeb(t, "web", "--name", name, "--addr", "127.0.0.1:0")
	s := openWebStream(t, p.url)
	// The lab's own script ends with the tunnel down; then the CLI acts.
	s.until(60*time.Second, "script-finished", func(typ string, e *events.Event) bool {
		return e != nil && e.Kind == events.ScriptFinished
	})
	if r := run(t, "tunnel", "up", "--name", name, "office"); r.code != 0 {
		t.Fatalf("tunnel up: %d\n%s", r.code, r.stderr)
	}
	s.until(30*time.Second, "phase2-up", func(typ string, e *events.Event) bool { return e != nil && e.Kind == events.Phase2Up })
	if r := run(t, "impair", "--name", name, "isp:eth0", "--delay", "7ms"); r.code != 0 {
		t.Fatalf("impair: %d\n%s", r.code, r.stderr)
	}
	s.until(30*time.Second, "link-impair", func(typ string, e *events.Event) bool {
		return e != nil && e.Kind == events.LinkImpair && strings.Contains(e.Message, "7ms")
	})
	if r := run(t, "destroy", "--name", name); r.code != 0 {
		t.Fatalf("destroy: %d\n%s", r.code, r.stderr)
	}
	s.until(30*time.Second, "end", func(typ string, e *events.Event) bool { return typ == "end" })
	if code := p.stop(t); code != 0 {
		t.Fatalf("web exited %d", code)
	}
}

// TestReplay: a recorded run replays in the terminal (no pauses with
// --speed 0) and on the web view, where the lab comes from the recording;
// a bad recording is refused with its line.
func TestReplay(t *testing.T) {
	rec := filepath.Join("..", "..", "web", "testdata", "site-to-site.jsonl")
	r := run(t, "replay", rec, "--speed", "0", "--width", "100")
	if r.code != 0 || !strings.Contains(r.stdout, "Main Mode 5/6") || !strings.Contains(r.stdout, "Step 4 · Data transfer") {
		t.Fatalf("replay: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	p := startWeb(t, "replay", rec, "--web", "127.0.0.1:0")
	var lab labView
	webGet(t, p.url+"api/lab", &lab)
	if lab.Mode != "replay" || lab.Inferred || len(lab.Nodes) != 5 {
		t.Fatalf("api/lab: %+v", lab)
	}
	var n struct{ Events int }
	webGet(t, p.url+"api/replay", &n)
	if n.Events != 114 {
		t.Fatalf("api/replay: %+v", n)
	}
	s := openWebStream(t, p.url)
	count := 0
	s.until(10*time.Second, "end", func(typ string, e *events.Event) bool {
		if e != nil {
			count++
		}
		return typ == "end"
	})
	if count != 114 {
		t.Fatalf("%d events before end, want 114", count)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("replay --web exited %d", code)
	}

	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(bad, b[:len(b)-30], 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "replay", bad)
	if r.code == 0 || !strings.Contains(r.stderr, bad+":114: not JSON") {
		t.Fatalf("truncated recording: %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(bad, []byte(`{"name":"x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = run(t, "replay", bad, "--web", "127.0.0.1:0"); r.code == 0 || !strings.Contains(r.stderr, bad+":1: not an ipseclab event") {
		t.Fatalf("foreign file: %d\n%s", r.code, r.stderr)
	}
}
