package labrun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/vpnc"
)

const vpncTestLab = `name: vpnc-node
topology:
  nodes:
    laptop: {kind: vpnc, gateway: 192.168.1.1}
    home:   {kind: nat, gateway: 203.0.113.2}
    gw:     {kind: strongswan}
    server: {kind: host, gateway: 10.1.0.1}
  links:
    - endpoints: [laptop:eth0, home:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [home:eth1, gw:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [gw:eth1, server:eth0]
      addresses: [10.1.0.1/24, 10.1.0.10/24]
ipsec:
  rw:
    initiator: {node: laptop, id: "keyid:staff"}
    responder: gw
    auth: {method: psk, secret: group-secret}
    ike: {mode: aggressive, proposals: [aes256-sha1-modp3072], dpd: {delay: 3s}}
    child: {local-ts: 192.168.1.10/32, remote-ts: 10.1.0.0/24, esp: [aes128-sha1-modp2048]}
`

// TestVPNCConfigFromTheLab: what a vpnc node takes from the ipsec: block
// today, and that it says plainly what the lab file cannot give it yet.
func TestVPNCConfigFromTheLab(t *testing.T) {
	lab, err := topology.Parse("lab.yaml", []byte(vpncTestLab))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vpncConfig(lab.SidesOf("laptop")[0])
	if cfg.Gateway.String() != "203.0.113.2" || cfg.GroupID != "staff" || cfg.GroupSecret != "group-secret" ||
		cfg.DHGroup != "dh15" || cfg.PFS != "dh14" || cfg.NATT != "" || cfg.DPDIdle != 10*time.Second {
		t.Errorf("vpnc configuration %+v", cfg)
	}
	if err == nil || !strings.Contains(err.Error(), "XAUTH user name and password") {
		t.Errorf("without XAUTH credentials in the lab: %v", err)
	}
	if got := groupName("", "rw"); got != "rw" {
		t.Errorf("group name without an ID: %q", got)
	}
}

// TestVPNCNodeWithoutVPNC: a lab with a vpnc node on a machine without vpnc
// fails at deploy with one clear sentence.
func TestVPNCNodeWithoutVPNC(t *testing.T) {
	lab, err := topology.Parse("lab.yaml", []byte(vpncTestLab))
	if err != nil {
		t.Fatal(err)
	}
	defer func(p string) { vpncProgram = p }(vpncProgram)
	vpncProgram = "/nonexistent/vpnc"
	_, err = startVPNC(&Runtime{Lab: lab, Bus: events.NewBus("t")}, "laptop")
	if !errors.Is(err, vpnc.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install vpnc") {
		t.Fatalf("starting a vpnc node without vpnc: %v", err)
	}
}

// TestVPNCNode drives a vpnc node as the lab runtime does (Initiate, SAs,
// Crash, Restart, Terminate, Close) against charon as the gateway, and
// checks the events it publishes.
func TestVPNCNode(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, vpnc.DefaultVPNC)
	bus := events.NewBus("vpnc-node")
	defer bus.Close()
	gw := swantest.StartRAGateway(t, swantest.GatewayConfig{IKEProposal: "aes128-sha1-modp2048", ESPProposal: "aes128-sha1", Aggressive: true})
	laptop, gwAddr := gw.AddClient(t, "laptop")
	n := &vpncNode{r: &Runtime{Bus: bus}, name: "laptop", netns: NetnsPath(laptop.Name), dir: t.TempDir(), conns: map[string]*vpncConn{
		"rw": {name: "rw", cfg: vpnc.Config{Gateway: gwAddr, GroupID: "lab", GroupSecret: swantest.DefaultGroupPSK,
			Username: "alice", Password: swantest.DefaultUsers["alice"], DHGroup: "dh14", PFS: "nopfs"}},
	}}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := n.Initiate(ctx, "rw"); err != nil {
		t.Fatal(err)
	}
	if err := n.Initiate(ctx, "rw"); err != nil {
		t.Fatalf("initiating a running connection again: %v", err)
	}
	sas, err := n.SAs(ctx)
	if err != nil || len(sas) != 2 {
		t.Fatalf("SAs: %+v, %v", sas, err)
	}
	if sas[0].Type != "isakmp" || sas[0].Proposal != "psk+xauth-aes128-sha1" || sas[0].Remote != gwAddr.String() ||
		sas[1].Type != "esp" || sas[1].Proposal != "aes128-sha1" || sas[1].RemoteTS != swantest.LANA.String() ||
		!strings.HasPrefix(sas[1].LocalTS, "10.9.0.") || !sas[1].Encap {
		t.Errorf("SAs %+v", sas)
	}
	for _, k := range []events.Kind{events.InitiateByHand, events.ProposalChosen, events.Phase1Up, events.Phase2Up, events.VPNCLog} {
		if !published(bus, "laptop", "rw", k) {
			t.Errorf("no %s event from laptop for rw", k)
		}
	}
	if err := swantest.UDPEcho(ctx, laptop.Netns, mustAddr(t, strings.TrimSuffix(sas[1].LocalTS, "/32")), gw.Host.Netns, gw.Host.Addr, []byte("vpnc node")); err != nil {
		t.Fatal(err)
	}

	if err := n.Crash(); err != nil {
		t.Fatal(err)
	}
	if !published(bus, "laptop", "", events.StackCrashed) {
		t.Error("no stack-crashed event")
	}
	if sas, _ := n.SAs(ctx); len(sas) != 0 {
		t.Errorf("SAs after the crash: %+v", sas)
	}
	if err := n.Initiate(ctx, "rw"); err == nil {
		t.Error("a crashed vpnc node initiated")
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The gateway still holds the SA of the crashed vpnc (no Delete was
	// sent); the new one logs in beside it.
	if err := n.Initiate(ctx, "rw"); err != nil {
		t.Fatal(err)
	}
	if err := n.Terminate(ctx, "rw"); err != nil {
		t.Fatal(err)
	}
	if sas, _ := n.SAs(ctx); len(sas) != 0 {
		t.Errorf("SAs after Terminate: %+v", sas)
	}
	if !published(bus, "laptop", "rw", events.SADeleted) {
		t.Error("no sa-deleted event after Terminate")
	}
	if err := n.Initiate(ctx, "other"); err == nil {
		t.Error("initiated a connection the node does not have")
	}
}

func published(bus *events.Bus, node, conn string, kind events.Kind) bool {
	for _, e := range bus.Since(0) {
		if e.Node == node && e.Kind == kind && (conn == "" || e.Conn == conn) {
			return true
		}
	}
	return false
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestVPNCNodeInALab deploys a lab with a vpnc node: its trap connection is
// initiated at deploy (vpnc has no on-demand mode), and until the lab file
// can give XAUTH credentials it fails with an event that says so. The lab
// goes away with nothing left.
func TestVPNCNodeInALab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, vpnc.DefaultVPNC)
	testenv.NeedCommand(t, strongswan.DefaultCharon)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("t%d-vpnc", os.Getpid())
	lab, err := topology.Parse("lab.yaml", []byte(strings.Replace(vpncTestLab, "name: vpnc-node", "name: "+name, 1)))
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(name)
	defer bus.Close()
	r, err := StartRuntime(context.Background(), lab, RuntimeOptions{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Shutdown(); err != nil {
			t.Error(err)
		}
		if left, _ := ListNetns(LabPrefix(name)); len(left) != 0 {
			t.Errorf("namespaces left: %v", left)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var failed *events.Event
		for _, e := range bus.Since(0) {
			if e.Kind == events.Phase1Failed && e.Node == "laptop" && e.Conn == "rw" {
				failed = &e
			}
		}
		if failed != nil {
			if !strings.Contains(failed.Message, "XAUTH user name and password") {
				t.Errorf("phase1-failed: %s", failed.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no phase1-failed event from the vpnc node")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sas, err := r.SAs(context.Background(), "laptop")
	if err != nil || len(sas) != 0 {
		t.Errorf("the vpnc node's SAs: %+v, %v", sas, err)
	}
	if st, err := r.Stats(context.Background(), "laptop"); err != nil || len(st) != 1 || st[0].Impl != "vpnc" {
		t.Errorf("stats %+v, %v", st, err)
	}
}
