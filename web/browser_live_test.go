package web

// The page driven through shipped labs by the real verbs: `ipseclab run LAB
// --web`, then `ipseclab replay FILE --web` of the run's recording. These
// need root (the labs) and chromium; they share one build of ipseclab.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ipseclab/ipseclab/internal/testenv"
)

// verb is a running `ipseclab ...` serving the web view.
type verb struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

var webViewLine = regexp.MustCompile(`web view: (http://\S+)`)

// startVerb runs ipseclab with args, waits for its `web view: URL` line on
// stderr and returns it. Cleanup interrupts it (Ctrl-C: the lab is
// destroyed) and waits for it.
func startVerb(t *testing.T, bin string, stdout io.Writer, args ...string) *verb {
	t.Helper()
	v := &verb{done: make(chan error, 1)}
	v.cmd = exec.Command(bin, args...)
	v.cmd.Stdout = stdout
	pr, pw := io.Pipe()
	v.cmd.Stderr = pw
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			v.mu.Lock()
			v.stderr.WriteString(line + "\n")
			v.mu.Unlock()
			if m := webViewLine.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		err := v.cmd.Wait()
		pw.Close()
		v.done <- err
	}()
	t.Cleanup(func() { v.stop(t) })
	select {
	case v.url = <-urls:
	case err := <-v.done:
		v.done <- err
		t.Fatalf("ipseclab %s ended before serving: %v\n%s", strings.Join(args, " "), err, v.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("ipseclab %s printed no `web view:` line in 60s\n%s", strings.Join(args, " "), v.log())
	}
	return v
}

func (v *verb) log() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stderr.String()
}

// stop interrupts the verb as Ctrl-C does and waits for it to clean up.
func (v *verb) stop(t *testing.T) {
	if v.cmd.ProcessState != nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-v.done:
	case <-time.After(30 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.done
		t.Errorf("ipseclab did not stop within 30s of Ctrl-C\n%s", v.log())
	}
}

func buildIpseclab(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ipseclab")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ipseclab").CombinedOutput(); err != nil {
		t.Fatalf("go build ipseclab: %v\n%s", err, out)
	}
	return bin
}

// TestWebLabs runs shipped labs with --web and checks the page against each;
// then replays the recorded site-to-site run and compares the ladders.
func TestWebLabs(t *testing.T) {
	testenv.NeedRoot(t)
	newTab(t) // chromium, or fail/skip now
	bin := buildIpseclab(t)
	state := t.TempDir()
	id := os.Getpid() % 100000
	recording := filepath.Join(t.TempDir(), "site-to-site.jsonl")
	var liveRows []ladderRow

	t.Run("site-to-site", func(t *testing.T) {
		out, err := os.Create(recording)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		v := startVerb(t, bin, out, "--state-dir", state, "run", "site-to-site", "--json", "--keys",
			"--name", fmt.Sprintf("w%d-s2s", id), "--web=127.0.0.1:0")
		ctx := newTab(t)
		do(t, ctx, chromedp.Navigate(v.url))
		waitFor(t, ctx, "the end of the script",
			`window.ipseclab && ipseclab.model && ipseclab.events.some((e) => e.kind === "script-finished") && ipseclab.model.applied === ipseclab.events.length`, 30*time.Second)
		checkStepsInOrder(t, ctx)
		liveRows = ladderRows(t, ctx, "office")
		checkSiteToSiteLadder(t, liveRows, "gw-a", "gw-b")
		text := inspectMessage(t, ctx, "office", "Main Mode 5/6")
		for _, want := range []string{"Main Mode 5/6", "(ID)", "(HASH)", "198.51.100.2"} {
			if !strings.Contains(text, want) {
				t.Errorf("the inspector of Main Mode 5/6 lacks %q:\n%s", want, text)
			}
		}
		do(t, ctx, chromedp.Click(chromedp.ID("show-keys")))
		waitFor(t, ctx, "the keys", `!!document.querySelector("#packet-keys")`, 5*time.Second)
		if keys := eval[string](t, ctx, `document.getElementById("packet-keys").textContent`); !strings.Contains(strings.ToLower(keys), "skeyid") {
			t.Errorf("keys of a run with --keys: %q, want SKEYID", keys)
		}
		if e := eval[int](t, ctx, `ipseclab.errors`); e != 0 {
			t.Errorf("%d errors on the page: %s", e, eval[string](t, ctx, `ipseclab.lastError`))
		}
		screenshot(t, ctx, "live-site-to-site")
		v.stop(t)
	})

	t.Run("nat-traversal", func(t *testing.T) {
		v := startVerb(t, bin, io.Discard, "--state-dir", state, "run", "nat-traversal",
			"--name", fmt.Sprintf("w%d-nat", id), "--web=127.0.0.1:0")
		ctx := newTab(t)
		do(t, ctx, chromedp.Navigate(v.url))
		// The script waits 20 s for a keepalive; the float and ESP in UDP
		// come in the first second or two.
		waitFor(t, ctx, "ESP in UDP on the ladder",
			`window.ipseclab && ipseclab.ladder && ipseclab.ladder.rows("office").filter((r) => r.proto === "esp" && r.name.includes("ESP in UDP 4500") && r.recv).length >= 2`, 30*time.Second)
		rows := ladderRows(t, ctx, "office")
		checkSiteToSiteLadder(t, rows, "laptop", "office-gw")
		floatAt, mm5At := -1, -1
		for i, r := range rows {
			if strings.Contains(r.Note, "floated to UDP 4500") && floatAt < 0 {
				floatAt = i
			}
			if r.Name == "Main Mode 5/6" {
				mm5At = i
			}
		}
		if floatAt < 0 || mm5At < floatAt {
			t.Errorf("the float to UDP 4500 is row %d, Main Mode 5/6 row %d", floatAt, mm5At)
		}
		text := inspectMessage(t, ctx, "office", "Main Mode 5/6")
		if !strings.Contains(text, "4500") {
			t.Errorf("Main Mode 5/6 decoded without UDP 4500:\n%s", text)
		}
		info := eval[string](t, ctx, `[...document.querySelectorAll("#topology .info-line")].map(e => e.closest(".node").dataset.node + ": " + e.textContent).join("\n")`)
		for _, want := range []string{"laptop: ESP in UDP", "office-gw: ESP in UDP", "home-nat: NAT table"} {
			if !strings.Contains(info, want) {
				t.Errorf("topology lacks %q:\n%s", want, info)
			}
		}
		screenshot(t, ctx, "live-nat-traversal")
		v.stop(t)
	})

	// A deployed lab without a run: `ipseclab web --name LAB` while a
	// student brings the tunnel up from the command line.
	t.Run("deployed", func(t *testing.T) {
		name := fmt.Sprintf("w%d-dep", id)
		ipseclab := func(args ...string) {
			t.Helper()
			out, err := exec.Command(bin, append([]string{"--state-dir", state}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("ipseclab %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		ipseclab("deploy", "-t", "site-to-site", "--name", name)
		t.Cleanup(func() {
			exec.Command(bin, "--state-dir", state, "destroy", "--name", name).Run()
		})
		v := startVerb(t, bin, io.Discard, "--state-dir", state, "web", "--name", name, "--addr", "127.0.0.1:0")
		ctx := newTab(t)
		do(t, ctx, chromedp.Navigate(v.url))
		waitFor(t, ctx, "the page", `window.ipseclab && ipseclab.model && document.body.dataset.stream === "live"`, 20*time.Second)
		// deploy runs the lab's script in the background, and site-to-site's
		// ends with a tunnel-down: the student's tunnel comes after it, not
		// in its middle, where the script would take it down or start one
		// of its own.
		waitFor(t, ctx, "the deploy's script to finish", `ipseclab.events.some((e) => e.kind === "script-finished")`, 30*time.Second)
		// The student's negotiation is the one whose Main Mode 1/6 comes
		// after those on the page now (the script's): waiting for any
		// Quick Mode 3/3, or for one after the last Main Mode 1/6, passed
		// on the script's before the student's first message had arrived.
		before := eval[int](t, ctx, `ipseclab.ladder.rows("office").filter((r) => r.name === "Main Mode 1/6").length`)
		ipseclab("tunnel", "up", "--name", name, "office")
		waitFor(t, ctx, "the tunnel on the page", fmt.Sprintf(
			`((rows) => rows.filter((r) => r.name === "Main Mode 1/6").length > %d && rows.slice(rows.findLastIndex((r) => r.name === "Main Mode 1/6")).some((r) => r.name === "Quick Mode 3/3" && r.recv))(ipseclab.ladder.rows("office"))`+
				` && ipseclab.state && ipseclab.state.sas && (ipseclab.state.sas["gw-a"] || []).length >= 2`, before), 30*time.Second)
		rows := ladderRows(t, ctx, "office")
		last := 0
		for i, r := range rows {
			if r.Name == "Main Mode 1/6" {
				last = i
			}
		}
		checkSiteToSiteLadder(t, rows[last:], "gw-a", "gw-b")
		// The SAs under the gateways come from /api/state.
		waitFor(t, ctx, "the SAs under gw-a", `[...document.querySelectorAll('#topology .node[data-node="gw-a"] .info-line.sa')].some((e) => e.textContent.startsWith("ESP in "))`, 10*time.Second)
		screenshot(t, ctx, "deployed-site-to-site")
		v.stop(t)

		// A page opened after the tunnel came up learns its SAs from
		// /api/state alone: the history may not tell them (deploy's
		// script may have brought a tunnel down and up before).
		ipseclab("tunnel", "up", "--name", name, "office")
		late := startVerb(t, bin, io.Discard, "--state-dir", state, "web", "--name", name, "--addr", "127.0.0.1:0")
		var st struct {
			SAs map[string][]struct{ Type string } `json:"sas"`
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			resp, err := http.Get(late.url + "api/state")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
			}
			if err == nil && len(st.SAs["gw-a"]) >= 2 && len(st.SAs["gw-b"]) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/api/state of a web view started after the tunnel came up: %+v, %v", st, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		late.stop(t)
	})

	t.Run("replay", func(t *testing.T) {
		if liveRows == nil {
			t.Skip("the live site-to-site run failed")
		}
		v := startVerb(t, bin, io.Discard, "replay", recording, "--web=127.0.0.1:0")
		ctx := newTab(t)
		do(t, ctx, chromedp.Navigate(v.url))
		waitFor(t, ctx, "the recording", `window.ipseclab && document.body.dataset.stream === "ended"`, 20*time.Second)
		if mode := eval[string](t, ctx, `document.getElementById("mode").textContent`); mode != "replay" {
			t.Errorf("mode %q, want replay", mode)
		}
		do(t, ctx, chromedp.Click(chromedp.ID("live")))
		waitEnded(t, ctx, 10*time.Second)
		got := ladderRows(t, ctx, "office")
		// The recording goes on after script-finished (the lab's
		// destruction), which adds nothing to the ladder.
		if !slices.Equal(got, liveRows) {
			t.Errorf("the replay's ladder differs from the live one:\n got %+v\nwant %+v", got, liveRows)
		}
		checkStepsInOrder(t, ctx)
		screenshot(t, ctx, "replay-site-to-site")
	})
}
