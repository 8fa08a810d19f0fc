package web

import (
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/topology"
)

const twoGateways = `name: lv
seed: 7
topology:
  nodes:
    alice: {kind: host, gateway: 10.1.0.1}
    gw-a:  {kind: gateway, gateway: 192.168.1.1}
    nat:   {kind: nat, gateway: 203.0.113.2}
    gw-b:  {kind: gateway, gateway: 203.0.113.1}
    bob:   {kind: host}
    carol: {kind: host}
  links:
    - endpoints: [alice:eth0, gw-a:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [gw-a:eth0, nat:eth0]
      addresses: [192.168.1.2/24, 192.168.1.1/24]
      impair: {delay: 30ms, loss: 1%}
    - endpoints: [nat:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
  lans:
    - name: office
      members: [gw-b:eth1, bob:eth0, carol:eth0]
      addresses: [10.2.0.1/24, 10.2.0.10/24, 10.2.0.11/24]
ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {method: psk, secret: lab-only-secret}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24}
`

// TestLabViewOfALabFile: nodes with kinds and interfaces, links with their
// impairment in the lab file's words, LANs, connections.
func TestLabViewOfALabFile(t *testing.T) {
	lab, err := topology.Parse("lv.yaml", []byte(twoGateways))
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Mode: Live, Lab: lab})
	v := s.LabView()
	if v.Name != "lv" || v.Mode != Live || v.Seed == nil || *v.Seed != 7 || v.Inferred {
		t.Fatalf("%+v", v)
	}
	kinds := map[string]string{}
	for _, n := range v.Nodes {
		kinds[n.Name] = n.Kind
	}
	if kinds["gw-a"] != "gateway" || kinds["nat"] != "nat" || kinds["bob"] != "host" || len(kinds) != 6 {
		t.Errorf("kinds %v", kinds)
	}
	if len(v.Links) != 3 || v.Links[1].A != (EndpointView{"gw-a", "eth0"}) || v.Links[1].B != (EndpointView{"nat", "eth0"}) {
		t.Fatalf("links %+v", v.Links)
	}
	if imp := string(v.Links[1].Impair); !strings.Contains(imp, `"delay"`) || !strings.Contains(imp, "a-to-b") {
		t.Errorf("impair %s", imp)
	}
	if string(v.Links[0].Impair) != "{}" {
		t.Errorf("unimpaired link: %s", v.Links[0].Impair)
	}
	if len(v.LANs) != 1 || v.LANs[0].ID != "office" || len(v.LANs[0].Members) != 3 {
		t.Errorf("lans %+v", v.LANs)
	}
	for _, n := range v.Nodes {
		if n.Name == "gw-b" {
			if len(n.Interfaces) != 2 || n.Interfaces[1].Link != "office" || n.Interfaces[1].Addresses[0] != "10.2.0.1/24" {
				t.Errorf("gw-b %+v", n.Interfaces)
			}
		}
	}
	if len(v.Connections) != 1 || strings.Join(v.Connections[0].Nodes, ",") != "gw-a,gw-b" {
		t.Errorf("connections %+v", v.Connections)
	}
}

// TestLabViewInferred: without a lab file, the nodes, kinds, links and
// connections the events name.
func TestLabViewInferred(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s := NewServer(Config{Mode: Replay})
	s.Load(recs)
	v := s.LabView()
	if !v.Inferred || v.Name != recs[0].Event.Lab || v.Seed == nil {
		t.Fatalf("%+v", v)
	}
	kinds := map[string]string{}
	for _, n := range v.Nodes {
		kinds[n.Name] = n.Kind
	}
	if kinds["gw-a"] != "gateway" || kinds["isp"] != "router" || kinds["alice"] != "host" {
		t.Errorf("kinds %v", kinds)
	}
	if len(v.Links) != 4 {
		t.Errorf("links %+v", v.Links)
	}
	if len(v.Connections) != 1 || strings.Join(v.Connections[0].Nodes, ",") != "gw-a,gw-b" {
		t.Errorf("connections %+v", v.Connections)
	}
}
