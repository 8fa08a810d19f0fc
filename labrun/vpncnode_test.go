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
	"github.com/ipseclab/ipseclab/strongswan/swantest"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/vpnc"
)

const vpncTestLab = `name: vpnc-node
topology:
  nodes:
    laptop: {kind: vpnc, gateway: 192.168.1.1}
    home:   {kind: nat, gateway: 203.0.113.2}
    gw:     {kind: gateway}
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
    initiator: {node: laptop, id: "keyid:staff", xauth: {user: alice, password: wonderland}}
    responder:
      node: gw
      xauth: {users: {alice: wonderland}}
      pool: 10.9.0.0/24
      dns: [10.1.0.53]
      split-include: [10.1.0.0/24]
      banner: ipseclab gateway
    auth: {method: xauth-psk, secret: group-secret}
    ike: {mode: aggressive, proposals: [aes256-sha1-modp3072], dpd: {delay: 3s}}
    child: {esp: [aes128-sha1-modp2048]}
`

// TestVPNCConfigFromTheLab: what a vpnc node takes from the ipsec: block.
func TestVPNCConfigFromTheLab(t *testing.T) {
	lab, err := topology.Parse("lab.yaml", []byte(vpncTestLab))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vpncConfig(lab.SidesOf("laptop")[0])
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.String() != "203.0.113.2" || cfg.GroupID != "staff" || cfg.GroupSecret != "group-secret" ||
		cfg.Username != "alice" || cfg.Password != "wonderland" || cfg.Hybrid ||
		cfg.DHGroup != "dh15" || cfg.PFS != "dh14" || cfg.NATT != "" || cfg.DPDIdle != 10*time.Second ||
		cfg.TargetNetwork.String() != "10.1.0.0/24" {
		t.Errorf("vpnc configuration %+v", cfg)
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

// TestVPNCNodeInALab deploys a lab in which vpnc, behind a NAT box, dials in
// to ipseclab's own gateway: group key in Aggressive Mode, XAUTH, Mode
// Config, NAT-T, PFS. The connection comes up at deploy (Mode Config's
// start), the server answers a ping from the lent address, and the lab goes
// away with nothing left. vpnc proposes the one split-include network as its
// remote selector (TargetNetwork): ipseclab's gateway refuses vpnc's default
// 0.0.0.0/0 with INVALID-ID-INFORMATION, where charon narrows it.
func TestVPNCNodeInALab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, vpnc.DefaultVPNC)
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !published(bus, "laptop", "rw", events.Phase2Up) {
		if published(bus, "laptop", "rw", events.Phase1Failed) || published(bus, "laptop", "rw", events.Phase2Failed) || published(bus, "laptop", "rw", events.AuthFailed) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	if !published(bus, "laptop", "rw", events.Phase2Up) {
		for _, e := range bus.Since(0) {
			if (e.Node == "laptop" || e.Node == "gw") && e.Kind != events.VPNCLog {
				t.Log(e.Node, e.Kind, e.Message)
			}
		}
		t.Fatal("vpnc did not bring the tunnel up")
	}
	sas, err := r.SAs(ctx, "laptop")
	if err != nil || len(sas) != 2 || sas[0].XAuthUser != "alice" || !strings.HasPrefix(sas[0].VirtualIP, "10.9.0.") ||
		sas[1].RemoteTS != "10.1.0.0/24" {
		t.Fatalf("the vpnc node's SAs: %+v, %v", sas, err)
	}
	res, err := Ping(ctx, NetnsPath(NodeNetns(name, "laptop")), netip.MustParseAddr("10.1.0.10"), PingOptions{Count: 3, Interval: 100 * time.Millisecond, Timeout: 2 * time.Second}, nil)
	if err != nil || res.Received == 0 {
		t.Fatalf("ping the server from the vpnc node: %v\n%s", err, res.Summary())
	}
	if st, err := r.Stats(ctx, "laptop"); err != nil || len(st) != 1 || st[0].Impl != "vpnc" {
		t.Errorf("stats %+v, %v", st, err)
	}
}
