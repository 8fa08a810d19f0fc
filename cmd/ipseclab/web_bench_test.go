//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// processCPU is the CPU time a process has used, user and system, all its
// threads (/proc/PID/stat, in clock ticks of 10 ms).
func processCPU(tb testing.TB, pid int) time.Duration {
	u, s := processUserSys(tb, pid)
	return u + s
}

// processUserSys is processCPU's two parts.
func processUserSys(tb testing.TB, pid int) (user, sys time.Duration) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name may hold spaces: the fields count from its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime) * 10 * time.Millisecond, time.Duration(stime) * 10 * time.Millisecond
}

// webWatched runs a script of pairs negotiations with `run --web` while
// clients browsers follow the event stream from the start and poll
// /api/state every 1.5 s as the page does, and returns
// the CPU time the lab process and the run process (which serves the
// view) used by the script's end.
func webWatched(tb testing.TB, clients, pairs int) (labCPU, runCPU time.Duration, received int64) {
	tb.Helper()
	name := fmt.Sprintf("web%d-%d", os.Getpid()%100000, clients)
	p := filepath.Join(tb.TempDir(), "lab.yaml")
	if err := os.WriteFile(p, []byte("name: "+name+"\n"+negotiationsLab("gateway", "aes128-sha256-curve25519", "aes128gcm16", pairs)), 0o644); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = labrun.DestroyLab(name, 30*time.Second) }()
	w := startWeb(tb, "run", p, "--web", "127.0.0.1:0")
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(w.url + "api/events")
			if err != nil {
				tb.Error(err)
				return
			}
			defer resp.Body.Close()
			// And polls the state as the page does.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				t := time.NewTicker(1500 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if r, err := http.Get(w.url + "api/state"); err == nil {
							_, _ = io.Copy(io.Discard, r.Body)
							r.Body.Close()
						}
					}
				}
			}()
			// Read as a browser does, in large reads, until `end`.
			buf := make([]byte, 256<<10)
			var tail []byte
			var n int64
			for {
				k, err := resp.Body.Read(buf)
				n += int64(k)
				chunk := append(tail, buf[:k]...)
				if bytes.Contains(chunk, []byte("event: end\n")) || err != nil {
					break
				}
				tail = append(tail[:0], chunk[max(0, len(chunk)-16):]...)
			}
			mu.Lock()
			received += n
			mu.Unlock()
		}()
	}
	w.waitLine(tb, "the script has finished", 5*time.Minute)
	wg.Wait()
	st, err := labrun.ReadState(name)
	if err != nil {
		tb.Fatal(err)
	}
	labCPU, runCPU = processCPU(tb, st.PID), processCPU(tb, w.cmd.Process.Pid)
	lu, ls := processUserSys(tb, st.PID)
	ru, rs := processUserSys(tb, w.cmd.Process.Pid)
	tb.Logf("%d browsers: lab process user %v sys %v, run process user %v sys %v", clients, lu, ls, ru, rs)
	if code := w.stop(tb); code != 0 {
		tb.Fatalf("run --web: exit %d", code)
	}
	return labCPU, runCPU, received
}

// BenchmarkWebClients: a classroom of 50 browsers watching one lab. The
// same script of negotiations (IPSECLAB_WEB_PAIRS tunnel-up/tunnel-down
// pairs, 500 by default) runs with `run --web` twice, with no browser and
// with 50 following the event stream from the first event to the last;
// it reports the CPU time of the lab process and of the run process that
// serves the page, each with 50 browsers over without, and what the 50
// browsers add to the two processes together as a share of the lab
// process's own CPU time.
func BenchmarkWebClients(b *testing.B) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	pairs := 500
	if v, err := strconv.Atoi(os.Getenv("IPSECLAB_WEB_PAIRS")); err == nil && v > 1 {
		pairs = v
	}
	var lab0, lab50, run0, run50 time.Duration
	var bytes50 int64
	for range b.N {
		l, r, _ := webWatched(b, 0, pairs)
		lab0, run0 = lab0+l, run0+r
		l, r, n := webWatched(b, 50, pairs)
		lab50, run50, bytes50 = lab50+l, run50+r, bytes50+n
	}
	n := time.Duration(b.N)
	b.Logf("lab process %v → %v, run process %v → %v, %d MB streamed to 50 browsers", lab0/n, lab50/n, run0/n, run50/n, bytes50/int64(b.N)>>20)
	b.ReportMetric(lab50.Seconds()/lab0.Seconds(), "lab-cpu-x")
	b.ReportMetric(run50.Seconds()/run0.Seconds(), "run-cpu-x")
	b.ReportMetric(100*((lab50+run50)-(lab0+run0)).Seconds()/lab0.Seconds(), "added-%-of-lab")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkScriptNegotiationsCPU is BenchmarkScriptNegotiations measured
// in CPU time rather than in negotiations per second: the CPU time the
// lab process and `run` spend per tunnel-up/tunnel-down pair of the same
// script (IPSECLAB_NEG_PAIRS, 200 by default) between two of our
// gateways. On a machine shared with other work the rate moves with the
// load and CPU time much less: this is what compares two builds
// (IPSECLAB_BINARY=old build) there.
func BenchmarkScriptNegotiationsCPU(b *testing.B) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	pairs := 200
	if v, err := strconv.Atoi(os.Getenv("IPSECLAB_NEG_PAIRS")); err == nil && v > 1 {
		pairs = v
	}
	for _, g := range []struct{ name, ike string }{{"modp2048", "aes128-sha256-modp2048"}, {"curve25519", "aes128-sha256-curve25519"}} {
		b.Run(g.name, func(b *testing.B) {
			var labs, runs []float64
			for range b.N {
				name := fmt.Sprintf("ncpu%d", os.Getpid()%100000)
				p := filepath.Join(b.TempDir(), "lab.yaml")
				if err := os.WriteFile(p, []byte("name: "+name+"\n"+negotiationsLab("gateway", g.ike, "aes128gcm16", pairs)), 0o644); err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command(binary, "run", "--keep", p)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("run: %v\n%s", err, out)
				}
				st, err := labrun.ReadState(name)
				if err != nil {
					b.Fatal(err)
				}
				labs = append(labs, float64(processCPU(b, st.PID).Microseconds())/float64(pairs))
				runs = append(runs, float64((cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()).Microseconds())/float64(pairs))
				_ = labrun.DestroyLab(name, 30*time.Second)
			}
			b.ReportMetric(median(labs), "lab-us/pair")
			b.ReportMetric(median(runs), "run-us/pair")
			b.ReportMetric(median(labs)+median(runs), "us/pair")
			b.ReportMetric(0, "ns/op")
		})
	}
}
