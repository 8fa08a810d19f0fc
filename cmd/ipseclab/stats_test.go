package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// statsOf runs `stats --json` with args and flattens one node's counters to
// "group.counter" → value.
func statsOf(t *testing.T, node string, args ...string) (map[string]float64, labrun.NodeStats) {
	t.Helper()
	r := run(t, append([]string{"stats", "--json"}, args...)...)
	var nodes []labrun.NodeStats
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil || r.code != 0 {
		t.Fatalf("stats %v: %v %+v", args, err, r)
	}
	for _, n := range nodes {
		if n.Node != node {
			continue
		}
		flat := map[string]float64{}
		for _, g := range n.Counters {
			for _, c := range g.Counters {
				var v float64
				if json.Unmarshal(c.Value, &v) == nil { // what is not a number is no counter
					flat[g.Name+"."+c.Name] = v
				}
			}
		}
		return flat, n
	}
	t.Fatalf("stats %v has no node %s: %s", args, node, r.stdout)
	return nil, labrun.NodeStats{}
}

// sendUDP sends one datagram from inside a lab node, as a host on the path
// could.
func sendUDP(t *testing.T, lab, node, to string, payload []byte) {
	t.Helper()
	err := namespace.Run(labrun.NetnsPath(labrun.NodeNetns(lab, node)), func() error {
		c, err := net.Dial("udp4", to)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// `stats` shows a gateway's counters outside its SAs: ESP for an SPI the
// gateway never made, and junk marked as IKE, sent to it from the router on
// the path, each move exactly the counter named for them (and, for the IKE
// junk, the counts of IKE received), and nothing else.
func TestStatsCountsEachDrop(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-stats", os.Getpid())
	lab := writeLab(t, name, twoSites("gw-a", "gateway", "gw-b", "gateway", `ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {secret: lab-only-secret}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, start: none}
`))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	for _, c := range []struct {
		name    string
		payload []byte
		want    []string
	}{
		{"ESP for an unknown SPI", []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 1, 2, 3, 4}, []string{"data_plane.unknown_spi"}},
		{"junk marked as IKE", []byte{0, 0, 0, 0, 1}, []string{"ike.malformed", "ike.received", "data_plane.ike_received"}},
	} {
		before, _ := statsOf(t, "gw-b", "--name", name, "gw-b")
		sendUDP(t, name, "isp", "203.0.113.2:4500", c.payload)
		var after map[string]float64
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			after, _ = statsOf(t, "gw-b", "--name", name, "gw-b")
			if after[c.want[0]] > before[c.want[0]] || time.Now().After(deadline) {
				break
			}
		}
		var moved []string
		for k, v := range after {
			if v != before[k] {
				moved = append(moved, fmt.Sprintf("%s %+g", k, v-before[k]))
			}
		}
		var want []string
		for _, k := range c.want {
			want = append(want, k+" +1")
		}
		slices.Sort(moved)
		slices.Sort(want)
		if !slices.Equal(moved, want) {
			t.Errorf("%s: moved %v; want %v", c.name, moved, want)
		}
	}

	// The table: both gateways side by side, the counter by its JSON name.
	r := run(t, "stats", "-t", lab)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "COUNTER ") || !strings.Contains(r.stdout, "gw-a  gw-b") {
		t.Fatalf("stats table: %+v", r)
	}
	var unknown string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "  unknown_spi ") {
			unknown = l
		}
	}
	if f := strings.Fields(unknown); len(f) != 3 || f[1] != "0" || f[2] != "1" {
		t.Errorf("unknown_spi row %q; want 0 on gw-a and 1 on gw-b:\n%s", unknown, r.stdout)
	}
	if r := run(t, "stats", "-t", lab, "--width", "30"); r.code != 0 || maxWidth(r.stdout) > 30 || !strings.Contains(r.stdout, "gw-b (ipseclab)  data plane\n") {
		t.Errorf("stats at 30 columns:\n%s", r.stdout)
	}
	if r := run(t, "stats", "-t", lab, "alice"); r.code == 0 || !strings.Contains(r.stderr, "alice runs no IPsec implementation") {
		t.Errorf("stats of a host: %+v", r)
	}
}
