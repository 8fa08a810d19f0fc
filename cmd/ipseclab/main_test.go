package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/topology"
)

var binary string

// TestMain builds the ipseclab binary once; the tests run it as a user would.
// As root, the tests run in a mount namespace of their own, where /run/netns
// and the state root are empty file systems: the labs they deploy, and
// `destroy --all`, never meet the labs of the machine (a class's, say), and
// the machine's never see theirs.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		if os.Getenv(privateEnv) == "" {
			os.Exit(rerunPrivately())
		}
		if err := privateMounts(); err != nil {
			fmt.Fprintf(os.Stderr, "private mounts for the tests: %v\n", err)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "ipseclab-cli-test")
	if err != nil {
		panic(err)
	}
	// Other users must be able to run it (the not-root test runs it as nobody).
	_ = os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "ipseclab")
	if b := os.Getenv("IPSECLAB_BINARY"); b != "" {
		// A benchmark's baseline: another build of ipseclab, an older commit's.
		binary = b
	} else if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ipseclab: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// privateEnv marks the test binary run again in its own mount namespace.
const privateEnv = "IPSECLAB_TEST_PRIVATE_MOUNTS"

// rerunPrivately runs this test binary again, with its arguments, in a new
// mount namespace (Go makes its mounts private before the exec), and returns
// its exit code.
func rerunPrivately() int {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), privateEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "run the tests in a private mount namespace: %v\n", err)
		return 1
	}
	return 0
}

// privateMounts puts empty file systems over /run/netns and the state root,
// seen by this process and the lab processes it starts alone. They go when
// the last of those exits, and with them the tests' namespaces' names.
func privateMounts() error {
	for _, dir := range []string{labrun.NetnsDir, labrun.StateRoot} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount("ipseclab-test", dir, "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
		}
	}
	return nil
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func writeLab(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("name: %s\n%s", name, body)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const smallLab = `topology:
  nodes:
    a:  {kind: host, gateway: 10.0.1.1}
    r1: {kind: router, gateway: 10.0.12.2}
    r2: {kind: router, routes: [{to: 10.0.1.0/24, via: 10.0.12.1}]}
    b:  {kind: host, gateway: 10.0.2.1}
    c:  {kind: host, gateway: 10.0.2.1}
  links:
    - endpoints: [a:eth0, r1:eth0]
      addresses: [10.0.1.10/24, 10.0.1.1/24]
    - endpoints: [r1:eth1, r2:eth0]
      addresses: [10.0.12.1/30, 10.0.12.2/30]
  lans:
    - name: lan2
      members: [r2:eth1, b:eth0, c:eth0]
      addresses: [10.0.2.1/24, 10.0.2.10/24, 10.0.2.11/24]
`

func TestValidateReportsEveryProblemWithFileLineCol(t *testing.T) {
	bad := writeLab(t, "bad", `topology:
  nodes:
    a: {kind: host, colour: red}
    b: {kind: hots}
  links:
    - endpoints: [a:eth0, z:eth0]
`)
	r := run(t, "validate", bad)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		bad + `:4:21: unknown field "colour"`,
		bad + `:5:15: unknown node kind "hots" (did you mean "host"?`,
		bad + `:7:27: endpoint z:eth0 names unknown node "z"`,
		"3 problem(s) found; nothing was created",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	good := writeLab(t, "good", smallLab)
	if r := run(t, "validate", good); r.code != 0 || !strings.Contains(r.stdout, "is valid: 5 nodes, 2 links, 1 LANs") {
		t.Fatalf("good lab: %+v", r)
	}
}

// The verbs that name their lab with -t say so when it comes as an argument,
// as `run` takes it, instead of cobra's "unknown command".
func TestLabAsArgumentPointsAtTheFlag(t *testing.T) {
	for _, tc := range []struct{ args []string }{
		{[]string{"deploy", "site-to-site"}},
		{[]string{"destroy", "site-to-site"}},
		{[]string{"inspect", "site-to-site"}},
		{[]string{"graph", "site-to-site"}},
		{[]string{"watch", "site-to-site"}},
	} {
		r := run(t, tc.args...)
		want := fmt.Sprintf("ipseclab: %s takes the lab as a flag, not as an argument: ipseclab %s -t site-to-site", tc.args[0], tc.args[0])
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", tc.args, r.code, r.stderr, want)
		}
		if tc.args[0] != "deploy" && !strings.Contains(r.stderr, "(or --name site-to-site for a deployed lab)") {
			t.Errorf("%v: stderr %q does not mention --name", tc.args, r.stderr)
		}
	}
}

func TestNotRootGivesOneClearSentence(t *testing.T) {
	testenv.NeedRoot(t) // to become someone else
	lab := writeLab(t, "notroot", smallLab)
	if err := os.Chmod(filepath.Dir(lab), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, verb := range [][]string{{"deploy", "-t", lab}, {"destroy", "--all"}, {"ping", "-t", lab, "a", "b"}} {
		cmd := exec.Command(binary, verb...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%v as nobody succeeded", verb)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "needs root") || !strings.Contains(lines[0], "sudo") {
			t.Errorf("%v as nobody printed:\n%s", verb, out)
		}
	}
}

// The full life of a lab through the CLI, ending with the lab process killed
// and `destroy --all` run from a new process.
func TestDeployUseKillAndDestroyAll(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.ExclusiveLabs(t)
	before := netenv.TakeHostSnapshot(t)
	name := fmt.Sprintf("cli%d", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })

	r := run(t, "deploy", "-t", lab)
	if r.code != 0 || !strings.Contains(r.stdout, "lab "+name+" deployed: 5 nodes, 2 links, 1 LANs") {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "deploy", "-t", lab); r.code == 0 || !strings.Contains(r.stderr, "already deployed") {
		t.Fatalf("second deploy: %+v", r)
	}
	if r := run(t, "ping", "-t", lab, "a", "c", "-c", "2", "-i", "50ms"); r.code != 0 || !strings.Contains(r.stdout, "2 packets transmitted, 2 received, 0% packet loss") || !strings.Contains(r.stdout, "ttl=62") {
		t.Fatalf("ping a → c: %+v", r)
	}
	if r := run(t, "ping", "-t", lab, "a", "10.0.99.1", "-c", "1", "-W", "200ms"); r.code != 1 {
		t.Fatalf("ping to nowhere exited %d, want 1: %+v", r.code, r)
	}
	if r := run(t, "exec", "--name", name, "b", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Fatalf("exec exit code %d, want 7", r.code)
	}
	if r := run(t, "exec", "-t", lab, "b", "--", "cat", "/proc/net/dev"); r.code != 0 || !strings.Contains(r.stdout, "eth0") {
		t.Fatalf("exec did not run inside b's namespace: %+v", r)
	}
	if r := run(t, "traffic", "-t", lab, "a", "10.0.2.11", "--proto", "tcp", "--bytes", "20mb"); r.code != 0 || !strings.Contains(r.stdout, "checksums match") {
		t.Fatalf("tcp traffic: %+v", r)
	}
	if r := run(t, "traffic", "-t", lab, "a", "b", "--count", "2000", "--rate", "50mbit", "--json"); r.code != 0 {
		t.Fatalf("udp traffic: %+v", r)
	} else {
		var res labrun.TrafficResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Sent != 2000 || res.Received != 2000 || res.Lost != 0 {
			t.Fatalf("udp traffic result %+v (%v)", res, err)
		}
	}
	r = run(t, "inspect", "--name", name, "--json")
	var info labrun.LabInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != 0 {
		t.Fatalf("inspect --json: %v %+v", err, r)
	}
	if info.PID == 0 || len(info.Nodes) != 5 || info.Status != "up" {
		t.Fatalf("inspect: %+v", info)
	}
	for _, n := range info.Nodes {
		if n.Name == "b" && (len(n.Interfaces) < 2 || n.Interfaces[1].Addrs[0] != "10.0.2.10/24" || !n.Interfaces[1].Up) {
			t.Errorf("inspect of b: %+v", n)
		}
	}
	if r := run(t, "inspect", "-t", lab); !strings.Contains(r.stdout, "ipseclab-"+name+".r2") {
		t.Errorf("inspect table lacks r2's namespace:\n%s", r.stdout)
	}

	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 6 {
		t.Fatalf("killing the lab process should leave its namespaces for destroy to find; found %v", left)
	}
	if r := run(t, "destroy", "--all"); r.code != 0 || !strings.Contains(r.stdout, "destroyed lab "+name) {
		t.Fatalf("destroy --all: %+v", r)
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("namespaces left: %v", left)
	}
	if _, err := os.Stat(labrun.StateDir(name)); !os.IsNotExist(err) {
		t.Fatalf("state directory left: %v", err)
	}
	if diff := before.Diff(netenv.TakeHostSnapshot(t)); diff != "" {
		t.Fatalf("host namespace changed:\n%s", diff)
	}
}

// destroy -t asks a healthy lab process to shut down; it exits cleanly.
func TestDestroyStopsTheLabProcess(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-b", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	st, err := labrun.ReadState(name)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, "destroy", "-t", lab); r.code != 0 {
		t.Fatalf("destroy: %+v", r)
	}
	if st.LabProcessAlive() {
		t.Fatalf("lab process %d still running after destroy", st.PID)
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("namespaces left: %v", left)
	}
	if r := run(t, "destroy", "-t", lab); r.code == 0 || !strings.Contains(r.stderr, "not deployed") {
		t.Fatalf("destroying twice: %+v", r)
	}
}

func TestGraphAndSchemaAndLabs(t *testing.T) {
	lab := writeLab(t, "g", smallLab)
	if r := run(t, "graph", "-t", lab, "--format", "mermaid"); r.code != 0 || !strings.Contains(r.stdout, "flowchart LR") {
		t.Fatalf("graph: %+v", r)
	}
	r := run(t, "schema")
	var s map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s["properties"] == nil {
		t.Fatalf("schema is not JSON Schema: %v", err)
	}
	if r := run(t, "labs"); r.code != 0 || !strings.Contains(r.stdout, "site-to-site (default)") || !strings.Contains(r.stdout, "Troubleshooting exercises") {
		t.Fatalf("labs: %+v", r)
	}
	if r := run(t, "labs", "--lesson", "wrong-psk"); r.code != 0 || !strings.Contains(r.stdout, "## Questions") || strings.Contains(r.stdout, "## Answers") {
		t.Fatalf("labs --lesson shows the answers, or no questions: %+v", r)
	}
	if r := run(t, "labs", "--lesson", "wrong-psk", "--answers"); r.code != 0 || !strings.Contains(r.stdout, "## Answers") {
		t.Fatalf("labs --lesson --answers: %+v", r)
	}
	if r := run(t, "labs", "--answers"); r.code == 0 || !strings.Contains(r.stderr, "--answers goes with --lesson") {
		t.Fatalf("labs --answers alone: %+v", r)
	}
}

func TestRunExitCodeFollowsExpectationsAndNamesTheFailingLine(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-run", os.Getpid())
	lab := writeLab(t, name, smallLab+`script:
  - ping: {from: a, to: 10.0.2.10, count: 2, interval: 50ms}
  - expect: {event: ping-result, node: a, within: 2s}
  - expect: {ping: {from: a, to: 10.0.99.9, count: 1, timeout: 200ms}, success: 100%}
`)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	r := run(t, "run", lab)
	if r.code != 1 {
		t.Fatalf("run with a failing expectation exited %d, want 1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "✘ FAILED  expect ping a → 10.0.99.9 succeeds ≥ 100%  ("+lab+":21)") {
		t.Errorf("summary does not name the failing expectation and its line:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "✔ passed  expect ping-result on a within 2s  ("+lab+":20)") {
		t.Errorf("summary lacks the passing expectation:\n%s", r.stdout)
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("run left namespaces: %v", left)
	}

	// Without the failing expectation the run passes, and --json is JSON lines
	// carrying each event's step.
	ok := writeLab(t, name, smallLab+`script:
  - ping: {from: a, to: 10.0.2.10, count: 1}
  - expect: {event: ping-result, within: 2s}
`)
	r = run(t, "run", ok, "--json")
	if r.code != 0 {
		t.Fatalf("passing run exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if _, ok := e["step"]; !ok {
			t.Fatalf("event without its lifecycle step: %q", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], `"kind":"script-finished"`) {
		t.Errorf("last JSON line is not script-finished: %s", lines[len(lines)-1])
	}
}

const natLab = `topology:
  nodes:
    laptop:   {kind: host, gateway: 192.168.1.1}
    home-nat: {kind: nat, gateway: 198.51.100.1, nat: {ports: random, udp-timeout: 30s}}
    server:   {kind: host, gateway: 198.51.100.2}
  links:
    - endpoints: [laptop:eth0, home-nat:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [home-nat:eth1, server:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
script:
  - traffic: {from: laptop, to: 198.51.100.1, count: 100, port: 4500}
  - expect: {event: nat-mapping-new, node: home-nat, within: 3s}
`

func TestNATBoxInALab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-nat", os.Getpid())
	lab := writeLab(t, name, natLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "traffic", "-t", lab, "laptop", "server", "--count", "50", "--json"); r.code != 0 {
		t.Fatalf("traffic through the NAT: %+v", r)
	}
	r := run(t, "nat", "show", "-t", lab, "home-nat", "--json")
	var ms []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || r.code != 0 {
		t.Fatalf("nat show: %v %+v", err, r)
	}
	found := false
	for _, m := range ms {
		if m["proto"] == "udp" && strings.HasPrefix(m["inside"].(string), "192.168.1.10:") && strings.HasPrefix(m["outside"].(string), "198.51.100.2:") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no mapping 192.168.1.10 → 198.51.100.2 in %v", ms)
	}
	if r := run(t, "nat", "flush", "-t", lab, "home-nat"); r.code != 0 || !strings.Contains(r.stdout, "flushed") {
		t.Fatalf("nat flush: %+v", r)
	}
	if r := run(t, "nat", "show", "-t", lab, "home-nat"); !strings.Contains(r.stdout, "no mappings") {
		t.Fatalf("mappings left after flush:\n%s", r.stdout)
	}
	if r := run(t, "nat", "show", "-t", lab, "laptop"); r.code == 0 || !strings.Contains(r.stderr, "not a NAT node") {
		t.Fatalf("nat show on a host: %+v", r)
	}
}

var swLab = twoSites("sw-a", "strongswan", "sw-b", "strongswan", `ipsec:
  office:
    initiator: sw-a
    responder: sw-b
    auth: {secret: lab-only-secret}
    ike: {proposals: [aes128-sha256-modp2048]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128gcm16], pfs: modp2048, start: none}
`)

// A strongswan node kind runs charon from the lab's own ipsec block; the
// tunnel and sas verbs drive and show it like ipseclab's own stack.
func TestStrongSwanNodesThroughTheCLI(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-sw", os.Getpid())
	lab := writeLab(t, name, swLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "tunnel", "up", "-t", lab, "office"); r.code != 0 {
		t.Fatalf("tunnel up: %+v", r)
	}
	var sas []labrun.SAInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := run(t, "sas", "-t", lab, "--json")
		sas = nil
		_ = json.Unmarshal([]byte(r.stdout), &sas)
		esp := 0
		for _, s := range sas {
			if s.Type == "esp" && s.State == "INSTALLED" {
				esp++
			}
		}
		if esp == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var a, b *labrun.SAInfo
	for i := range sas {
		if sas[i].Type == "esp" && sas[i].Node == "sw-a" {
			a = &sas[i]
		}
		if sas[i].Type == "esp" && sas[i].Node == "sw-b" {
			b = &sas[i]
		}
	}
	if a == nil || b == nil || a.SPIIn != b.SPIOut || a.SPIOut != b.SPIIn || !a.Encap {
		t.Fatalf("IPsec SAs of both sides do not pair up: %+v", sas)
	}
	// kernel-libipsec's ESP travels in UDP 4500: sas says where it goes.
	if !strings.HasSuffix(a.Local, ":4500") || !strings.HasSuffix(a.Remote, ":4500") {
		t.Errorf("sw-a's ESP SA in UDP shows %s → %s, want the 4500 ports", a.Local, a.Remote)
	}
	if r := run(t, "ping", "-t", lab, "alice", "bob", "-c", "3", "-i", "100ms"); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
		t.Fatalf("ping through the strongSwan tunnel: %+v", r)
	}
	// charon counts its IKE SAs and no drops, and stats says so.
	if st, n := statsOf(t, "sw-a", "-t", lab); n.Impl != "strongswan" || st["ike.ike_sas"] != 1 || !strings.Contains(n.Note, "dropped packets") {
		t.Errorf("stats of a strongswan node: %+v", n)
	}
	if r := run(t, "tunnel", "down", "-t", lab, "office", "--node", "sw-b"); r.code != 0 {
		t.Fatalf("tunnel down: %+v", r)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		r := run(t, "sas", "-t", lab)
		if strings.Contains(r.stdout, "no SAs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SAs left after the responder's Delete:\n%s", r.stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// daemonPair starts `ipseclab daemon` in two namespaces of its own, joined
// by a veth: a initiates connection "hosts" (transport mode, its child's
// start action as given), b responds. It returns a's namespace and both
// control sockets.
func daemonPair(t *testing.T, prefix, childStart string) (nsA, sockA, sockB string) {
	t.Helper()
	testenv.NeedRoot(t)
	nsenter := testenv.NeedCommand(t, "nsenter")
	nsA, hA := netenv.Netns(t, prefix+"-a")
	nsB, hB := netenv.Netns(t, prefix+"-b")
	netenv.VethPair(t, hA, hB, "192.0.2.1/24", "192.0.2.2/24")
	dir := t.TempDir()
	conf := func(side, role, local, remote string) string {
		p := filepath.Join(dir, side+".yaml")
		body := fmt.Sprintf(`node: %s
socket: %s
connections:
  hosts:
    role: %s
    local: {address: %s}
    remote: {address: %s}
    auth: {secret: daemon-secret}
    ike: {proposals: [aes128-sha256-curve25519]}
    child: {mode: transport, esp: [aes128gcm16], start: %s}
`, side, filepath.Join(dir, side+".sock"), role, local, remote, childStart)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	start := func(ns, file string) {
		cmd := exec.Command(nsenter, "--net="+labrun.NetnsPath(ns), binary, "daemon", "--config", file, "--json")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("daemon in %s:\n%s", ns, out.String())
			}
		})
	}
	sockA, sockB = filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	// The responder first, so that the initiator's first message finds it.
	start(nsB, conf("b", "responder", "192.0.2.2", "192.0.2.1"))
	waitForSocket(t, sockB)
	start(nsA, conf("a", "initiator", "192.0.2.1", "192.0.2.2"))
	waitForSocket(t, sockA)
	return nsA, sockA, sockB
}

func waitForSocket(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(s); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon socket %s never appeared", s)
		}
	}
}

// A daemon honours `start: start` as a lab does: the initiator negotiates as
// soon as it runs, without `tunnel up`.
func TestDaemonStartsStartConnections(t *testing.T) {
	_, sockA, sockB := daemonPair(t, "daemon-start", "start")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var a, b []labrun.SAInfo
		_ = json.Unmarshal([]byte(run(t, "sas", "--socket", sockA, "--json").stdout), &a)
		_ = json.Unmarshal([]byte(run(t, "sas", "--socket", sockB, "--json").stdout), &b)
		esp := 0
		for _, s := range append(a, b...) {
			if s.Type == "esp" {
				esp++
			}
		}
		if esp == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("start: start negotiated nothing by itself:\na: %+v\nb: %+v", a, b)
		}
	}
}

// The stack runs on its own in namespaces ipseclab did not create, and
// answers sas and tunnel on its control socket.
func TestDaemonOutsideALab(t *testing.T) {
	nsA, sockA, sockB := daemonPair(t, "daemon", "none")
	if r := run(t, "tunnel", "up", "--socket", sockA, "hosts"); r.code != 0 {
		t.Fatalf("tunnel up: %+v", r)
	}
	res, err := labrun.Ping(context.Background(), labrun.NetnsPath(nsA), netip.MustParseAddr("192.0.2.2"), labrun.PingOptions{Count: 3, Interval: 50 * time.Millisecond}, nil)
	if err != nil || res.Received != 3 {
		t.Fatalf("ping through the transport-mode SAs: %v %s", err, res.Summary())
	}
	var a, b []labrun.SAInfo
	_ = json.Unmarshal([]byte(run(t, "sas", "--socket", sockA, "--json").stdout), &a)
	_ = json.Unmarshal([]byte(run(t, "sas", "--socket", sockB, "--json").stdout), &b)
	var espA, espB *labrun.SAInfo
	for i := range a {
		if a[i].Type == "esp" {
			espA = &a[i]
		}
	}
	for i := range b {
		if b[i].Type == "esp" {
			espB = &b[i]
		}
	}
	if espA == nil || espB == nil || espA.SPIIn != espB.SPIOut || espA.Mode != "transport" || espA.PacketsOut < 3 || espB.PacketsIn < 3 {
		t.Fatalf("SAs do not pair up or carried nothing:\na: %+v\nb: %+v", a, b)
	}
	// Transport-mode aes128gcm16 adds ESP header 8, IV 8, padding up to 3,
	// trailer 2 and ICV 16 to a packet on a 1500-byte path.
	if want := 1500 - 37; espA.MTU != want {
		t.Errorf("sas: inner MTU %d, want %d", espA.MTU, want)
	}
	if r := run(t, "sas", "--socket", sockA); !strings.Contains(r.stdout, "MTU") || !strings.Contains(r.stdout, " 1463 ") {
		t.Errorf("sas table without the inner MTU:\n%s", r.stdout)
	}
	// stats reaches a daemon as sas does.
	if st, n := statsOf(t, "b", "--socket", sockB); n.Impl != "ipseclab" || st["ike.received"] < 3 || st["ike.malformed"] != 0 {
		t.Errorf("stats of the responder daemon: %+v", n)
	}
	if r := run(t, "tunnel", "down", "--socket", sockB, "hosts"); r.code != 0 {
		t.Fatalf("tunnel down from the responder: %+v", r)
	}
}

// CI runs every shipped lab and requires exit 0: each lab's expectations
// describe what it teaches, so a regression anywhere in the stack shows here.
// Each run's event stream must be in causal order (causal_test.go), and the
// timeline drawn from it must show every line the lab's lesson points at
// (lesson-lines.txt in the lab's directory). IPSECLAB_LAB_RUNS=20 runs each
// lab that many times in a row (.ci/soak).
func TestEveryShippedLabPasses(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	list, err := labs.List()
	if err != nil {
		t.Fatal(err)
	}
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("IPSECLAB_LAB_RUNS")); err == nil && n > 0 {
		runs = n
	}
	for _, l := range list {
		t.Run(l.Name, func(t *testing.T) {
			lab, _, err := labs.Load(l.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range lab.Topology.Nodes {
				if n.Kind == topology.KindStrongSwan {
					testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
				}
			}
			lines, err := labs.LessonLines(l.Name)
			if err != nil || len(lines) == 0 {
				t.Fatalf("lab %s has no list of the lines its lesson points at (labs/%s/%s): %v", l.Name, l.Name, labs.LessonLinesFile, err)
			}
			t.Cleanup(func() { _ = labrun.DestroyLab(l.Name, 10*time.Second) })
			for i := 1; i <= runs; i++ {
				r := run(t, "run", l.Name, "--json")
				evs := parseJSONLines(t, r.stdout)
				if r.code != 0 {
					// The run's last events, terse and with the debug ones, so
					// that a failure seen once in CI can be explained from its log.
					t.Fatalf("run %d of %d: ipseclab run %s exited %d:\n%s\n%s\nthe run's last events:\n%s", i, runs, l.Name, r.code,
						failedExpectations(evs), r.stderr, timelineTail(lab, evs, 80))
				}
				if len(evs) == 0 || evs[len(evs)-1].Kind != events.ScriptFinished {
					t.Fatalf("run %d of %d: the event stream does not end with the script's end:\n%s", i, runs, r.stderr)
				}
				if v := causalViolations(evs); len(v) > 0 {
					t.Errorf("run %d of %d: %d causal-order violations:\n  %s", i, runs, len(v), strings.Join(v, "\n  "))
				}
				text := renderTimeline(lab, evs)
				for _, want := range lines {
					if !strings.Contains(text, want) {
						t.Errorf("run %d of %d: the timeline lacks %q, which the lesson points at:\n%s", i, runs, want, text)
					}
				}
				if t.Failed() {
					return
				}
			}
		})
	}
}

// renderTimeline draws a recorded run as `ipseclab run` draws it by default.
func renderTimeline(lab *topology.Lab, evs []events.Event) string {
	return drawTimeline(lab, evs, timeline.Options{Explain: true})
}

// drawTimeline draws the events with the lab's names, as run does.
func drawTimeline(lab *topology.Lab, evs []events.Event, opt timeline.Options) string {
	var b bytes.Buffer
	opt.Names, opt.Silent = addressNames(lab), silentNodes(lab)
	tl := timeline.New(&b, opt)
	for _, e := range evs {
		tl.Write(e)
	}
	tl.Flush()
	return b.String()
}

// timelineTail draws the events as `run --explain=false --verbose` would
// and keeps the last n lines.
func timelineTail(lab *topology.Lab, evs []events.Event, n int) string {
	lines := strings.Split(strings.TrimRight(drawTimeline(lab, evs, timeline.Options{Verbose: true}), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failedExpectations lists what the script's end reported as failed.
func failedExpectations(evs []events.Event) string {
	var out []string
	for _, e := range evs {
		if e.Kind == events.ExpectFailed || (e.Kind == events.ScriptStep && e.Level == events.Error) {
			out = append(out, e.Message)
		}
	}
	return strings.Join(out, "\n")
}

// The default lab's timeline shows the five steps of a tunnel's life, in order.
func TestDefaultLabTimelineHasTheFiveStepsInOrder(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	t.Cleanup(func() { _ = labrun.DestroyLab(labs.Default, 10*time.Second) })
	r := run(t, "run")
	if r.code != 0 {
		t.Fatalf("ipseclab run exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	last := -1
	for _, h := range []string{"Step 1 · Initiation", "Step 2 · IKE Phase 1", "Step 3 · IKE Phase 2", "Step 4 · Data transfer", "Step 5 · Termination"} {
		i := strings.Index(r.stdout, "━━ "+h)
		if i < 0 || i < last {
			t.Fatalf("heading %q missing or out of order:\n%s", h, r.stdout)
		}
		last = i
	}
	for _, want := range []string{"Main Mode 3/6: KE, NONCE", "Diffie-Hellman public values and nonces; identities still hidden", "Quick Mode 1/3", "ESP 198.51.100.2 → 203.0.113.2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "\033[") {
		t.Error("colours written to a pipe; they belong on a terminal only")
	}
}

// twoSites is the topology most tests use: alice — A — isp — B — bob, with
// the kinds of the two gateways and their names given, followed by the rest
// of the lab (ipsec block, script).
func twoSites(nameA, kindA, nameB, kindB, rest string) string {
	return fmt.Sprintf(`topology:
  nodes:
    alice: {kind: host, gateway: 10.1.0.1}
    %[1]s: {kind: %[2]s, gateway: 198.51.100.1}
    isp:   {kind: router}
    %[3]s: {kind: %[4]s, gateway: 203.0.113.1}
    bob:   {kind: host, gateway: 10.2.0.1}
  links:
    - endpoints: [alice:eth0, %[1]s:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [%[1]s:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, %[3]s:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [%[3]s:eth1, bob:eth0]
      addresses: [10.2.0.1/24, 10.2.0.10/24]
%[5]s`, nameA, kindA, nameB, kindB, rest)
}

// interopLab mixes ipseclab's gateway and strongSwan's charon in one lab, the
// connection written once in the lab's ipsec block.
func interopLab(initiator, responder, mode, ike, esp string) string {
	return interopLabAuth(initiator, responder, mode, ike, esp, "auth: {secret: interop-secret}")
}

// interopLabAuth is interopLab with the connection's auth lines given.
func interopLabAuth(initiator, responder, mode, ike, esp, auth string) string {
	return twoSites("gw", "gateway", "sw", "strongswan", fmt.Sprintf(`ipsec:
  mixed:
    initiator: %s
    responder: %s
    %s
    ike: {mode: %s, proposals: [%s]}
    child: {local-ts: %s, remote-ts: %s, esp: [%s], start: none}
`, initiator, responder, auth, mode, ike, map[bool]string{true: "10.1.0.0/24", false: "10.2.0.0/24"}[initiator == "gw"],
		map[bool]string{true: "10.2.0.0/24", false: "10.1.0.0/24"}[initiator == "gw"], esp))
}

// Interop through the lab's own files: ipseclab ⇄ strongSwan in both
// directions, Main and Aggressive Mode, a MODP and an ECP suite with PFS (and
// AES-CBC with HMAC-SHA1 in Main Mode); both sides list the same SAs, traffic
// passes, and a Delete from the responder removes the SAs on both.
func TestInteropWithStrongSwanThroughLabFiles(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	suites := []struct{ name, ike, esp, espSwan string }{
		{"modp", "aes128-sha256-modp2048", "aes128-sha256-modp2048", "AES_CBC-128/HMAC_SHA2_256_128/MODP_2048"},
		{"ecp", "aes256-sha384-ecp384", "aes128gcm16-ecp256", "AES_GCM_16-128/ECP_256"},
		// HMAC-SHA1, whose ICVs the data plane computes two at a time, as it
		// does HMAC-SHA256's above: the TCP transfer's batches pair them.
		{"sha1", "aes128-sha256-modp2048", "aes128-sha1", "AES_CBC-128/HMAC_SHA1_96"},
	}
	for _, dir := range [][2]string{{"gw", "sw"}, {"sw", "gw"}} {
		for _, mode := range []string{"main", "aggressive"} {
			for _, s := range suites {
				if s.name == "sha1" && mode != "main" {
					continue // the IKE side is the modp suite's, already run in both modes
				}
				t.Run(fmt.Sprintf("%s-to-%s/%s/%s", dir[0], dir[1], mode, s.name), func(t *testing.T) {
					name := fmt.Sprintf("iop%d", os.Getpid()%100000)
					lab := writeLab(t, name, interopLab(dir[0], dir[1], mode, s.ike, s.esp))
					t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
					if r := run(t, "deploy", "-t", lab); r.code != 0 {
						t.Fatalf("deploy: %+v", r)
					}
					if r := run(t, "tunnel", "up", "-t", lab, "mixed"); r.code != 0 {
						t.Fatalf("tunnel up from %s: %+v", dir[0], r)
					}
					ours, theirs := waitForESP(t, lab)
					if ours.SPIIn != theirs.SPIOut || ours.SPIOut != theirs.SPIIn {
						t.Fatalf("SPIs do not cross: ipseclab %+v, strongSwan %+v", ours, theirs)
					}
					if !strings.HasPrefix(ours.Proposal, strings.TrimSuffix(s.esp, "-"+strings.Split(s.esp, "-")[len(strings.Split(s.esp, "-"))-1])) || theirs.Proposal != s.espSwan {
						t.Errorf("algorithms differ: ipseclab %q, strongSwan %q (want %q)", ours.Proposal, theirs.Proposal, s.espSwan)
					}
					if !ours.Encap || !theirs.Encap {
						t.Errorf("kernel-libipsec forces UDP encapsulation; ours=%v theirs=%v", ours.Encap, theirs.Encap)
					}
					if r := run(t, "ping", "-t", lab, "alice", "bob", "-c", "3", "-i", "100ms"); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
						// The first packet may race the responder's last Quick Mode message; one retry.
						if r2 := run(t, "ping", "-t", lab, "alice", "bob", "-c", "3", "-i", "100ms"); r2.code != 0 || !strings.Contains(r2.stdout, " 0% packet loss") {
							t.Fatalf("ping through the mixed tunnel:\n%s\n%s", r.stdout, r2.stdout)
						}
					}
					// A TCP transfer through our data plane and libipsec, checksummed at both ends.
					if r := run(t, "traffic", "-t", lab, "alice", "bob", "--proto", "tcp", "--bytes", "4mb"); r.code != 0 || !strings.Contains(r.stdout, "checksums match") {
						t.Fatalf("tcp through the mixed tunnel: %+v", r)
					}
					if r := run(t, "tunnel", "down", "-t", lab, "mixed", "--node", dir[1]); r.code != 0 {
						t.Fatalf("tunnel down from the responder %s: %+v", dir[1], r)
					}
					deadline := time.Now().Add(5 * time.Second)
					for {
						r := run(t, "sas", "-t", lab)
						if strings.Contains(r.stdout, "no SAs") {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("SAs left after the Delete from %s:\n%s", dir[1], r.stdout)
						}
						time.Sleep(200 * time.Millisecond)
					}
				})
			}
		}
	}
}

// Interop with certificates from the lab PKI: ipseclab ⇄ strongSwan in both
// directions, Main and Aggressive Mode with RSA signatures, Main Mode with
// ECDSA P-256, P-384 and P-521 (RFC 4754's three methods); both sides list the same SAs, traffic passes
// (a ping and a checksummed TCP transfer), and ipseclab reports the
// certificate that authenticated charon.
func TestInteropWithStrongSwanCertificates(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	for _, dir := range [][2]string{{"gw", "sw"}, {"sw", "gw"}} {
		for _, c := range []struct{ mode, keyType, key string }{
			{"main", "rsa-2048", "RSA-2048"},
			{"aggressive", "rsa-2048", "RSA-2048"},
			{"main", "ecdsa-p256", "ECDSA P-256"},
			// HASH_I/HASH_R with HMAC-SHA-384, the curve's, under a SHA-256 suite.
			{"main", "ecdsa-p384", "ECDSA P-384"},
			{"main", "ecdsa-p521", "ECDSA P-521"},
		} {
			t.Run(fmt.Sprintf("%s-to-%s/%s/%s", dir[0], dir[1], c.mode, c.keyType), func(t *testing.T) {
				name := fmt.Sprintf("iopc%d", os.Getpid()%100000)
				auth := fmt.Sprintf("auth: {method: pubkey}\n    key-type: %s", c.keyType)
				lab := writeLab(t, name, interopLabAuth(dir[0], dir[1], c.mode, "aes128-sha256-modp2048", "aes128gcm16", auth))
				t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
				if r := run(t, "deploy", "-t", lab); r.code != 0 {
					t.Fatalf("deploy: %+v", r)
				}
				if r := run(t, "tunnel", "up", "-t", lab, "mixed"); r.code != 0 {
					t.Fatalf("tunnel up from %s: %+v", dir[0], r)
				}
				ours, theirs := waitForESP(t, lab)
				if ours.SPIIn != theirs.SPIOut || ours.SPIOut != theirs.SPIIn {
					t.Fatalf("SPIs do not cross: ipseclab %+v, strongSwan %+v", ours, theirs)
				}
				if r := run(t, "ping", "-t", lab, "alice", "bob", "-c", "3", "-i", "100ms"); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
					if r2 := run(t, "ping", "-t", lab, "alice", "bob", "-c", "3", "-i", "100ms"); r2.code != 0 || !strings.Contains(r2.stdout, " 0% packet loss") {
						t.Fatalf("ping through the mixed tunnel:\n%s\n%s", r.stdout, r2.stdout)
					}
				}
				if r := run(t, "traffic", "-t", lab, "alice", "bob", "--proto", "tcp", "--bytes", "1mb"); r.code != 0 || !strings.Contains(r.stdout, "checksums match") {
					t.Fatalf("tcp through the mixed tunnel: %+v", r)
				}
				// ipseclab names the certificate it checked: charon's, from the lab CA.
				events, _ := os.ReadFile(filepath.Join(labrun.StateDir(name), "events.jsonl"))
				found := false
				for _, line := range strings.Split(string(events), "\n") {
					if strings.Contains(line, `"peer-certificate"`) && strings.Contains(line, "CN=sw") && strings.Contains(line, c.key+" key: trusted") {
						found = true
					}
				}
				if !found {
					t.Errorf("no peer-certificate event for charon's %s certificate in:\n%s", c.key, events)
				}
			})
		}
	}
}

// waitForESP returns the installed ESP SAs of both implementations.
func waitForESP(t *testing.T, lab string) (ours, theirs labrun.SAInfo) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var sas []labrun.SAInfo
		_ = json.Unmarshal([]byte(run(t, "sas", "-t", lab, "--json").stdout), &sas)
		var o, th *labrun.SAInfo
		for i := range sas {
			if sas[i].Type != "esp" {
				continue
			}
			if sas[i].Impl == "ipseclab" {
				o = &sas[i]
			} else if sas[i].State == "INSTALLED" {
				th = &sas[i]
			}
		}
		if o != nil && th != nil {
			return *o, *th
		}
		if time.Now().After(deadline) {
			t.Fatalf("both sides did not list an ESP SA: %+v", sas)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run --capture writes a pcap per link and Wireshark's key tables; tshark,
// an independent dissector, decrypts the IKE messages after Main Mode 4 and
// the ESP payloads with them, and finds no malformed frame. With
// certificates (ours on both sides, and ours against charon) it shows the
// CERTREQ in the clear and the CERT and SIG of the encrypted MM5 and MM6.
func TestCaptureDecryptsWithTshark(t *testing.T) {
	testenv.NeedRoot(t)
	tshark := testenv.NeedCommand(t, "tshark")
	netenv.SharedLabs(t)
	// The interop configurations of TestInteropWithStrongSwanCertificates
	// that the shipped labs do not cover: Aggressive Mode with RSA, each way.
	// Both sides' phase2-up before the ping: charon installs its SAs when
	// the last Quick Mode message reaches it.
	interopScript := `script:
  - tunnel-up: {connection: mixed}
  - expect: {event: phase2-up, connection: mixed, node: gw, within: 10s}
  - expect: {event: phase2-up, connection: mixed, node: sw, within: 10s}
  - expect: {ping: {from: alice, to: 10.2.0.10, count: 3, interval: 100ms}, success: 100%}
`
	rsa := "auth: {method: pubkey}\n    key-type: rsa-2048"
	swInitiates := strings.Replace(interopScript, "connection: mixed}", "connection: mixed, node: sw}", 1)
	for _, c := range []struct {
		lab, link string
		src       string   // the lab file, when not the shipped lab's
		payloads  []string // ISAKMP payload types the capture must hold, decrypted
		esp       bool     // check the ESP packets decrypt (ours on both sides)
		encrypted int      // at least this many encrypted ISAKMP messages
	}{
		// Main Mode 5 and 6, Quick Mode 1 to 3, the Deletes.
		{"site-to-site", "gw-a:eth0--isp:eth0", "", []string{"8"}, true, 7},
		{"certificates", "gw-a:eth0--isp:eth0", "", []string{"6", "7", "9"}, true, 7},
		{"mixed-pki", "ours:eth0--isp:eth0", "", []string{"6", "7", "9"}, false, 6},
		// Aggressive Mode 3, Quick Mode 1 to 3.
		{"gw-to-sw-aggressive-rsa", "gw:eth0--isp:eth0", "name: gw-to-sw-aggressive-rsa\n" +
			interopLabAuth("gw", "sw", "aggressive", "aes128-sha256-modp2048", "aes128gcm16", rsa) + interopScript, []string{"6", "7", "9"}, false, 4},
		{"sw-to-gw-aggressive-rsa", "gw:eth0--isp:eth0", "name: sw-to-gw-aggressive-rsa\n" +
			interopLabAuth("sw", "gw", "aggressive", "aes128-sha256-modp2048", "aes128gcm16", rsa) + strings.Replace(interopScript, "connection: mixed}", "connection: mixed, node: sw}", 1), []string{"6", "7", "9"}, false, 4},
		{"gw-to-sw-main-rsa", "gw:eth0--isp:eth0", "name: gw-to-sw-main-rsa\n" +
			interopLabAuth("gw", "sw", "main", "aes128-sha256-modp2048", "aes128gcm16", rsa) + interopScript, []string{"6", "7", "9"}, false, 5},
		{"sw-to-gw-main-rsa", "gw:eth0--isp:eth0", "name: sw-to-gw-main-rsa\n" +
			interopLabAuth("sw", "gw", "main", "aes128-sha256-modp2048", "aes128gcm16", rsa) + swInitiates, []string{"6", "7", "9"}, false, 5},
		{"sw-to-gw-main-ecdsa", "gw:eth0--isp:eth0", "name: sw-to-gw-main-ecdsa\n" +
			interopLabAuth("sw", "gw", "main", "aes128-sha256-modp2048", "aes128gcm16", "auth: {method: pubkey}\n    key-type: ecdsa-p256") + swInitiates, []string{"6", "7", "9"}, false, 5},
	} {
		t.Run(c.lab, func(t *testing.T) {
			src := []byte(c.src)
			if c.src == "" {
				var err error
				if src, err = fs.ReadFile(labs.FS(), c.lab+"/lab.yaml"); err != nil {
					t.Fatal(err)
				}
			}
			name := fmt.Sprintf("cap%d", os.Getpid())
			lab := filepath.Join(t.TempDir(), "lab.yaml")
			if err := os.WriteFile(lab, []byte(strings.Replace(string(src), "name: "+c.lab, "name: "+name, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
			dir := t.TempDir()
			if r := run(t, "run", lab, "--capture", dir); r.code != 0 {
				t.Fatalf("run --capture: %+v", r)
			}
			conf := t.TempDir()
			wsDir := filepath.Join(conf, "wireshark")
			if err := os.MkdirAll(wsDir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{labrun.ESPTableFile, labrun.IKEv1TableFile} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || len(b) == 0 {
					t.Fatalf("key table %s missing or empty: %v", f, err)
				}
				if err := os.WriteFile(filepath.Join(wsDir, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			pcap := filepath.Join(dir, labrun.CaptureFileName(c.link))
			cmd := exec.Command(tshark, "-n", "-r", pcap,
				"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
				"-T", "fields", "-E", "separator=;",
				"-e", "frame.number", "-e", "_ws.malformed", "-e", "isakmp.flag_e", "-e", "isakmp.typepayload",
				"-e", "esp.spi", "-e", "ip.src", "-e", "icmp.type", "-e", "isakmp.messageid", "-e", "isakmp.length", "-Y", "isakmp or esp")
			cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf, "HOME="+conf)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			encrypted, esp := 0, 0
			seen := map[string]bool{}
			frames := map[string]bool{} // a retransmission repeats an earlier message: sender, message ID, length
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Split(line, ";")
				if len(f) != 9 {
					t.Fatalf("tshark line %q", line)
				}
				frame, malformed, flagE, payloads, spi, ipSrc, icmpType := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
				key := ipSrc + ";" + f[7] + ";" + f[8]
				repeat := f[7] != "" && frames[key]
				frames[key] = true
				if repeat {
					// Wireshark decrypts a retransmitted encrypted message
					// with the IV chain its first copy moved on: garbage, a
					// limit of the dissector, not of the message.
					continue
				}
				if malformed != "" {
					t.Errorf("frame %s is malformed", frame)
				}
				for _, p := range strings.Split(payloads, ",") {
					seen[p] = true
				}
				switch {
				case spi != "":
					esp++
					// Decrypted, the ESP packet shows its inner IP header (a second
					// ip.src) and the ICMP inside.
					if c.esp && (strings.Count(ipSrc, ",") != 1 || icmpType == "") {
						t.Errorf("ESP frame %s not decrypted: ip.src %q, icmp.type %q", frame, ipSrc, icmpType)
					}
				case flagE == "1" || flagE == "True":
					encrypted++
					// Every encrypted IKEv1 message carries a HASH payload (type
					// 8), or in Main Mode 5/6 with certificates a SIG (9).
					if !strings.Contains(","+payloads+",", ",8,") && !strings.Contains(","+payloads+",", ",9,") {
						t.Errorf("encrypted ISAKMP frame %s not decrypted (payloads %q)", frame, payloads)
					}
				}
			}
			for _, p := range c.payloads {
				if !seen[p] {
					t.Errorf("no ISAKMP payload of type %s in the capture:\n%s", p, out)
				}
			}
			if encrypted < c.encrypted || (c.esp && esp < 16) {
				t.Errorf("%d encrypted ISAKMP frames and %d ESP frames; want at least %d and 16:\n%s", encrypted, esp, c.encrypted, out)
			}
		})
	}
}

// Host to host through two of ipseclab's gateways, keys from IKE: ESP and AH,
// tunnel and transport mode, each with a ping and a TCP transfer whose
// SHA-256 is compared at both ends.
func TestDataPlaneModesThroughGateways(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	for _, c := range []struct{ name, child, from, to string }{
		{"esp-tunnel", "{local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes256-sha256], mode: tunnel, start: trap}", "alice", "10.2.0.10"},
		{"ah-tunnel", "{local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, ah: [sha256], mode: tunnel, start: trap}", "alice", "10.2.0.10"},
		{"esp-transport", "{esp: [aes128gcm16], mode: transport, start: trap}", "gw-a", "203.0.113.2"},
		{"ah-transport", "{ah: [sha1], mode: transport, start: trap}", "gw-a", "203.0.113.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("dp%d", os.Getpid()%100000)
			lab := writeLab(t, name, twoSites("gw-a", "gateway", "gw-b", "gateway", fmt.Sprintf(`ipsec:
  c:
    initiator: gw-a
    responder: gw-b
    auth: {secret: s}
    child: %s
script:
  - ping: {from: %s, to: %s, count: 2, interval: 200ms}
  - expect: {event: phase2-up, node: gw-b, within: 5s}
  - expect: {ping: {from: %s, to: %s, count: 3, interval: 100ms}, success: 100%%}
  - expect: {traffic: {from: %s, to: %s, proto: tcp, bytes: 4mb}}
  - expect: {sa: {node: gw-b, connection: c}, counter: packets-in, min: 100}
  - expect: {sa: {node: gw-b, connection: c}, counter: integrity-failures, max: 0}
`, c.child, c.from, c.to, c.from, c.to, c.from, c.to)))
			t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
			r := run(t, "run", lab, "--explain=false")
			if r.code != 0 {
				t.Fatalf("%s: exit %d\n%s\n%s", c.name, r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "checksums match") {
				t.Fatalf("%s: no checksummed TCP transfer:\n%s", c.name, r.stdout)
			}
		})
	}
}

// SIGTERM to the lab process shuts the lab down cleanly: nothing is left.
func TestLabProcessShutsDownOnSIGTERM(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-term", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	st, err := labrun.ReadState(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.LabProcessAlive() {
		if time.Now().After(deadline) {
			t.Fatal("the lab process did not exit on SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("namespaces left after SIGTERM: %v", left)
	}
	if _, err := os.Stat(labrun.StateDir(name)); !os.IsNotExist(err) {
		t.Fatalf("state left after SIGTERM: %v", err)
	}
}

// A link captured with `-w -` streams pcap that tshark reads live; inspect
// shows the link's counters and its impairment.
func TestCaptureToStdoutAndLinkCounters(t *testing.T) {
	testenv.NeedRoot(t)
	tshark := testenv.NeedCommand(t, "tshark")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-cap", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "impair", "-t", lab, "r1:eth1", "--delay", "10ms", "--duplicate", "100%", "--from", "r1:eth1"); r.code != 0 {
		t.Fatalf("impair: %+v", r)
	}
	capture := exec.Command(binary, "capture", "-t", lab, "r1:eth1", "-w", "-", "--duration", "3s")
	reader := exec.Command(tshark, "-n", "-r", "-", "-T", "fields", "-e", "icmp.type", "-Y", "icmp")
	pipe, err := capture.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	reader.Stdin = pipe
	var out bytes.Buffer
	reader.Stdout = &out
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if r := run(t, "ping", "-t", lab, "a", "b", "-c", "3", "-i", "100ms"); r.code != 0 {
		t.Fatalf("ping: %+v", r)
	}
	_ = capture.Wait()
	if err := reader.Wait(); err != nil {
		t.Fatalf("tshark -r - failed on the live stream: %v", err)
	}
	// 3 requests, each duplicated on the way a → b, and 3 replies.
	if got := strings.Count(out.String(), "8\n"); got != 6 {
		t.Errorf("tshark saw %d echo requests on r1:eth1, want 6 (3 sent, each duplicated):\n%s", got, out.String())
	}
	r := run(t, "inspect", "--name", name, "--json")
	var info labrun.LabInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatal(err)
	}
	for _, l := range info.Links {
		if l.Name != "r1:eth1--r2:eth0" {
			continue
		}
		if l.Counters[0].Duplicated < 3 || !strings.Contains(l.Dirs[0], "duplicate 100%") || l.Dirs[1] != "" {
			t.Fatalf("link counters or settings wrong: %+v", l)
		}
		return
	}
	t.Fatalf("inspect lists no link r1:eth1--r2:eth0: %+v", info.Links)
}

// Deploying a large lab shows its progress; a bad NAT setting is reported at
// its place in the file, and nothing is created.
func TestDeployProgressAndNATValidation(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	var b strings.Builder
	b.WriteString("topology:\n  nodes:\n    hub: {kind: router}\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "    h%d: {kind: host}\n", i)
	}
	b.WriteString("  links:\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "    - endpoints: [hub:p%d, h%d:eth0]\n      addresses: [10.%d.0.1/24, 10.%d.0.2/24]\n", i, i, i, i)
	}
	name := fmt.Sprintf("cli%d-big", os.Getpid())
	lab := writeLab(t, name, b.String())
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "deploy", "-t", lab)
	if r.code != 0 || !strings.Contains(r.stderr, "deploying "+name+": ") {
		t.Fatalf("deploy of 31 nodes showed no progress: %+v", r)
	}

	bad := writeLab(t, "natbad", `topology:
  nodes:
    in:  {kind: host, gateway: 192.168.1.1}
    nat: {kind: nat, gateway: 198.51.100.1, nat: {outside: eth9, udp-timeout: soon, esp: maybe}}
    out: {kind: host}
  links:
    - endpoints: [in:eth0, nat:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [nat:eth1, out:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
`)
	r = run(t, "deploy", "-t", bad)
	if r.code != 2 {
		t.Fatalf("bad NAT settings: exit %d: %+v", r.code, r)
	}
	for _, want := range []string{":5:60: nat.outside", ":5:79: nat.udp-timeout", ":5:90: nat.esp"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix("natbad")); len(left) != 0 {
		t.Fatalf("a rejected lab created namespaces: %v", left)
	}
}

// `ipseclab run LAB | head` closes run's output early; the lab must still be
// destroyed when the script ends.
func TestRunDestroysTheLabWhenItsOutputCloses(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-pipe", os.Getpid())
	lab := writeLab(t, name, smallLab+`script:
  - ping: {from: a, to: 10.0.2.10, count: 5, interval: 100ms}
`)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	cmd := exec.Command(binary, "run", lab)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	out.Close() // like head after its first lines
	_ = cmd.Wait()
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("run left the lab up after its output closed: %v", left)
	}
}

// watch follows a deployed lab's events as they happen.
func TestWatchFollowsADeployedLab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-watch", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	watch := exec.Command(binary, "watch", "--name", name, "--json")
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if r := run(t, "impair", "-t", lab, "a:eth0", "--delay", "5ms"); r.code != 0 {
		t.Fatalf("impair: %+v", r)
	}
	dec := json.NewDecoder(out)
	for {
		var e events.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("watch stream ended before the impairment change: %v", err)
		}
		if e.Kind == events.LabDeployed {
			t.Fatal("watch replayed history without --all")
		}
		if e.Kind == events.LinkImpair && strings.Contains(e.Message, "delay 5ms") {
			return
		}
	}
}

// eachLogLine calls fn with each line of a lab's event log in its state
// directory dir, oldest first: the rotated file, then the current one.
func eachLogLine(dir string, fn func(line []byte)) {
	for _, f := range []string{"events.jsonl.1", "events.jsonl"} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			fn(sc.Bytes())
		}
		fh.Close()
	}
}

// deploy --keys makes the lab publish the keys it derives, as run --keys
// does; a plain deploy publishes none (a class's screen is not the place
// for them unless the teacher asks).
func TestDeployKeys(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	for _, withKeys := range []bool{true, false} {
		name := fmt.Sprintf("cli%d-keys%v", os.Getpid()%100000, withKeys)
		lab := writeLab(t, name, negotiationsLab("gateway", "aes128-sha256-curve25519", "aes128gcm16", 1))
		t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
		args := []string{"deploy", "-t", lab}
		if withKeys {
			args = append(args, "--keys")
		}
		if r := run(t, args...); r.code != 0 {
			t.Fatalf("deploy: %+v", r)
		}
		if r := run(t, "tunnel", "up", "-t", lab, "office"); r.code != 0 {
			t.Fatalf("tunnel up: %+v", r)
		}
		keys := 0
		eachLogLine(labrun.StateDir(name), func(line []byte) {
			if bytes.Contains(line, []byte(`"kind":"`+string(events.KeysDerived)+`"`)) {
				keys++
			}
		})
		// Phase 1's keys and each IPsec SA's, on both gateways.
		if withKeys && keys < 4 {
			t.Errorf("deploy --keys: %d key events in the log, want phase 1's and the SAs' on both sides", keys)
		}
		if !withKeys && keys != 0 {
			t.Errorf("deploy without --keys published %d key events", keys)
		}
		if err := labrun.DestroyLab(name, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
