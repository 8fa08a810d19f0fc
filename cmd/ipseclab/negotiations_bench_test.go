package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// negotiationsLab is two gateways of the given kind across a router, with
// a host behind each (charon's kernel-libipsec routes from an address in
// its local selector), and a script of pairs tunnel-up/tunnel-down steps:
// Main Mode with a pre-shared key, then Quick Mode, then Deletes, one
// after another.
func negotiationsLab(gwKind, ikeProposal, espProposal string, pairs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `topology:
  nodes:
    alice: {kind: host, gateway: 10.1.0.1}
    gw-a:  {kind: %[1]s, gateway: 198.51.100.1}
    isp:   {kind: router}
    gw-b:  {kind: %[1]s, gateway: 203.0.113.1}
    bob:   {kind: host, gateway: 10.2.0.1}
  links:
    - endpoints: [alice:eth0, gw-a:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [gw-a:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [gw-b:eth1, bob:eth0]
      addresses: [10.2.0.1/24, 10.2.0.10/24]
ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {method: psk, secret: lab-only-secret}
    ike: {mode: main, proposals: [%[2]s]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [%[3]s], start: trap}
script:
`, gwKind, ikeProposal, espProposal)
	for range pairs {
		b.WriteString("  - tunnel-up: {connection: office}\n  - tunnel-down: {connection: office}\n")
	}
	return b.String()
}

// scriptNegotiations runs the lab as a user does (`ipseclab run`, the
// timeline on stdout, the lab process writing its event log) and returns
// its tunnel-up/tunnel-down pairs per second: from the first tunnel-up
// step's start to the last one's, by the lab's own clock, so that neither
// the deploy nor the script's settling at the end counts.
func scriptNegotiations(tb testing.TB, gwKind, ikeProposal, espProposal string, pairs int) float64 {
	tb.Helper()
	name := fmt.Sprintf("neg%d", os.Getpid()%100000)
	p := filepath.Join(tb.TempDir(), "lab.yaml")
	lab := "name: " + name + "\n" + negotiationsLab(gwKind, ikeProposal, espProposal, pairs)
	if err := os.WriteFile(p, []byte(lab), 0o644); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = labrun.DestroyLab(name, 30*time.Second) }()
	if r := run(tb, "run", "--keep", p); r.code != 0 {
		tb.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	// The lab process writes its log behind the stream `run` reads.
	var ups []time.Time
	failed, finished := 0, false
	for deadline := time.Now().Add(time.Minute); !finished && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		ups, failed, finished = tunnelSteps(tb, labrun.StateDir(name))
	}
	// charon's log lines are events too: its labs' logs rotate, and the
	// rate is then that of the steps still in the log.
	if len(ups) < pairs/4 || len(ups) < 2 || failed > 0 {
		tb.Fatalf("%d tunnel-up steps of %d in the log, %d did not complete", len(ups), pairs, failed)
	}
	return float64(len(ups)-1) / ups[len(ups)-1].Sub(ups[0]).Seconds()
}

// tunnelSteps reads the lab's event log: when each tunnel-up step started,
// how many tunnel steps did not complete, and whether the script finished.
func tunnelSteps(tb testing.TB, dir string) (ups []time.Time, failed int, finished bool) {
	tb.Helper()
	eachLogLine(dir, func(line []byte) {
		var e struct {
			Kind, Message, Level string
			Time                 time.Time
		}
		if json.Unmarshal(line, &e) != nil {
			return
		}
		switch {
		case e.Kind == "script-finished":
			finished = true
		case e.Kind != "script-step":
		case e.Level == "warn" || e.Level == "error":
			failed++
		case strings.Contains(e.Message, ": tunnel-up "):
			ups = append(ups, e.Time)
		}
	})
	slices.SortFunc(ups, time.Time.Compare)
	return ups, failed, finished
}

// BenchmarkScriptNegotiations: a lab script of 200 tunnel-up/tunnel-down
// pairs (IPSECLAB_NEG_PAIRS sets the count), Main Mode with a pre-shared
// key plus Quick Mode, run with `ipseclab run` between two of our gateways
// and then between two charons in the same lab, with MODP2048 and with
// Curve25519. It reports both rates, the median of b.N runs, and their
// ratio. Run it with -benchtime 5x for the median of five.
func BenchmarkScriptNegotiations(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(b)
	pairs := 200
	if v, err := strconv.Atoi(os.Getenv("IPSECLAB_NEG_PAIRS")); err == nil && v > 1 {
		pairs = v
	}
	for _, bl := range swantest.NegotiationBaselines {
		b.Run(bl.Name, func(b *testing.B) {
			var ours, charon []float64
			for range b.N {
				ours = append(ours, scriptNegotiations(b, "gateway", bl.IKE, bl.ESP, pairs))
				charon = append(charon, scriptNegotiations(b, "strongswan", bl.IKE, bl.ESP, pairs))
			}
			o, c := median(ours), median(charon)
			b.ReportMetric(o, "negotiations/s")
			b.ReportMetric(c, "charon-negotiations/s")
			b.ReportMetric(o/c, "x-charon")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBackToBackNegotiationsKeepCausalOrder: a script of 50 tunnel-up and
// tunnel-down pairs, as fast as they go, brings every tunnel up and down,
// and the stream `run --json` prints is in causal order: no message is
// received before it was sent, no reply is sent before its request came.
func TestBackToBackNegotiationsKeepCausalOrder(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	const pairs = 50
	name := fmt.Sprintf("cli%d-b2b", os.Getpid())
	lab := writeLab(t, name, negotiationsLab("gateway", "aes128-sha256-curve25519", "aes128gcm16", pairs))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	r := run(t, "run", lab, "--json")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	evs := parseJSONLines(t, r.stdout)
	count := map[string]int{}
	for _, e := range evs {
		if e.Kind == events.Phase2Up || e.Kind == events.SADeleted {
			count[e.Node+" "+string(e.Kind)]++
		}
		if e.Kind == events.ScriptStep && e.Level != events.Info {
			t.Errorf("%s", e.Message)
		}
	}
	for _, k := range []string{"gw-a phase2-up", "gw-b phase2-up"} {
		if count[k] != pairs {
			t.Errorf("%s: %d times, want %d", k, count[k], pairs)
		}
	}
	// Each side deletes the IPsec SAs and the ISAKMP SA of every pair.
	for _, k := range []string{"gw-a sa-deleted", "gw-b sa-deleted"} {
		if count[k] != 2*pairs {
			t.Errorf("%s: %d times, want %d", k, count[k], 2*pairs)
		}
	}
	if v := causalViolations(evs); len(v) > 0 {
		t.Fatal(strings.Join(v, "\n"))
	}
}
