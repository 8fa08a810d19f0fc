package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
)

// These tests render recorded values; they deploy nothing.

var renderSAs = []labrun.SAInfo{
	{Node: "laptop", Impl: "ipseclab", Conn: "office", Type: "isakmp", State: "established", Role: "initiator",
		Local: "192.168.1.10:4500", Remote: "203.0.113.2:4500", SPIIn: "16e785aefd2ddbc2", SPIOut: "d999642809e53612",
		Proposal: "aes128-sha256-modp2048", Encap: true, Age: "1s"},
	{Node: "laptop", Impl: "ipseclab", Conn: "office", Type: "esp", State: "installed",
		Local: "192.168.1.10:4500", Remote: "203.0.113.2:4500", SPIIn: "7b587b03", SPIOut: "da1f9a87",
		Proposal: "aes128gcm16", Mode: "tunnel", Encap: true, LocalTS: "192.168.1.10/32", RemoteTS: "10.1.0.0/24", Age: "1s",
		PacketsIn: 8, PacketsOut: 8, BytesIn: 672, BytesOut: 672, OtherDrops: 1, MTU: 1435},
}

func maxWidth(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		w = max(w, timeline.DisplayWidth(l))
	}
	return w
}

// A table whose rows would wrap becomes one block per SA; one that fits
// stays a table.
func TestRenderSAsLayout(t *testing.T) {
	var wide, narrow, unlimited bytes.Buffer
	printSAs(&wide, renderSAs, 250)
	printSAs(&narrow, renderSAs, 80)
	printSAs(&unlimited, renderSAs, 0)
	if !strings.HasPrefix(wide.String(), "NODE ") || wide.String() != unlimited.String() {
		t.Errorf("at 250 columns (and with no limit) the SAs should be a table:\n%s", wide.String())
	}
	out := narrow.String()
	if maxWidth(out) > 80 {
		t.Errorf("the SAs do not fit 80 columns:\n%s", out)
	}
	for _, want := range []string{
		"laptop  office  isakmp  established  (ipseclab)",
		"  cookies    16e785aefd2ddbc2 (initiator) / d999642809e53612 (responder)",
		"  transport  UDP 4500 (NAT-T)",
		"laptop  office  esp  installed  (ipseclab)",
		"  local      192.168.1.10:4500",
		"  SPIs       in 7b587b03, out da1f9a87",
		"  mode       tunnel, ESP in UDP",
		"  selectors  192.168.1.10/32 === 10.1.0.0/24",
		"  inner MTU  1435",
		"  packets    8 in, 8 out",
		"  drops      0 replay, 0 integrity, 0 policy, 1 other",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
}

// inspect shows each node's routes in text, the TUN's table too.
func TestRenderInspectRoutes(t *testing.T) {
	info := &labrun.LabInfo{Lab: "tl", Nodes: []labrun.NodeInfo{
		{Name: "laptop", Kind: "gateway", Namespace: "ipseclab-tl.laptop", Present: true,
			Interfaces: []labrun.InterfaceInfo{{Name: "lo", Up: true, MTU: 65536}, {Name: "eth0", Up: true, MTU: 1500, Addrs: []string{"192.168.1.10/24"}}},
			Routes:     []string{"default via 192.168.1.1 dev eth0", "192.168.1.0/24 dev eth0", "10.1.0.0/24 dev ipsec0 mtu 1435 table 220"}},
		{Name: "server", Kind: "host", Namespace: "ipseclab-tl.server", Present: true,
			Interfaces: []labrun.InterfaceInfo{{Name: "eth0", Up: true, MTU: 1500, Addrs: []string{"10.1.0.10/24"}}},
			Routes:     []string{"default via 10.1.0.1 dev eth0"}},
	}, Links: []labrun.LinkStatus{{Name: "laptop:eth0--home-nat:eth0", AtoB: "laptop:eth0 → home-nat:eth0", BtoA: "home-nat:eth0 → laptop:eth0",
		Dirs: [2]string{"delay 15ms", ""}, Counters: [2]impair.Counters{{Sent: 15, Delivered: 15}, {Sent: 14, Delivered: 14}}}}}

	var wide bytes.Buffer
	printInfo(&wide, info, "", 0)
	for _, want := range []string{
		"laptop  default via 192.168.1.1 dev eth0\n",
		"        10.1.0.0/24 dev ipsec0 mtu 1435 table 220\n",
		"server  default via 10.1.0.1 dev eth0\n",
	} {
		if !strings.Contains(wide.String(), want) {
			t.Errorf("the routes table lacks %q:\n%s", want, wide.String())
		}
	}

	var narrow bytes.Buffer
	printInfo(&narrow, info, "", 60)
	out := narrow.String()
	if maxWidth(out) > 60 {
		t.Errorf("inspect does not fit 60 columns:\n%s", out)
	}
	for _, want := range []string{
		"laptop  gateway  ipseclab-tl.laptop\n",
		"  eth0   up, MTU 1500, 192.168.1.10/24\n",
		"  route  default via 192.168.1.1 dev eth0\n",
		"         10.1.0.0/24 dev ipsec0 mtu 1435 table 220\n",
		"laptop:eth0--home-nat:eth0\n",
		"  laptop:eth0 → home-nat:eth0  delay 15ms\n",
		"  home-nat:eth0 → laptop:eth0  unimpaired\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the vertical layout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NODE ") || strings.Contains(out, "LINK ") {
		t.Errorf("a table header in the vertical layout:\n%s", out)
	}
}

// --width wins, then the terminal (none under go test), then $COLUMNS, then
// no limit.
func TestOutputWidth(t *testing.T) {
	t.Setenv("COLUMNS", "")
	if w := outputWidth(-1); w != 0 {
		t.Errorf("no terminal and no $COLUMNS: width %d, want 0 (no limit)", w)
	}
	t.Setenv("COLUMNS", "91")
	if w := outputWidth(-1); w != 91 {
		t.Errorf("$COLUMNS=91: width %d", w)
	}
	if w := outputWidth(72); w != 72 {
		t.Errorf("--width 72: width %d", w)
	}
	if w := outputWidth(0); w != 0 {
		t.Errorf("--width 0: width %d, want 0 (no limit)", w)
	}
}

func renderStats(t *testing.T) []labrun.NodeStats {
	t.Helper()
	var nodes []labrun.NodeStats
	err := json.Unmarshal([]byte(`[
 {"node":"gw-a","impl":"ipseclab","counters":{"ike":{"received":12,"malformed":0},"data_plane":{"unknown_spi":0,"replay_drops":0},"stack":{"ike_queue_dropped":0}}},
 {"node":"gw-b","impl":"ipseclab","counters":{"ike":{"received":9,"malformed":1},"data_plane":{"unknown_spi":1234,"replay_drops":2},"stack":{"ike_queue_dropped":0}}},
 {"node":"sw","impl":"strongswan","counters":{"ike":{"ike_sas":1,"half_open":0}},"note":"charon reports no drops"}]`), &nodes)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// stats is a table with a column per node, values right-aligned, a "-" where
// a node has no such counter, and notes below; too narrow, a block per node
// and group.
func TestRenderStatsLayout(t *testing.T) {
	nodes := renderStats(t)
	var wide, narrow bytes.Buffer
	printStats(&wide, nodes, 0)
	want := `COUNTER              gw-a  gw-b  sw
IKE
  received             12     9   -
  malformed             0     1   -
  ike_sas               -     -   1
  half_open             -     -   0
data plane
  unknown_spi           0  1234   -
  replay_drops          0     2   -
stack
  ike_queue_dropped     0     0   -
sw (strongswan): charon reports no drops
`
	if wide.String() != want {
		t.Errorf("stats table:\n%s\nwant:\n%s", wide.String(), want)
	}
	printStats(&narrow, nodes, 30)
	out := narrow.String()
	if maxWidth(out) > 30 {
		t.Errorf("stats do not fit 30 columns:\n%s", out)
	}
	for _, want := range []string{
		"gw-b (ipseclab)  data plane\n  unknown_spi   1234\n  replay_drops  2\n",
		"sw (strongswan)  IKE\n  ike_sas    1\n  half_open  0\n  note       charon reports no\n             drops\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
}
