package main

import (
	"encoding/json"
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

// natRebootLab is a laptop behind a home NAT that picks random ports, and an
// office gateway; laptopKind and officeKind say whose IKE and ESP each runs.
// Its script reboots the NAT after the tunnel carried traffic, lets the
// laptop send, and checks that the office's replies and its own pings reach
// the laptop through the new mapping.
func natRebootLab(laptopKind, officeKind, script string) string {
	return fmt.Sprintf(`topology:
  nodes:
    laptop:    {kind: %s, gateway: 192.168.1.1}
    home-nat:  {kind: nat, gateway: 198.51.100.1, nat: {outside: eth1, ports: random}}
    internet:  {kind: router}
    office-gw: {kind: %s, gateway: 203.0.113.1}
    server:    {kind: host, gateway: 10.1.0.1}
  links:
    - endpoints: [laptop:eth0, home-nat:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [home-nat:eth1, internet:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [internet:eth1, office-gw:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [office-gw:eth1, server:eth0]
      addresses: [10.1.0.1/24, 10.1.0.10/24]
ipsec:
  office:
    initiator: {node: laptop, id: "email:laptop@home.example"}
    responder: {node: office-gw, id: "fqdn:office.example"}
    auth: {method: psk, secret: lab-only-secret}
    ike: {mode: main, proposals: [aes128-sha256-modp2048]}
    child: {local-ts: 192.168.1.10/32, remote-ts: 10.1.0.0/24, esp: [aes128gcm16], start: start}
script:
  - expect: {event: phase2-up, connection: office, node: office-gw, within: 10s}
  - expect: {ping: {from: laptop, to: 10.1.0.10, count: 3, interval: 100ms}, success: 100%%}
  - expect: {ping: {from: server, to: 192.168.1.10, count: 2, interval: 100ms}, success: 100%%}
  - nat-flush: home-nat
%s`, laptopKind, officeKind, script)
}

// A charon client behind a NAT that reboots keeps its tunnel with an ipseclab
// gateway: charon's first ESP packet after the reboot comes from a new port,
// and the gateway follows it at once.
func TestInteropNATRebootCharonClient(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("nrc%d", os.Getpid()%100000)
	lab := writeLab(t, name, natRebootLab("strongswan", "gateway", `  - expect: {ping: {from: laptop, to: 10.1.0.10, count: 3, interval: 100ms}, success: 100%}
  - expect: {event: nat-mapping-changed, node: office-gw, within: 2s}
  - expect: {ping: {from: server, to: 192.168.1.10, count: 3, interval: 100ms}, success: 100%}
`))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "run", lab)
	if r.code != 0 || !strings.Contains(r.stdout, "NAT mapping of laptop@home.example changed: 198.51.100.2:") {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// An ipseclab client behind a NAT that reboots, with a charon gateway.
// charon with kernel-libipsec does not follow ESP from a new port (libipsec
// raises no mapping events, unlike Linux's XFRM), but it follows an
// authenticated IKE message when the peer is behind a NAT (update_hosts with
// COND_NAT_THERE). The client's DPD sends one: its pings get no answer, so
// after the delay it asks R-U-THERE from the new port; charon moves the IKE
// SA there and, since libipsec cannot move an SA in place, negotiates a new
// CHILD SA pair (a Quick Mode it starts), then answers, and traffic flows
// again.
func TestInteropNATRebootCharonGateway(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("nrg%d", os.Getpid()%100000)
	body := natRebootLab("gateway", "strongswan", `  - expect: {ping: {from: laptop, to: 10.1.0.10, count: 40, interval: 100ms, background: true}, success: 50%}
  - expect: {event: dpd-ack, node: laptop, within: 4s}
  - wait: 1s
  - expect: {ping: {from: server, to: 192.168.1.10, count: 3, interval: 100ms}, success: 100%}
`)
	body = strings.Replace(body, "proposals: [aes128-sha256-modp2048]}", "proposals: [aes128-sha256-modp2048], dpd: {delay: 1s, timeout: 10s}}", 1)
	lab := writeLab(t, name, body)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "run", lab)
	if r.code != 0 || strings.Count(r.stdout, "IPsec SAs office established (strongSwan)") < 2 {
		t.Fatalf("run: exit %d; want the tunnel back, by a new CHILD SA from charon\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// The nat-mapping-expiry lab with charon on both laptops: charon.keep_alive
// follows the lab's `nat-t: {keepalive: ...}`, so Alice's charon keeps her
// mapping alive every 3 s and Bob's sends nothing; when Bob's charon speaks
// again from a new port, our gateway follows it.
func TestInteropNATMappingExpiryCharonLaptops(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	src, err := os.ReadFile("../../labs/nat-mapping-expiry/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.SplitN(string(src), "\n", 2)[1] // without its name line
	body = regexp.MustCompile(`(?m)^(    (alice|bob): +\{kind: )gateway,`).ReplaceAllString(body, "${1}strongswan,")
	if strings.Count(body, "kind: strongswan") != 2 {
		t.Fatal("the lab's laptops are no longer where this test expects them")
	}
	// charon publishes no keepalive events; the mappings tell the story.
	body = strings.Replace(body, "  - expect: {event: nat-keepalive, node: alice}\n", "", 1)
	name := fmt.Sprintf("nme%d", os.Getpid()%100000)
	lab := writeLab(t, name, body)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "run", lab)
	if r.code != 0 || !strings.Contains(r.stdout, "NAT mapping of bob@home.example changed") || strings.Contains(r.stdout, "mapping expired: udp 192.168.1.10:4500") {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// The nat-reboot lab, measured from its events: while the laptop pings, a
// NAT reboot costs at most the one reply already on its way; while the
// laptop only listens, the server's stream is lost from the reboot until
// the laptop's next packet, give or take what is in flight.
func TestNATRebootRecoversOnTheClientsFirstPacket(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("nrb%d", os.Getpid()%100000)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	r := run(t, "run", "--json", "--name", name, "nat-reboot")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	var flushes, pings []time.Time
	var changes int
	var ping40 map[string]any
	var stream labrun.TrafficResult
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e events.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		switch {
		case e.Kind == events.NATFlush:
			flushes = append(flushes, e.Time)
		case e.Kind == events.NATMapChanged && e.Node == "office-gw":
			changes++
		case e.Kind == events.ScriptStep && e.Fields["action"] == "expect" && strings.Contains(e.Message, "expect ping laptop → 10.1.0.10 succeeds ≥ 100%"):
			pings = append(pings, e.Time)
		case e.Kind == events.PingResult && e.Fields["sent"] == 40.0:
			ping40 = e.Fields
		case e.Kind == events.TrafficReport:
			b, _ := json.Marshal(e.Fields["result"])
			if err := json.Unmarshal(b, &stream); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(flushes) != 2 || len(pings) != 1 || changes != 2 || ping40 == nil || stream.Sent == 0 {
		t.Fatalf("flushes %v, the laptop's ping %v, %d mapping changes, ping %v, stream %+v", flushes, pings, changes, ping40, stream)
	}
	if lost := ping40["sent"].(float64) - ping40["received"].(float64); lost > 1 {
		t.Errorf("the laptop's pings lost %v replies across the reboot, want at most 1", lost)
	}
	// Between the reboot and the laptop's ping the stream is lost: that
	// long at the stream's pace, give or take the datagrams in flight (a
	// 10 ms link each way), two pacing intervals and the scheduler's slack.
	outage := pings[0].Sub(flushes[1])
	pace := stream.GapTime / time.Duration(max(stream.LongestGap, 1))
	if stream.Lost != stream.LongestGap || stream.GapTime > outage+50*time.Millisecond+2*pace || stream.GapTime < outage-50*time.Millisecond-2*pace {
		t.Errorf("stream lost %d, in one gap of %d (%s); the path was down for %s", stream.Lost, stream.LongestGap, stream.GapTime, outage)
	}
	t.Logf("ping: %v of 40 replies; stream: %d lost in one gap of %s, outage %s", ping40["received"], stream.Lost, stream.GapTime, outage)
}
