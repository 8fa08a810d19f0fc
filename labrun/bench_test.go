package labrun_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// bigLab is a ring of 10 routers with 9 hosts on each: 100 nodes, 100 links.
func bigLab(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntopology:\n  nodes:\n", name)
	for r := 0; r < 10; r++ {
		fmt.Fprintf(&b, "    r%d: {kind: router}\n", r)
		for h := 0; h < 9; h++ {
			fmt.Fprintf(&b, "    h%d-%d: {kind: host, gateway: 10.%d.%d.1}\n", r, h, r, h)
		}
	}
	b.WriteString("  links:\n")
	for r := 0; r < 10; r++ {
		fmt.Fprintf(&b, "    - endpoints: [r%d:ring0, r%d:ring1]\n      addresses: [172.16.%d.1/30, 172.16.%d.2/30]\n", r, (r+1)%10, r, r)
		for h := 0; h < 9; h++ {
			fmt.Fprintf(&b, "    - endpoints: [r%d:h%d, h%d-%d:eth0]\n      addresses: [10.%d.%d.1/24, 10.%d.%d.10/24]\n", r, h, r, h, r, h, r, h)
		}
	}
	return b.String()
}

// ipScript writes the same topology as shell commands, the way shell-based
// emulators build labs: one `ip` process per step.
func ipScript(lab *topology.Lab, prefix string) (up, down string) {
	var u, d strings.Builder
	u.WriteString("set -e\n")
	for _, n := range lab.NodeNames() {
		ns := prefix + n
		fmt.Fprintf(&u, "ip netns add %s\nip -n %s link set lo up\n", ns, ns)
		if lab.Topology.Nodes[n].Kind.Forwards() {
			fmt.Fprintf(&u, "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1\n", ns)
		}
		fmt.Fprintf(&d, "ip netns del %s\n", ns)
	}
	for _, l := range lab.Topology.Links {
		a, z := l.Endpoints[0], l.Endpoints[1]
		fmt.Fprintf(&u, "ip -n %s link add %s type veth peer name %s netns %s\n", prefix+a.Node, a.Iface, z.Iface, prefix+z.Node)
		for e, ep := range l.Endpoints {
			for _, addr := range l.Addresses[e] {
				fmt.Fprintf(&u, "ip -n %s addr add %s dev %s\n", prefix+ep.Node, addr, ep.Iface)
			}
			fmt.Fprintf(&u, "ip -n %s link set %s up\n", prefix+ep.Node, ep.Iface)
		}
	}
	for _, n := range lab.NodeNames() {
		if gw := lab.Topology.Nodes[n].Gateway; gw.IsValid() {
			fmt.Fprintf(&u, "ip -n %s route add default via %s\n", prefix+n, gw)
		}
	}
	return u.String(), d.String()
}

// BenchmarkDeploy100 deploys and destroys a 100-node, 100-link lab with
// ipseclab and, in the same run, with a script of `ip` commands, and reports
// both and their ratios. Targets: deploy < 1 s, destroy < 0.5 s, deploy and
// destroy together ≥ 10× faster than the script.
// "tap" is how labs run (every link an impairable TAP pair joined by the lab
// process); "veth" is plain kernel links, the script's own kind.
func BenchmarkDeploy100(b *testing.B) {
	b.Run("tap", func(b *testing.B) { benchDeploy(b, true) })
	b.Run("veth", func(b *testing.B) { benchDeploy(b, false) })
}

func benchDeploy(b *testing.B, tap bool) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	if _, err := exec.LookPath("ip"); err != nil {
		b.Fatalf("the baseline needs iproute2's ip command: %v", err)
	}
	name := fmt.Sprintf("b%d-big", os.Getpid())
	lab, err := topology.Parse("big.yaml", []byte(bigLab(name)))
	if err != nil {
		b.Fatal(err)
	}
	up, down := ipScript(lab, fmt.Sprintf("iplab%d-", os.Getpid()))
	dir := b.TempDir()
	upFile, downFile := filepath.Join(dir, "up.sh"), filepath.Join(dir, "down.sh")
	_ = os.WriteFile(upFile, []byte(up), 0o755)
	_ = os.WriteFile(downFile, []byte(down), 0o755)
	b.Cleanup(func() {
		_ = exec.Command("sh", downFile).Run()
		left, _ := labrun.ListNetns(labrun.LabPrefix(name))
		for _, ns := range left {
			_ = labrun.DeleteNetns(ns)
		}
	})

	var ours, oursDown, theirs, theirsDown time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		opt := labrun.Options{}
		if tap {
			opt.Wires = labrun.ImpairFactory{Seed: 1}
		}
		d, err := labrun.Deploy(context.Background(), lab, opt)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := d.Destroy(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if out, err := exec.Command("sh", upFile).CombinedOutput(); err != nil {
			b.Fatalf("ip script: %v\n%s", err, out)
		}
		t3 := time.Now()
		if out, err := exec.Command("sh", downFile).CombinedOutput(); err != nil {
			b.Fatalf("ip script teardown: %v\n%s", err, out)
		}
		t4 := time.Now()
		ours += t1.Sub(t0)
		oursDown += t2.Sub(t1)
		theirs += t3.Sub(t2)
		theirsDown += t4.Sub(t3)
		// Let the kernel finish freeing the namespaces (it does so in the
		// background) so one round does not slow the next.
		time.Sleep(300 * time.Millisecond)
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(ours), "deploy-ms")
	b.ReportMetric(ms(oursDown), "destroy-ms")
	b.ReportMetric(ms(theirs), "ip-deploy-ms")
	b.ReportMetric(ms(theirsDown), "ip-destroy-ms")
	b.ReportMetric(float64(theirs)/float64(ours), "deploy-speedup-x")
	b.ReportMetric(float64(theirsDown)/float64(oursDown), "destroy-speedup-x")
	b.ReportMetric(float64(theirs+theirsDown)/float64(ours+oursDown), "total-speedup-x")
	b.ReportMetric(0, "ns/op")
}
