package labrun

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/topology"
)

// The permanent neighbours of a lab: both ends of every link, the next hops
// of each node on a LAN, and IPsec peers that share a LAN; nothing for LAN
// members that only might talk.
func TestNeighbourPins(t *testing.T) {
	lab, err := topology.Parse("lab.yaml", []byte(`name: pins
topology:
  nodes:
    a:  {kind: host, gateway: 10.0.1.1}
    r1: {kind: router, routes: [{to: 10.9.0.0/16, via: 10.0.2.20}]}
    b:  {kind: host, gateway: 10.0.2.1}
    c:  {kind: host, gateway: 10.0.2.1}
    g1: {kind: gateway, gateway: 10.0.2.1}
    g2: {kind: gateway, gateway: 10.0.2.1}
  links:
    - endpoints: [a:eth0, r1:eth0]
      addresses: [10.0.1.10/24, 10.0.1.1/24]
  lans:
    - name: lan2
      members: [r1:eth1, b:eth0, c:eth0, g1:eth0, g2:eth0]
      addresses: [10.0.2.1/24, 10.0.2.10/24, 10.0.2.11/24, 10.0.2.20/24, 10.0.2.30/24]
ipsec:
  vpn:
    initiator: g1
    responder: g2
    auth: {secret: s}
    child: {local-ts: 10.0.2.20/32, remote-ts: 10.0.2.30/32, mode: transport}
`))
	if err != nil {
		t.Fatal(err)
	}
	pins := neighbourPins(lab)
	show := func(node string) string {
		var out []string
		for _, p := range pins[node] {
			out = append(out, fmt.Sprintf("%s %s=%s", p.iface, p.addr, p.peer))
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	for node, want := range map[string]string{
		"a":  "eth0 10.0.1.1=r1:eth0",                         // the link's other end, also a's gateway
		"r1": "eth0 10.0.1.10=a:eth0, eth1 10.0.2.20=g1:eth0", // the link, and the next hop of its route
		"b":  "eth0 10.0.2.1=r1:eth1",                         // its gateway; not c, nor the gateways
		"c":  "eth0 10.0.2.1=r1:eth1",
		"g1": "eth0 10.0.2.1=r1:eth1, eth0 10.0.2.30=g2:eth0", // its gateway and its IKE peer
		"g2": "eth0 10.0.2.1=r1:eth1, eth0 10.0.2.20=g1:eth0",
	} {
		if got := show(node); got != want {
			t.Errorf("%s pins %q, want %q", node, got, want)
		}
	}
}
