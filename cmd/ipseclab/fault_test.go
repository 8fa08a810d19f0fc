package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// faultLab is two ipseclab gateways and a connection that the script brings
// up by hand.
func faultLab(script string) string {
	return twoSites("gwa", "gateway", "gwb", "gateway", `ipsec:
  office:
    initiator: gwa
    responder: gwb
    auth: {secret: fault-secret}
    ike: {proposals: [aes128-sha256-modp2048]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128-sha256], start: none}
`+script)
}

// The script's fault: steps, each with the reaction the lesson is about, as
// expectations: a dropped Main Mode 4/6 retransmitted, a forged Delete
// ignored, a corrupted ESP packet counted as an integrity failure.
func TestFaultStepsInALab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("fts%d", os.Getpid()%100000)
	lab := writeLab(t, name, faultLab(`script:
  - fault: {node: gwb, message: main-mode 4/6, drop: true}
  - tunnel-up: office
  - expect: {event: fault-injected, node: gwb, within: 5s}
  - expect: {event: ike-retransmit, node: gwa, within: 5s}
  - expect: {event: phase2-up, node: gwa, within: 10s}
  - fault: {node: gwa, forge: delete}
  - expect: {event: unprotected-ignored, node: gwb, within: 3s}
  - expect: {event: sa-deleted, within: 1s, absent: true}
  - fault: {node: gwa, esp: corrupt}
  - expect: {ping: {from: alice, to: 10.2.0.10, count: 3, interval: 200ms, timeout: 500ms}, success: 66%}
  - expect: {sa: {node: gwb, connection: office}, counter: integrity-failures, min: 1, max: 1}
`))
	r := run(t, "run", lab, "--width", "0")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "fault injected: gwb dropped Main Mode 4/6") {
		t.Errorf("the timeline does not show the fault:\n%s", r.stdout)
	}
}

// ipseclab fault arms a fault on a deployed lab as the step does, and
// refuses, with a sentence naming the flag, what makes no sense.
func TestFaultVerb(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("ftv%d", os.Getpid()%100000)
	lab := writeLab(t, name, faultLab(""))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := run(t, "fault", "-t", lab, "gwb", "--message", "quick-mode 2/3", "--drop"); r.code != 0 || !strings.Contains(r.stdout, "gwb: armed: drop the next quick-mode 2/3") {
		t.Fatalf("fault: %+v", r)
	}
	if r := run(t, "tunnel", "up", "-t", lab, "office"); r.code != 0 {
		t.Fatalf("tunnel up through a dropped Quick Mode 2/3: %+v", r)
	}
	if r := run(t, "stats", "-t", lab, "gwb", "--json"); !strings.Contains(r.stdout, `"faults_injected": 1`) && !strings.Contains(r.stdout, `"faults_injected":1`) {
		t.Errorf("gwb's stats do not count the fault: %s", r.stdout)
	}
	if r := run(t, "fault", "-t", lab, "gwa", "--message", "dpd", "--drop", "--every"); r.code != 0 {
		t.Fatalf("fault --every: %+v", r)
	}
	// --list shows what is armed and what remains of it.
	if r := run(t, "fault", "-t", lab, "gwa", "--esp", "replay", "--count", "3"); r.code != 0 {
		t.Fatalf("fault --esp: %+v", r)
	}
	if r := run(t, "fault", "-t", lab, "gwa", "--list"); r.code != 0 || !strings.Contains(r.stdout, "gwa: 2 faults armed") ||
		!strings.Contains(r.stdout, "drop every dpd: every match until cleared") || !strings.Contains(r.stdout, "replay the next 3 outbound ESP/AH packets: 3 more matches") {
		t.Errorf("fault --list: %+v", r)
	}
	if r := run(t, "fault", "-t", lab, "gwb", "--list"); r.code != 0 || !strings.Contains(r.stdout, "gwb: no fault armed") {
		t.Errorf("fault --list on a node whose fault was spent: %+v", r)
	}
	r := run(t, "fault", "-t", lab, "gwa", "--list", "--json")
	var list labrun.FaultList
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || list.Node != "gwa" || len(list.Faults) != 2 ||
		list.Faults[0].Message != "dpd" || list.Faults[0].Remaining != -1 || list.Faults[1].Plane != "esp" || list.Faults[1].Remaining != 3 {
		t.Errorf("fault --list --json: %+v (%v): %+v", r, err, list)
	}
	if r := run(t, "fault", "-t", lab, "gwa", "--esp", "reorder", "--for", "30s"); r.code != 0 {
		t.Fatalf("fault --for: %+v", r)
	}
	if r := run(t, "fault", "-t", lab, "gwa", "--list"); !strings.Contains(r.stdout, "every match until ") || !strings.Contains(r.stdout, "s left)") {
		t.Errorf("fault --list of a fault armed for 30s: %+v", r)
	}
	if r := run(t, "fault", "-t", lab, "gwa", "--clear"); r.code != 0 || !strings.Contains(r.stdout, "gwa: 3 faults cleared") {
		t.Errorf("fault --clear: %+v", r)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"isp", "--message", "main-mode 1/6", "--drop"}, "isp is a router node of lab " + name + ", which has no ipseclab IKE engine"},
		{[]string{"gwa", "--message", "main-mode 9/6", "--drop"}, "--message: message \"main-mode 9/6\": main-mode has messages 1/6 to 6/6"},
		{[]string{"gwa", "--message", "main-mode 1/6", "--omit", "hash"}, "--omit: main-mode 1/6 carries no hash payload"},
		{[]string{"gwa", "--message", "main-mode 1/6"}, "a fault needs one action"},
		{[]string{"gwa", "--forge", "delete", "--connection", "nope"}, `"nope" is not a connection`},
		{[]string{"gwa", "--list", "--drop"}, "--list takes no action"},
		{[]string{"gwa", "--message", "dpd", "--drop", "--json"}, "--json goes with --list"},
		{[]string{"isp", "--list"}, "isp is a router node"},
	} {
		r := run(t, append([]string{"fault", "-t", lab}, bad.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("fault %v: %+v, want an error with %q", bad.args, r, bad.want)
		}
	}
}

// The robustness sweep's strongSwan subset: faults on our gateway's
// messages, charon as the peer, each case ending in recovery or in a clean
// failure with the notification charon sends. charon answers a refused
// HASH_I with a protected AUTHENTICATION-FAILED (it holds our keys by then),
// which ends our phase 1 at once, and a refused HASH(1) with
// INVALID-HASH-INFORMATION; it ignores a Delete or INITIAL-CONTACT in the
// clear, and its kernel-libipsec drops replayed and corrupted ESP.
func TestFaultsAgainstStrongSwan(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("fsw%d", os.Getpid()%100000)
	const ping = "{ping: {from: alice, to: 10.2.0.10, count: 3, interval: 100ms, timeout: 500ms}"
	lab := writeLab(t, name, interopLab("gw", "sw", "main", "aes128-sha256-modp2048", "aes128-sha256")+`script:
  - fault: {node: gw, message: main-mode 5/6, corrupt: hash}
  - tunnel-up: mixed
  - expect: {event: auth-failed, node: gw, within: 5s, name: charon refuses HASH_I under the shared keys}
  - expect: {event: phase1-failed, node: gw, within: 1s}
  - wait: 1s
  - fault: {node: gw, message: main-mode 3/6, drop: true}
  - tunnel-up: mixed
  - expect: {event: ike-retransmit, node: gw, within: 5s}
  - expect: {event: phase2-up, node: gw, within: 10s}
  # charon installs its inbound SA on Quick Mode 3/3: the first ping may
  # overtake it.
  - expect: `+ping+`, success: 66%}
  - expect: `+ping+`, success: 100%}
  - fault: {node: gw, forge: delete}
  - fault: {node: gw, forge: initial-contact}
  - expect: {event: sa-deleted, within: 2s, absent: true}
  - expect: `+ping+`, success: 100%}
  - fault: {node: gw, esp: replay, count: 3}
  - expect: `+ping+`, success: 100%}
  - fault: {node: gw, esp: corrupt}
  - expect: `+ping+`, success: 66%, max-success: 67%}
  - tunnel-down: mixed
  - expect: {event: sa-deleted, node: sw, within: 5s}
  - fault: {node: gw, message: quick-mode 1/3, duplicate: true}
  - tunnel-up: mixed
  - expect: {event: phase2-up, node: gw, within: 10s}
  - expect: `+ping+`, success: 66%}
  - tunnel-down: mixed
  - expect: {event: sa-deleted, node: sw, within: 5s}
  - fault: {node: gw, message: quick-mode 1/3, corrupt: hash}
  - tunnel-up: mixed
  - expect: {event: phase2-failed, node: gw, within: 5s, name: charon answers INVALID-HASH-INFORMATION}
`)
	r := run(t, "run", lab, "--width", "0")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"received protected notification AUTHENTICATION-FAILED", "the responder answered with INVALID-HASH-INFORMATION"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, r.stdout)
		}
	}
}
