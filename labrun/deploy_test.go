package labrun_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// routedLab: a — r1 — r2 — LAN{r2, b, c}: five nodes, two routers, a LAN of three.
func routedLab(name string) string {
	return fmt.Sprintf(`
name: %s
topology:
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
`, name)
}

func mustParse(t *testing.T, src string) *topology.Lab {
	t.Helper()
	lab, err := topology.Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return lab
}

// deployForTest deploys and registers a cleanup that destroys the lab even
// when the test fails.
func deployForTest(t *testing.T, lab *topology.Lab, opt labrun.Options) *labrun.Deployment {
	t.Helper()
	netenv.SharedLabs(t)
	d, err := labrun.Deploy(context.Background(), lab, opt)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	t.Cleanup(func() {
		_ = d.Destroy()
		for _, ns := range mustList(t, labrun.LabPrefix(lab.Name)) {
			_ = labrun.DeleteNetns(ns)
		}
	})
	return d
}

func mustList(t *testing.T, prefix string) []string {
	l, err := labrun.ListNetns(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDeployRoutedLabPingsEndToEndAndLeavesNothing(t *testing.T) {
	testenv.NeedRoot(t)
	before := netenv.TakeHostSnapshot(t)
	name := fmt.Sprintf("t%d-routed", os.Getpid())
	lab := mustParse(t, routedLab(name))
	bus := events.NewBus(name)
	sub := bus.Subscribe(nil)
	defer sub.Close()

	d := deployForTest(t, lab, labrun.Options{Bus: bus})
	if got := mustList(t, labrun.LabPrefix(name)); len(got) != 6 { // 5 nodes + the LAN namespace
		t.Fatalf("namespaces after deploy: %v", got)
	}

	for _, dst := range []string{"10.0.2.10", "10.0.2.11", "10.0.1.1"} {
		res, err := labrun.Ping(context.Background(), d.Nodes["a"].Path(), netip.MustParseAddr(dst),
			labrun.PingOptions{Count: 3, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second}, nil)
		if err != nil {
			t.Fatalf("ping %s: %v", dst, err)
		}
		if res.Received != 3 {
			t.Fatalf("ping a → %s: %s (errors: %v)", dst, res.Summary(), res.Errors)
		}
		// Through two routers the TTL of b's reply drops by 2 (64 → 62).
		if dst == "10.0.2.10" && res.Replies[0].TTL != 62 {
			t.Errorf("reply from %s has TTL %d; want 62 after two routers", dst, res.Replies[0].TTL)
		}
	}
	// b and c reach each other across the bridge.
	res, err := labrun.Ping(context.Background(), d.Nodes["b"].Path(), netip.MustParseAddr("10.0.2.11"),
		labrun.PingOptions{Count: 2, Interval: 20 * time.Millisecond}, nil)
	if err != nil || res.Received != 2 {
		t.Fatalf("ping b → c on the LAN: %v %s", err, res.Summary())
	}

	if err := d.Destroy(); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if left := mustList(t, labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("namespaces left after destroy: %v", left)
	}
	if diff := before.Diff(netenv.TakeHostSnapshot(t)); diff != "" {
		t.Fatalf("the host namespace changed:\n%s", diff)
	}
	bus.Close()
	var kinds []string
	for e := range sub.C() {
		kinds = append(kinds, string(e.Kind))
	}
	all := strings.Join(kinds, " ")
	for _, k := range []events.Kind{events.LabDeploying, events.NodeCreated, events.LinkCreated, events.LANCreated, events.LabDeployed, events.LabDestroyed} {
		if !strings.Contains(all, string(k)) {
			t.Errorf("no %s event published (got %s)", k, all)
		}
	}
}

// A deploy that fails part way (here: a route the kernel rejects after the
// namespaces and links exist) removes everything it created.
func TestFailedDeployRollsBack(t *testing.T) {
	testenv.NeedRoot(t)
	name := fmt.Sprintf("t%d-rollback", os.Getpid())
	lab := mustParse(t, routedLab(name))
	netenv.SharedLabs(t)
	// Break the lab after validation: two links end on the same interface name
	// of r1, which the kernel refuses when the second is created.
	lab.Topology.Links[1].Endpoints[0].Iface = "eth0"
	before := netenv.TakeHostSnapshot(t)
	_, err := labrun.Deploy(context.Background(), lab, labrun.Options{})
	if err == nil {
		t.Fatal("deploy of a broken lab succeeded")
	}
	if !strings.Contains(err.Error(), "eth0") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if left := mustList(t, labrun.LabPrefix(name)); len(left) != 0 {
		t.Fatalf("namespaces left after a failed deploy: %v", left)
	}
	if diff := before.Diff(netenv.TakeHostSnapshot(t)); diff != "" {
		t.Fatalf("the host namespace changed:\n%s", diff)
	}
}

func TestDeployRefusesALabThatIsAlreadyUp(t *testing.T) {
	testenv.NeedRoot(t)
	name := fmt.Sprintf("t%d-twice", os.Getpid())
	lab := mustParse(t, routedLab(name))
	deployForTest(t, lab, labrun.Options{})
	_, err := labrun.Deploy(context.Background(), mustParse(t, routedLab(name)), labrun.Options{})
	if err == nil || !strings.Contains(err.Error(), "already deployed") {
		t.Fatalf("second deploy: %v; want 'already deployed'", err)
	}
	if got := mustList(t, labrun.LabPrefix(name)); len(got) != 6 {
		t.Fatalf("the refused deploy touched the running lab: %v", got)
	}
}

// Two labs with the same node names run side by side.
func TestTwoLabsSideBySide(t *testing.T) {
	testenv.NeedRoot(t)
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("t%d-side%d", os.Getpid(), i)
		d := deployForTest(t, mustParse(t, routedLab(name)), labrun.Options{})
		res, err := labrun.Ping(context.Background(), d.Nodes["a"].Path(), netip.MustParseAddr("10.0.2.10"),
			labrun.PingOptions{Count: 1, Timeout: 2 * time.Second}, nil)
		if err != nil || res.Received != 1 {
			t.Fatalf("lab %s: %v %s", name, err, res.Summary())
		}
	}
}

// Deploy writes each node's link peers and next hops into its neighbour
// table as permanent entries, with the MAC of the interface that holds the
// address; LAN members that only might talk resolve each other by ARP.
func TestDeployPinsNeighbours(t *testing.T) {
	testenv.NeedRoot(t)
	name := fmt.Sprintf("t%d-pins", os.Getpid())
	d := deployForTest(t, mustParse(t, routedLab(name)), labrun.Options{})
	mac := func(node, iface string) string {
		l, err := d.Nodes[node].NL.LinkByName(iface)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	permanent := func(node string) map[string]string {
		ns, err := d.Nodes[node].NL.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, n := range ns {
			if n.State&netlink.NUD_PERMANENT != 0 {
				out[n.IP.String()] = n.HardwareAddr.String()
			}
		}
		return out
	}
	for _, c := range []struct{ node, addr, holder, iface string }{
		{"a", "10.0.1.1", "r1", "eth0"},   // link peer and gateway
		{"r1", "10.0.1.10", "a", "eth0"},  // link peer
		{"r1", "10.0.12.2", "r2", "eth0"}, // link peer and gateway
		{"b", "10.0.2.1", "r2", "eth1"},   // gateway on the LAN
		{"c", "10.0.2.1", "r2", "eth1"},
	} {
		if got, want := permanent(c.node)[c.addr], mac(c.holder, c.iface); got != want {
			t.Errorf("%s: permanent neighbour %s is %q, want %s (%s:%s)", c.node, c.addr, got, want, c.holder, c.iface)
		}
	}
	if got, ok := permanent("b")["10.0.2.11"]; ok {
		t.Errorf("b pins c (%s): LAN members that only might talk should resolve by ARP", got)
	}
	res, err := labrun.Ping(context.Background(), d.Nodes["b"].Path(), netip.MustParseAddr("10.0.2.11"),
		labrun.PingOptions{Count: 2, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second}, nil)
	if err != nil || res.Received != 2 {
		t.Fatalf("ping b → c on the LAN, by ARP: %v %s", err, res.Summary())
	}
	res, err = labrun.Ping(context.Background(), d.Nodes["a"].Path(), netip.MustParseAddr("10.0.2.10"),
		labrun.PingOptions{Count: 2, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second}, nil)
	if err != nil || res.Received != 2 {
		t.Fatalf("ping a → b through the pinned next hops: %v %s", err, res.Summary())
	}
}
