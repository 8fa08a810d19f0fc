package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// Crashes against strongSwan, each one lab script run to its verdict
// (ipseclab run exits 0 only if every expectation held): one side is an
// ipseclab gateway (gw), the other charon (sw); both run periodic DPD (2 s,
// dead 6 s after the first unanswered R-U-THERE) with the action given.
func TestCrashesAgainstStrongSwan(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	const ping = "{ping: {from: alice, to: 10.2.0.10, count: 3, interval: 200ms, timeout: 500ms}"
	cases := []struct {
		name, action, script string
		charonInitiates      bool
		shows                string // a line the timeline must hold
	}{
		// charon notices that our gateway died, and clears: nothing comes
		// back by itself, even once gw is back.
		{"charon-notices/clear", "clear", `
  - crash: gw
  - expect: {event: dpd-dead, node: sw, within: 15s}
  - restart: gw
  - wait: 2s
  - expect: {event: phase1-up, node: gw, within: 3s, absent: true}`, false, ""},
		// restart: charon negotiates again at once, and reaches gw once it is
		// back; the tunnel carries traffic.
		{"charon-notices/restart", "restart", `
  - crash: gw
  - expect: {event: dpd-dead, node: sw, within: 15s}
  - restart: gw
  - expect: {event: phase2-up, node: gw, within: 20s}
  - expect: ` + ping + `, success: 66%}`, false, ""},
		// hold (swanctl's trap): charon keeps a trap, and bob's first packet
		// once gw is back makes charon negotiate again. charon initiates
		// here: as a responder it accepts any address (remote %any), and a
		// trap cannot initiate towards %any.
		{"charon-notices/hold", "hold", `
  - crash: gw
  - expect: {event: dpd-dead, node: sw, within: 15s}
  - restart: gw
  - wait: 1s
  - expect: {event: phase1-up, node: gw, within: 1s, absent: true}
  - expect: {ping: {from: bob, to: 10.1.0.10, count: 5, interval: 200ms, timeout: 500ms}, success: 20%}
  - expect: {event: phase2-up, node: gw, within: 10s}
  - expect: {ping: {from: bob, to: 10.1.0.10, count: 3, interval: 200ms}, success: 100%}`, true, ""},
		// clear, from our side: the SAs go and nothing starts by itself; the
		// connection's own start: trap policy stays, as with charon's
		// start_action = trap, and catches the next packet.
		{"ipseclab-notices/clear", "clear", `
  - crash: sw
  - expect: {event: dpd-dead, node: gw, within: 15s}
  - restart: sw
  - wait: 2s
  - expect: {event: phase1-up, node: gw, within: 1s, absent: true}
  - expect: ` + ping + `, success: 33%}
  - expect: {event: phase2-up, node: sw, within: 10s}`, false, ""},
		// Our gateway notices that charon died; hold keeps a trap, and the
		// first packet once charon is back negotiates again, from our side.
		{"ipseclab-notices/hold", "hold", `
  - crash: sw
  - expect: {event: dpd-dead, node: gw, within: 15s}
  - restart: sw
  - wait: 1s
  - expect: {event: phase1-up, node: gw, within: 1s, absent: true}
  - expect: ` + ping + `, success: 33%}
  - expect: {event: phase2-up, node: gw, within: 10s}
  - expect: ` + ping + `, success: 100%}`, false, ""},
		// restart, from our side.
		{"ipseclab-notices/restart", "restart", `
  - crash: sw
  - expect: {event: dpd-dead, node: gw, within: 15s}
  - restart: sw
  - expect: {event: phase2-up, node: sw, within: 20s}
  - expect: ` + ping + `, success: 66%}`, false, ""},
		// Our gateway restarts with no SAs, and charon, which has not
		// noticed, still encrypts bob's packets into the old SA: each is
		// counted as an unknown SPI, and our gateway, which shares no ISAKMP
		// SA with charon any more, says why it sends no INVALID-SPI. Then
		// charon's DPD finds the old ISAKMP SA unanswered.
		{"stale-esp-from-charon", "clear", `
  - crash: gw
  - restart: gw
  - expect: {ping: {from: bob, to: 10.1.0.10, count: 3, interval: 100ms, timeout: 300ms}, max-success: 0%}
  - expect: {event: esp-drop, node: gw, within: 1s}
  - expect: {event: notify, node: gw, within: 1s}
  - expect: {event: dpd-dead, node: sw, within: 15s}`, false,
			"which we do not hold; no ISAKMP SA with it to say INVALID-SPI under"},
		// Our gateway restarts; its first Main Mode carries INITIAL-CONTACT,
		// and charon drops the stale IKE and IPsec SAs at once, long before
		// its DPD would.
		{"initial-contact-to-charon", "clear", `
  - crash: gw
  - restart: gw
  - expect: ` + ping + `, success: 33%}
  - expect: {event: sa-deleted, node: sw, within: 2s}
  - expect: {event: dpd-dead, within: 1s, absent: true}
  - expect: ` + ping + `, success: 100%}`, false, ""},
		// charon restarts and initiates. Under swanctl's default unique = no
		// its Main Mode carries no INITIAL-CONTACT, so our gateway keeps the
		// stale ISAKMP SA until its DPD finds it unanswered while the new one
		// is answered: the stale SA goes, the peer is not declared dead, and
		// the new pair replaces the old.
		{"restart-of-charon-without-initial-contact", "clear", `
  - crash: sw
  - restart: sw
  - tunnel-up: mixed
  - expect: {event: phase2-up, node: gw, within: 5s}
  - expect: ` + ping + `, success: 66%}
  - expect: {event: sa-deleted, node: gw, within: 12s}
  - expect: {event: dpd-dead, within: 1s, absent: true}
  - expect: ` + ping + `, success: 100%}`, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("crs%d", os.Getpid()%100000)
			ini, resp, local, remote, start := "gw", "sw", "10.1.0.0/24", "10.2.0.0/24", "trap"
			if tc.charonInitiates {
				ini, resp, local, remote, start = "sw", "gw", "10.2.0.0/24", "10.1.0.0/24", "none"
			}
			lab := writeLab(t, name, twoSites("gw", "gateway", "sw", "strongswan", fmt.Sprintf(`ipsec:
  mixed:
    initiator: %s
    responder: %s
    auth: {secret: interop-secret}
    ike: {proposals: [aes128-sha256-modp2048], dpd: {delay: 2s, timeout: 6s, action: %s}}
    child: {local-ts: %s, remote-ts: %s, esp: [aes128gcm16], start: %s}
script:
  - tunnel-up: mixed
  - expect: {event: phase2-up, node: gw, within: 10s}
  - expect: %s, success: 66%%}
%s
`, ini, resp, tc.action, local, remote, start, ping, strings.TrimPrefix(tc.script, "\n"))))
			r := run(t, "run", lab, "--width", "0")
			if r.code != 0 {
				t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if tc.shows != "" && !strings.Contains(r.stdout, tc.shows) {
				t.Fatalf("the timeline does not show %q:\n%s", tc.shows, r.stdout)
			}
		})
	}
}

// ipseclab crash and restart act on a deployed lab as the script's steps do,
// for an ipseclab gateway and a charon node alike, and refuse what makes no
// sense with a sentence that says why.
func TestCrashAndRestartVerbs(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("crv%d", os.Getpid()%100000)
	lab := writeLab(t, name, interopLab("gw", "sw", "main", "aes128-sha256-modp2048", "aes128gcm16"))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "tunnel", "up", "-t", lab, "mixed"); r.code != 0 {
		t.Fatalf("tunnel up: %+v", r)
	}
	waitForESP(t, lab)
	for _, node := range []string{"gw", "sw"} {
		if r := run(t, "crash", "-t", lab, node); r.code != 0 || !strings.Contains(r.stdout, node+": crashed") {
			t.Fatalf("crash %s: %+v", node, r)
		}
		if r := run(t, "sas", "-t", lab, node, "--json"); strings.Contains(r.stdout, `"spi_in"`) {
			t.Errorf("%s lists SAs after its crash: %s", node, r.stdout)
		}
		if r := run(t, "crash", "-t", lab, node); r.code == 0 {
			t.Errorf("a second crash of %s succeeded: %+v", node, r)
		}
		if r := run(t, "restart", "-t", lab, node); r.code != 0 || !strings.Contains(r.stdout, node+": restarted with no SAs") {
			t.Fatalf("restart %s: %+v", node, r)
		}
		if r := run(t, "restart", "-t", lab, node); r.code == 0 || !strings.Contains(r.stderr, "crash it first") {
			t.Errorf("restarting a running %s: %+v", node, r)
		}
	}
	if r := run(t, "crash", "-t", lab, "isp"); r.code == 0 || !strings.Contains(r.stderr, "only gateway, strongswan and vpnc nodes run IPsec") {
		t.Errorf("crash of a router: %+v", r)
	}
	if r := run(t, "crash", "-t", lab, "nobody"); r.code == 0 || !strings.Contains(r.stderr, `has no node "nobody"`) {
		t.Errorf("crash of an unknown node: %+v", r)
	}
	// Both came back empty and negotiate again.
	if r := run(t, "tunnel", "up", "-t", lab, "mixed"); r.code != 0 {
		t.Fatalf("tunnel up after the restarts: %+v", r)
	}
	waitForESP(t, lab)
}
