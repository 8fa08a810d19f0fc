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
