package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// rekeyCollisionLab is the rekey-collision lab with one gateway replaced by
// strongSwan's charon: a byte lifetime with no random part, so that both ends
// reach the soft limit with the same packet, 30 ms between the gateways, and
// a numbered stream across the collision.
func rekeyCollisionLab(charon string) string {
	kind := map[bool]string{true: "strongswan", false: "gateway"}
	// The stream comes from charon's side: charon's outbound SA crosses the
	// soft limit as it sends, ours as the packet arrives, and charon's Quick
	// Mode, which it starts from a job of its own a moment later, is still
	// on its way when ours leaves. The other way round ours would arrive
	// right behind the packet, and charon would take it for the rekey before
	// starting its own.
	ours, sender, receiver := "gw-a", "bob", "alice"
	if charon == "gw-a" {
		ours, sender, receiver = "gw-b", "alice", "bob"
	}
	addr := map[string]string{"alice": "10.1.0.10", "bob": "10.2.0.10"}
	return fmt.Sprintf(`topology:
  nodes:
    alice: {kind: host, gateway: 10.1.0.1}
    gw-a:  {kind: %s, gateway: 198.51.100.1}
    isp:   {kind: router}
    gw-b:  {kind: %s, gateway: 203.0.113.1}
    bob:   {kind: host, gateway: 10.2.0.1}
  links:
    - endpoints: [alice:eth0, gw-a:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [gw-a:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
      impair: {delay: 30ms}
    - endpoints: [isp:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [gw-b:eth1, bob:eth0]
      addresses: [10.2.0.1/24, 10.2.0.10/24]
ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {secret: lab-only-secret}
    ike: {proposals: [aes128-sha256-modp2048]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128-sha256], life-bytes: 1mb, rand-bytes: 0, lifetime: 1h, start: none}
script:
  - tunnel-up: office
  - expect: {event: phase2-up, connection: office, node: %s, within: 5s}
  # charon installs its route into libipsec's TUN a moment after its SAs:
  # a ping first, so that the stream starts once both ends carry traffic.
  - ping: {from: %s, to: %s, count: 3, interval: 200ms}
  - expect: {traffic: {from: %s, to: %s, proto: udp, rate: 2mbit, duration: 5s, size: 1000}, max-loss: 0%%}
  - expect: {event: rekey-collision, node: %s, within: 1s}
  - wait: {event: sa-deleted, node: %s, connection: office, timeout: 10s}
  - expect: {traffic: {from: %s, to: %s, proto: udp, rate: 1mbit, duration: 2s, size: 500}, max-loss: 0%%}
`, kind[charon == "gw-a"], kind[charon == "gw-b"], ours, sender, addr[receiver], sender, addr[receiver], ours, ours, receiver, addr[sender])
}

// A rekey collision against charon, charon on either side: both ends reach
// the soft byte limit at once and each starts a Quick Mode; ipseclab sees
// its pair replaced by charon's Quick Mode while rekeying it itself, charon
// (quick_mode.c, check_for_rekeyed_child) installs both new CHILD_SAs, and
// numbered streams both ways lose nothing across the collision and the old
// pair's deletion.
func TestInteropWithStrongSwanRekeyCollision(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	established := regexp.MustCompile(`charon: CHILD_SA office\{\d+\} established`)
	for _, charon := range []string{"gw-b", "gw-a"} {
		t.Run("charon-as-"+charon, func(t *testing.T) {
			name := fmt.Sprintf("rkc%d", os.Getpid()%100000)
			lab := writeLab(t, name, rekeyCollisionLab(charon))
			t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
			r := run(t, "run", lab, "--json")
			evs := parseJSONLines(t, r.stdout)
			if r.code != 0 {
				t.Fatalf("ipseclab run exited %d:\n%s\n%s", r.code, failedExpectations(evs), r.stderr)
			}
			var rekeys []string
			children := 0
			for _, e := range evs {
				switch {
				case e.Kind == events.Rekey && e.Node != charon:
					rekeys = append(rekeys, e.Message)
				case e.Node == charon && established.MatchString(e.Message):
					children++
				}
			}
			// The first pair, then one new pair from each end's Quick Mode.
			if children != 3 {
				t.Errorf("charon established %d CHILD_SAs, want 3 (the first, and both of the collision)", children)
			}
			if len(rekeys) != 1 || !strings.Contains(rekeys[0], "soft limit in bytes") {
				t.Errorf("ipseclab's rekeys: %q, want one at the soft byte limit", rekeys)
			}
		})
	}
}
