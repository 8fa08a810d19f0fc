package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// roadWarriorsLab is N laptops (ipseclab's stacks) on one LAN with a
// gateway of the given kind: a group key, XAUTH and Mode Config, every
// laptop dialling in as soon as the lab is up.
func roadWarriorsLab(n int, gwKind string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology:\n  nodes:\n    gw: {kind: %s}\n    server: {kind: host, gateway: 10.1.0.1}\n", gwKind)
	for i := range n {
		fmt.Fprintf(&b, "    l%d: {kind: gateway}\n", i)
	}
	b.WriteString("  links:\n    - endpoints: [gw:eth1, server:eth0]\n      addresses: [10.1.0.1/24, 10.1.0.10/24]\n")
	b.WriteString("  lans:\n    - name: wan\n      members: [gw:eth0")
	for i := range n {
		fmt.Fprintf(&b, ", l%d:eth0", i)
	}
	b.WriteString("]\n      addresses: [10.100.0.1/16")
	for i := range n {
		fmt.Fprintf(&b, ", 10.100.%d.%d/16", 1+i/250, 1+i%250)
	}
	b.WriteString("]\nipsec:\n  rw:\n    responder:\n      node: gw\n      address: 10.100.0.1\n      xauth:\n        users:\n")
	for i := range n {
		fmt.Fprintf(&b, "          u%d: p%d\n", i, i)
	}
	b.WriteString("      pool: 10.9.0.0/22\n      split-include: [10.1.0.0/24]\n    initiators:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {node: l%d, id: \"keyid:staff\", xauth: {user: u%d, password: p%d}}\n", i, i, i)
	}
	b.WriteString("    auth: {method: xauth-psk, secret: group-secret}\n    ike: {mode: aggressive, proposals: [aes128-sha256-modp2048]}\n    child: {esp: [aes128gcm16]}\n")
	return b.String()
}

// roadWarriorsResult is one run: how long from the lab being up until the
// last laptop's IPsec SAs, and the memory of the lab process and charon.
type roadWarriorsResult struct {
	allUp     time.Duration
	labRSS    int64 // the lab process, every ipseclab stack in it
	charonRSS int64 // charon, when it is the gateway
}

func runRoadWarriors(tb testing.TB, n int, gwKind string) roadWarriorsResult {
	tb.Helper()
	name := fmt.Sprintf("rwb%d", os.Getpid()%100000)
	p := filepath.Join(tb.TempDir(), "lab.yaml")
	if err := os.WriteFile(p, []byte("name: "+name+"\n"+roadWarriorsLab(n, gwKind)), 0o644); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = labrun.DestroyLab(name, 30*time.Second) }()
	if r := run(tb, "deploy", "-t", p); r.code != 0 {
		tb.Fatalf("deploy: %+v", r)
	}
	dir := labrun.StateDir(name)
	var res roadWarriorsResult
	deadline := time.Now().Add(3 * time.Minute)
	for {
		deployed, last, up := roadWarriorsProgress(tb, dir)
		if up == n {
			res.allUp = last.Sub(deployed)
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d laptops up after 3 minutes", up, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	st, err := labrun.ReadState(name)
	if err != nil {
		tb.Fatal(err)
	}
	_, res.labRSS = procMemory(tb, st.PID)
	if gwKind == "strongswan" {
		_, res.charonRSS = procMemory(tb, charonIn(tb, filepath.Join(labrun.NetnsDir, labrun.NodeNetns(name, "gw"))))
	}
	return res
}

// charonIn finds the charon process whose network namespace is the one
// mounted at netnsPath.
func charonIn(tb testing.TB, netnsPath string) int {
	tb.Helper()
	want, err := os.Stat(netnsPath)
	if err != nil {
		tb.Fatal(err)
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ns, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && strings.HasSuffix(exe, "charon-systemd") && os.SameFile(ns, want) {
			return pid
		}
	}
	tb.Fatalf("no charon in %s", netnsPath)
	return 0
}

// roadWarriorsProgress reads the event log: when the lab was deployed, and
// how many laptops have their IPsec SAs, the last when.
func roadWarriorsProgress(tb testing.TB, dir string) (deployed, last time.Time, up int) {
	seen := map[string]bool{}
	eachLogLine(dir, func(line []byte) {
		var e struct {
			Node, Kind string
			Time       time.Time
		}
		if json.Unmarshal(line, &e) != nil {
			return
		}
		switch {
		case e.Kind == "lab-deployed":
			deployed = e.Time
		case e.Kind == "phase2-up" && strings.HasPrefix(e.Node, "l") && !seen[e.Node]:
			seen[e.Node] = true
			last = e.Time
		}
	})
	return deployed, last, len(seen)
}

// BenchmarkRoadWarriors: 200 laptops with XAUTH and Mode Config dial in to
// one gateway at once, ipseclab's and then charon's, in the same run (the
// laptops are ipseclab's in both): the time from the lab being up until
// every laptop has an address and its IPsec SAs, as laptops per second,
// and memory: charon's resident memory per laptop, and, since our gateway
// runs in the lab process beside the laptops' stacks, that process's per
// stack. IPSECLAB_RW_CLIENTS sets the count.
func BenchmarkRoadWarriors(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(b)
	n := 200
	if v, err := strconv.Atoi(os.Getenv("IPSECLAB_RW_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	var ours, charon roadWarriorsResult
	for range b.N {
		ours = runRoadWarriors(b, n, "gateway")
		charon = runRoadWarriors(b, n, "strongswan")
	}
	oursRate := float64(n) / ours.allUp.Seconds()
	charonRate := float64(n) / charon.allUp.Seconds()
	b.ReportMetric(oursRate, "laptops/s")
	b.ReportMetric(charonRate, "charon-laptops/s")
	b.ReportMetric(oursRate/charonRate, "x-charon")
	// Our gateway shares the lab process with the laptops' stacks: the
	// process's resident memory per stack bounds what one costs.
	b.ReportMetric(float64(ours.labRSS)/float64(n+1)/1024, "lab-KB/stack")
	b.ReportMetric(float64(charon.charonRSS)/float64(n)/1024, "charon-KB/laptop")
}

// The lab process's soft memory limit: 80 MiB up to two stacks (the flood
// figures' lab), 1 MiB more for each stack beyond.
func TestMemoryLimitGrowsWithStacks(t *testing.T) {
	for _, c := range []struct {
		lab  string
		want int64
	}{
		{"name: x\n" + roadWarriorsLab(1, "gateway"), 80 << 20},
		{"name: x\n" + roadWarriorsLab(1, "strongswan"), 80 << 20},
		{"name: x\n" + roadWarriorsLab(200, "gateway"), 80<<20 + 199<<20},
	} {
		lab, err := topology.Parse("lab.yaml", []byte(c.lab))
		if err != nil {
			t.Fatal(err)
		}
		if got := memoryLimit(lab); got != c.want {
			t.Errorf("%d nodes: limit %d MiB, want %d MiB", len(lab.Topology.Nodes), got>>20, c.want>>20)
		}
	}
}
