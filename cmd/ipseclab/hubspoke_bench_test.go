package main

import (
	"context"
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
)

// hubSpokeLab is one hub gateway and n spoke gateways, a host behind the
// hub and one behind each spoke (2n+2 nodes, n+1 TAP links), and a tunnel
// from every spoke's network to the hub's, in Aggressive Mode so that the
// hub picks each spoke's connection by the identity in the first message,
// all started at deploy. The spokes share WANs (LANs) of at most
// spokesPerWAN, each with an interface of the hub's: a LAN is a bridge,
// and a bridge takes at most 1,024 ports.
func hubSpokeLab(n int) string {
	var b strings.Builder
	b.WriteString("topology:\n  nodes:\n    hub: {kind: gateway}\n    hh: {kind: host, gateway: 10.0.0.1}\n")
	for i := range n {
		fmt.Fprintf(&b, "    s%d: {kind: gateway}\n    h%d: {kind: host, gateway: %s.1}\n", i, i, spokeNet(i))
	}
	b.WriteString("  links:\n    - endpoints: [hub:eth1, hh:eth0]\n      addresses: [10.0.0.1/24, 10.0.0.10/24]\n")
	for i := range n {
		fmt.Fprintf(&b, "    - endpoints: [s%d:eth1, h%d:eth0]\n      addresses: [%s.1/24, %s.10/24]\n", i, i, spokeNet(i), spokeNet(i))
	}
	b.WriteString("  lans:\n")
	for w := 0; w*spokesPerWAN < n; w++ {
		first, last := w*spokesPerWAN, min(n, (w+1)*spokesPerWAN)
		fmt.Fprintf(&b, "    - name: wan%d\n      members: [%s", w, hubWANIface(w))
		for i := first; i < last; i++ {
			fmt.Fprintf(&b, ", s%d:eth0", i)
		}
		fmt.Fprintf(&b, "]\n      addresses: [%s/16", hubWAN(w))
		for i := first; i < last; i++ {
			fmt.Fprintf(&b, ", %s/16", spokeWAN(i))
		}
		b.WriteString("]\n")
	}
	b.WriteString("ipsec:\n")
	for i := range n {
		fmt.Fprintf(&b, "  c%d:\n    initiator: {node: s%d, address: %s, id: \"fqdn:s%d.lab\"}\n    responder: {node: hub, address: %s, id: \"fqdn:hub.lab\"}\n",
			i, i, spokeWAN(i), i, hubWAN(i/spokesPerWAN))
		fmt.Fprintf(&b, "    auth: {method: psk, secret: key-%d}\n    ike: {mode: aggressive, proposals: [aes128-sha256-modp2048]}\n", i)
		fmt.Fprintf(&b, "    child: {local-ts: %s.0/24, remote-ts: 10.0.0.0/24, esp: [aes128gcm16], start: start}\n", spokeNet(i))
	}
	return b.String()
}

const spokesPerWAN = 1000

// spokeNet is the /24 behind spoke i (without the last octet), spokeWAN its
// address on its WAN, hubWAN and hubWANIface the hub's on WAN w.
func spokeNet(i int) string { return fmt.Sprintf("10.%d.%d", 1+i/250, i%250) }
func spokeWAN(i int) string {
	w, j := i/spokesPerWAN, i%spokesPerWAN
	return fmt.Sprintf("172.%d.%d.%d", 16+w, 1+j/250, 1+j%250)
}
func hubWAN(w int) string      { return fmt.Sprintf("172.%d.0.1", 16+w) }
func hubWANIface(w int) string { return fmt.Sprintf("hub:wan%d", w) }

// hubSpokeResult is one run of the hub-and-spoke lab.
type hubSpokeResult struct {
	deploy  time.Duration // namespaces, links, addresses and routes (lab-deploying to lab-deployed)
	ready   time.Duration // `ipseclab deploy` started to returned: the lab process up, every stack started
	allUp   time.Duration // `ipseclab deploy` started to the last tunnel up at both ends
	rss     int64         // the lab process's resident memory once every tunnel is up
	peak    int64         // ... and its peak
	fds     int           // its open file descriptors
	threads int           // its threads
	destroy time.Duration // `ipseclab destroy`, from start to return
}

func runHubSpoke(tb testing.TB, n int) hubSpokeResult {
	tb.Helper()
	name := fmt.Sprintf("hs%d", os.Getpid()%100000)
	p := filepath.Join(tb.TempDir(), "lab.yaml")
	if err := os.WriteFile(p, []byte("name: "+name+"\n"+hubSpokeLab(n)), 0o644); err != nil {
		tb.Fatal(err)
	}
	destroyed := false
	defer func() {
		if !destroyed {
			_ = labrun.DestroyLab(name, 30*time.Second)
		}
	}()
	var res hubSpokeResult
	start := time.Now()
	if r := run(tb, "deploy", "-t", p); r.code != 0 {
		tb.Fatalf("deploy: %+v", r)
	}
	res.ready = time.Since(start)
	st, err := labrun.ReadState(name)
	if err != nil {
		tb.Fatal(err)
	}
	dir := labrun.StateDir(name)
	// A tunnel is up when both ends hold its IPsec SAs; the lab process
	// says so, and the event log says when.
	c, err := labrun.DialLab(name)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		up := tunnelsUp(tb, c)
		if up == n {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d tunnels up after 3 minutes", up, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.peak, res.rss = procMemory(tb, st.PID)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.PID))
	res.fds = len(fds)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", st.PID))
	res.threads = len(tasks)
	deployed, deploying, last := hubSpokeTimes(dir)
	if last.IsZero() {
		tb.Fatal("no phase2-up in the event log")
	}
	res.allUp = last.Sub(start)
	if !deploying.IsZero() && !deployed.IsZero() {
		res.deploy = deployed.Sub(deploying)
	}
	t0 := time.Now()
	if r := run(tb, "destroy", "--name", name, "--timeout", "60s"); r.code != 0 {
		tb.Fatalf("destroy: %+v", r)
	}
	res.destroy = time.Since(t0)
	destroyed = true
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) > 0 {
		tb.Fatalf("destroy left %d namespaces, %s first", len(left), left[0])
	}
	return res
}

// tunnelsUp counts the connections whose ESP SAs both ends hold.
func tunnelsUp(tb testing.TB, c *labrun.Client) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sas, err := c.SAs(ctx, "")
	if err != nil {
		tb.Fatalf("sas: %v", err)
	}
	ends := map[string]map[string]bool{}
	for _, s := range sas {
		if s.Type != "esp" {
			continue
		}
		if ends[s.Conn] == nil {
			ends[s.Conn] = map[string]bool{}
		}
		ends[s.Conn][s.Node] = true
	}
	up := 0
	for _, e := range ends {
		if len(e) == 2 {
			up++
		}
	}
	return up
}

// hubSpokeTimes reads the event log: the deployment's start and end, and
// the last phase2-up.
func hubSpokeTimes(dir string) (deployed, deploying, lastUp time.Time) {
	eachLogLine(dir, func(line []byte) {
		var e struct {
			Kind   string
			Time   time.Time
			Fields struct {
				DurationMS int64 `json:"duration_ms"`
			}
		}
		if json.Unmarshal(line, &e) != nil {
			return
		}
		switch e.Kind {
		case "lab-deployed":
			// Its duration, since the log may have rotated past
			// lab-deploying.
			deployed, deploying = e.Time, e.Time.Add(-time.Duration(e.Fields.DurationMS)*time.Millisecond)
		case "phase2-up":
			if e.Time.After(lastUp) {
				lastUp = e.Time
			}
		}
	})
	return deployed, deploying, lastUp
}

// BenchmarkHubAndSpoke deploys a hub with N spokes and a host behind each
// (2N+2 nodes), every spoke's tunnel started at deploy, for N = 100 and
// 1,000 (IPSECLAB_HUBSPOKE_N sets others, comma-separated): the time to
// deploy the namespaces and links, to every tunnel up at both ends (from
// `ipseclab deploy` starting), the lab process's resident memory per
// gateway (N+1 of ipseclab's stacks, with the TAP links and the rest of the
// process), and the time `ipseclab destroy` takes.
func BenchmarkHubAndSpoke(b *testing.B) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	sizes := []int{100, 1000}
	if v := os.Getenv("IPSECLAB_HUBSPOKE_N"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("IPSECLAB_HUBSPOKE_N: %q is not a count", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("spokes=%d", n), func(b *testing.B) {
			var r hubSpokeResult
			for range b.N {
				r = runHubSpoke(b, n)
			}
			if r.deploy > 0 { // else the event log rotated past it
				b.ReportMetric(r.deploy.Seconds(), "deploy-s")
			}
			b.ReportMetric(r.ready.Seconds(), "ready-s")
			b.ReportMetric(r.allUp.Seconds(), "all-up-s")
			b.ReportMetric(float64(r.rss)/float64(n+1)/1e6, "MB/gateway")
			b.ReportMetric(float64(r.peak)/float64(n+1)/1e6, "peak-MB/gateway")
			b.ReportMetric(r.destroy.Seconds(), "destroy-s")
			b.ReportMetric(float64(r.fds), "fds")
			b.ReportMetric(float64(r.threads), "threads")
		})
	}
}
