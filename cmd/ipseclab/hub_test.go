package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// hubLab is a hub with n spokes in Main Mode, each connection with its own
// pre-shared key and all with the same proposals, a host behind each spoke,
// and each spoke's tunnel covering the hub's LAN and every other spoke's.
func hubLab(n int, hubKind string) string {
	var nodes, links, conns, script strings.Builder
	nodes.WriteString("    hub:      {kind: " + hubKind + ", gateway: 203.0.113.1}\n    hq:       {kind: host, gateway: 10.0.0.1}\n    internet: {kind: router}\n")
	links.WriteString("    - endpoints: [hq:eth0, hub:eth1]\n      addresses: [10.0.0.10/24, 10.0.0.1/24]\n")
	links.WriteString("    - endpoints: [hub:eth0, internet:eth0]\n      addresses: [203.0.113.2/24, 203.0.113.1/24]\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&nodes, "    spoke%d: {kind: gateway, gateway: 198.51.%d.1}\n    shop%d: {kind: host, gateway: 10.%d.0.1}\n", i, 100+i, i, i)
		fmt.Fprintf(&links, "    - endpoints: [spoke%d:eth0, internet:eth%d]\n      addresses: [198.51.%d.2/24, 198.51.%d.1/24]\n", i, i, 100+i, 100+i)
		fmt.Fprintf(&links, "    - endpoints: [shop%d:eth0, spoke%d:eth1]\n      addresses: [10.%d.0.10/24, 10.%d.0.1/24]\n", i, i, i, i)
		fmt.Fprintf(&conns, "  spoke%d:\n    initiator: spoke%d\n    responder: hub\n    auth: {secret: key-of-spoke%d}\n"+
			"    ike: {proposals: [aes128-sha256-modp2048]}\n"+
			"    child: {local-ts: 10.%d.0.0/24, remote-ts: 10.0.0.0/12, esp: [aes128gcm16], start: start}\n", i, i, i, i)
		fmt.Fprintf(&script, "  - expect: {event: phase2-up, node: hub, connection: spoke%d, within: 10s}\n", i)
	}
	// Spoke to spoke, through the hub: the first spoke to every other.
	for i := 2; i <= n; i++ {
		fmt.Fprintf(&script, "  - expect: {ping: {from: shop1, to: 10.%d.0.10, count: 2, interval: 100ms}, success: 100%%}\n", i)
	}
	return "topology:\n  nodes:\n" + nodes.String() + "  links:\n" + links.String() +
		"ipsec:\n" + conns.String() + "script:\n" + script.String()
}

// TestHubWithTenSpokesInALab: a hub's ten connections differ only in their
// spokes' addresses and pre-shared keys; every tunnel comes up (the hub
// picks each connection by its spoke's address, RFC 2409 §5.4) and every
// spoke reaches the others through the hub. With charon as the hub (four
// spokes), the lab configures it to do the same.
func TestHubWithTenSpokesInALab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	t.Run("ipseclab", func(t *testing.T) { hubRun(t, hubLab(10, "gateway")) })
	t.Run("strongswan", func(t *testing.T) {
		testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
		hubRun(t, hubLab(4, "strongswan"))
	})
}

func hubRun(t *testing.T, body string) {
	name := fmt.Sprintf("cli%d-hub", os.Getpid())
	lab := writeLab(t, name, body)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "run", lab, "--json")
	evs := parseJSONLines(t, r.stdout)
	if r.code != 0 {
		t.Fatalf("ipseclab run exited %d:\n%s\n%s", r.code, failedExpectations(evs), r.stderr)
	}
	for _, e := range evs {
		if e.Kind == events.AuthFailed {
			t.Errorf("an authentication failed: %s", e)
		}
	}
}

// TestMismatchesAgainstStrongSwanInALab: a lab whose responder has settings
// of its own (a side's child:), with charon on one side and ipseclab's
// gateway on the other, in both directions. When charon refuses, our gateway
// reports charon's notify with its meaning; when we refuse, we name what
// charon offered against what we have.
func TestMismatchesAgainstStrongSwanInALab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	for _, tc := range []struct {
		name, side, notify, weSay string
	}{
		{"pfs", "{pfs: none}", "NO-PROPOSAL-CHOSEN", "PFS on the peer's side only: it asks for PFS with modp2048, this side has no PFS configured"},
		{"selectors", "{remote-ts: 10.9.0.0/24}", "INVALID-ID-INFORMATION", "is not within our remote-ts 10.9.0.0/24"},
	} {
		for _, dir := range [][2]string{{"gw", "sw"}, {"sw", "gw"}} {
			t.Run(fmt.Sprintf("%s/%s-to-%s", tc.name, dir[0], dir[1]), func(t *testing.T) {
				initTS, respTS := "10.1.0.0/24", "10.2.0.0/24"
				if dir[0] == "sw" {
					initTS, respTS = respTS, initTS
				}
				// The responder's own remote-ts is its view of the initiator's LAN.
				body := twoSites("gw", "gateway", "sw", "strongswan", fmt.Sprintf(`ipsec:
  mixed:
    initiator: %s
    responder: {node: %s, child: %s}
    auth: {secret: interop-secret}
    ike: {proposals: [aes128-sha256-modp2048]}
    child: {local-ts: %s, remote-ts: %s, esp: [aes128-sha256], pfs: modp2048, start: none}
script:
  - tunnel-up: mixed
  - expect: {event: phase2-failed, node: gw, connection: mixed, within: 10s}
`, dir[0], dir[1], tc.side, initTS, respTS))
				name := fmt.Sprintf("mm%d", os.Getpid()%100000)
				lab := writeLab(t, name, body)
				t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
				r := run(t, "run", lab, "--json")
				evs := parseJSONLines(t, r.stdout)
				if r.code != 0 {
					t.Fatalf("ipseclab run exited %d:\n%s\n%s", r.code, failedExpectations(evs), r.stderr)
				}
				var failed events.Event
				for _, e := range evs {
					if e.Kind == events.Phase2Failed && e.Node == "gw" {
						failed = e
					}
				}
				t.Logf("gw: %s\n  ↳ %s", failed.Message, failed.Explain)
				switch {
				case dir[0] == "gw" && !strings.Contains(failed.Message, "the responder answered with "+tc.notify):
					t.Errorf("our gateway does not report charon's %s: %s", tc.notify, failed.Message)
				case dir[0] == "gw" && failed.Explain == "":
					t.Errorf("our gateway does not explain charon's %s", tc.notify)
				case dir[0] == "sw" && !strings.Contains(failed.Message+" "+failed.Explain+" "+noProposalSent(evs), tc.weSay):
					t.Errorf("our refusal does not say %q:\n%s\n%s", tc.weSay, failed.Message, failed.Explain)
				}
			})
		}
	}
}

// noProposalSent is the message of our gateway's NO-PROPOSAL-CHOSEN, if it sent one.
func noProposalSent(evs []events.Event) string {
	for _, e := range evs {
		if e.Kind == events.NoProposal && e.Node == "gw" {
			return e.Message
		}
	}
	return ""
}
