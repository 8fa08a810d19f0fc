package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const goodLab = `name: demo
description: two sites
seed: 7
topology:
  nodes:
    a:   {kind: host, gateway: 10.1.0.1}
    gw1: {kind: gateway, gateway: 198.51.100.1}
    r:   {kind: router}
    gw2: {kind: gateway, gateway: 203.0.113.1}
    b:   {kind: host, gateway: 10.2.0.1}
    c:   {kind: host, gateway: 10.2.0.1}
  links:
    - endpoints: [a:eth0, gw1:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [gw1:eth0, r:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [r:eth1, gw2:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
  lans:
    - name: lan2
      members: [gw2:eth1, b:eth0, c:eth0]
      addresses: [10.2.0.1/24, 10.2.0.10/24, 10.2.0.11/24]
ipsec:
  office:
    initiator: gw1
    responder: {node: gw2, id: "fqdn:gw2.example"}
    auth: {secret: s3cret}
    ike: {proposals: [aes256-sha1-modp1024, aes128-sha256-ecp256], dpd: {delay: 10s}}
    child: {local-ts: 10.1.0.0/24, remote-ts: [10.2.0.0/24], esp: [aes128gcm16], pfs: modp2048}
script:
  - ping: {from: a, to: 10.2.0.10, count: 3}
  - expect: {event: phase1-up, connection: office, within: 5s}
  - link: {name: gw1:eth0, down: true, at: 20s}
  - wait: 2s
  - tunnel-down: office
`

func TestGoodLabDecodesWithDefaultsAndDerivedFields(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(goodLab))
	if err != nil {
		t.Fatalf("good lab rejected:\n%v", err)
	}
	if lab.Name != "demo" || *lab.Seed != 7 || len(lab.Topology.Nodes) != 6 {
		t.Fatalf("decoded %+v", lab)
	}
	gw2 := lab.Topology.Nodes["gw2"]
	if len(gw2.Ifaces) != 2 || gw2.Iface("eth1").LAN == nil || gw2.Iface("eth0").Peer.Node != "r" {
		t.Fatalf("gw2 interfaces not derived: %+v", gw2.Ifaces)
	}
	c := lab.IPsec["office"]
	if c.Initiator.Address.String() != "198.51.100.2" || c.Responder.Address.String() != "203.0.113.2" {
		t.Errorf("default IKE addresses: %s %s", c.Initiator.Address, c.Responder.Address)
	}
	if c.IKE.Mode != "main" || c.Child.Mode != "tunnel" || c.Child.Start != "trap" || c.IKE.DPD.Timeout.Seconds() != 50 {
		t.Errorf("defaults not applied: %+v %+v", c.IKE, c.Child)
	}
	if len(c.ChildProposals) != 1 || c.ChildProposals[0].String() != "aes128gcm16-modp2048" {
		t.Errorf("pfs not folded into the child proposals: %v", c.ChildProposals)
	}
	if len(c.IKEProposals) != 2 || c.IKEProposals[1].String() != "aes128-sha256-ecp256" {
		t.Errorf("ike proposals: %v", c.IKEProposals)
	}
	if name, _, n := lab.Script[2].Action(); name != "link" || n != 1 || lab.Script[2].StepAt().Seconds() != 20 {
		t.Errorf("script step 2: %s %d %v", name, n, lab.Script[2].StepAt())
	}
	if lab.Script[3].Wait.For.Seconds() != 2 || lab.Script[4].TunnelDown.Connection != "office" {
		t.Errorf("shorthand steps: %+v %+v", lab.Script[3].Wait, lab.Script[4].TunnelDown)
	}
	if lab.Script[1].Pos.Line != 32 {
		t.Errorf("script step position: %v", lab.Script[1].Pos)
	}
}

// replace swaps one line of the good lab for a broken one.
func replace(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(goodLab, old) {
		t.Fatalf("test setup: %q not in the good lab", old)
	}
	return strings.Replace(goodLab, old, new, 1)
}

func lineOf(src, needle string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, needle) {
			return i + 1
		}
	}
	return -1
}

func TestEachClassOfBadInputIsReportedWithItsPosition(t *testing.T) {
	cases := []struct {
		name       string
		old, new   string
		atLine     string // the line the error must point at (a substring of it)
		col        int    // 0: do not check
		wantSubstr string
	}{
		{"unknown key", "    r:   {kind: router}", "    r:   {kind: router, colour: red}", "colour: red", 25, `unknown field "colour"`},
		{"unknown top-level key", "seed: 7", "seeds: 7", "seeds: 7", 1, `did you mean "seed"?`},
		{"wrong type", "seed: 7", "seed: seven", "seed: seven", 7, "must be a non-negative integer"},
		{"wrong type for a list", "      members: [gw2:eth1, b:eth0, c:eth0]", "      members: gw2:eth1", "members: gw2:eth1", 16, "must be a list"},
		{"duplicate node name", "    c:   {kind: host, gateway: 10.2.0.1}", "    c:   {kind: host, gateway: 10.2.0.1}\n    b:   {kind: host}", "    b:   {kind: host}", 5, `node "b" is defined twice (first at line 10)`},
		{"unknown node kind", "    r:   {kind: router}", "    r:   {kind: ruter}", "kind: ruter", 17, `unknown node kind "ruter" (did you mean "router"?`},
		{"endpoint names an unknown node", "[r:eth1, gw2:eth0]", "[r:eth1, gw3:eth0]", "gw3:eth0", 0, `names unknown node "gw3"`},
		{"endpoint syntax", "[r:eth1, gw2:eth0]", "[r:eth1, gw2]", "[r:eth1, gw2]", 0, "must be written node:interface"},
		{"interface used twice", "[r:eth1, gw2:eth0]", "[r:eth0, gw2:eth0]", "[r:eth0, gw2:eth0]", 0, "interface r:eth0 is used twice (first at line 15)"},
		{"invalid address", "[203.0.113.1/24, 203.0.113.2/24]", "[203.0.113.1/24, 203.0.113.300/24]", "203.0.113.300", 0, `"203.0.113.300/24" is not a valid interface address`},
		{"address without prefix length", "[203.0.113.1/24, 203.0.113.2/24]", "[203.0.113.1/24, 203.0.113.2]", "203.0.113.2]", 0, "needs a prefix length"},
		{"duplicate address", "[203.0.113.1/24, 203.0.113.2/24]", "[203.0.113.1/24, 198.51.100.2/24]", "198.51.100.2/24]", 0, "address 198.51.100.2 is already assigned to gw1:eth0"},
		{"network address", "[10.2.0.1/24, 10.2.0.10/24, 10.2.0.11/24]", "[10.2.0.1/24, 10.2.0.0/24, 10.2.0.11/24]", "10.2.0.0/24,", 0, "is the network address"},
		{"interface name over 15 bytes", "[a:eth0, gw1:eth1]", "[a:eth0, gw1:a-very-long-ifname]", "a-very-long-ifname", 0, "Linux allows at most 15"},
		{"route via an unreachable next hop", "    r:   {kind: router}", "    r:   {kind: router, routes: [{to: 10.1.0.0/24, via: 192.0.2.1}]}", "via: 192.0.2.1", 0, "next hop 192.0.2.1 is unreachable from r"},
		{"gateway unreachable", "    c:   {kind: host, gateway: 10.2.0.1}", "    c:   {kind: host, gateway: 10.3.0.1}", "gateway: 10.3.0.1", 0, "next hop 10.3.0.1 is unreachable from c"},
		{"transport selectors other than the endpoints", "child: {local-ts: 10.1.0.0/24, remote-ts: [10.2.0.0/24],", "child: {mode: transport, local-ts: 10.1.0.0/24, remote-ts: [10.2.0.0/24],", "mode: transport", 0, "local-ts must be the initiator's address"},
		{"bad proposal", "aes128-sha256-ecp256]", "aes128-sha256-ecp257]", "ecp257", 0, `unknown algorithm "ecp257"`},
		{"ipsec on a router", "    initiator: gw1", "    initiator: r", "initiator: r", 0, "IPsec connections need a node of kind gateway or strongswan"},
		{"bad duration", "within: 5s}", "within: 5}", "within: 5}", 0, "a duration needs a unit"},
		{"bad dpd mode", "dpd: {delay: 10s}", "dpd: {delay: 10s, mode: lazy}", "mode: lazy", 0, `dpd mode "lazy" is neither periodic nor on-demand`},
		{"bad dpd action", "dpd: {delay: 10s}", "dpd: {delay: 10s, action: trap}", "action: trap", 0, `dpd action "trap" is not clear, restart or hold`},
		{"unknown script action", "  - wait: 2s", "  - sleep: 2s", "sleep: 2s", 0, `unknown field "sleep" in script entry`},
		{"unknown event", "event: phase1-up", "event: phase-1-up", "phase-1-up", 0, `unknown event "phase-1-up" (did you mean "phase1-up"?`},
		{"traffic rate without a unit", "  - wait: 2s", "  - traffic: {from: a, to: 10.2.0.10, rate: 1000000}", "rate: 1000000", 0, `rate: "1000000" needs a unit`},
		{"link in script unknown", "{name: gw1:eth0, down: true, at: 20s}", "{name: gw1:eth9, down: true, at: 20s}", "gw1:eth9", 0, `no link has endpoint "gw1:eth9"`},
		{"not YAML", "seed: 7", "seed: [7", "", 0, "not valid YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := replace(t, tc.old, tc.new)
			_, err := Parse("lab.yaml", []byte(src))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want topology.Errors, got %v", err)
			}
			var hit *Error
			for _, e := range errs {
				if strings.Contains(e.Msg, tc.wantSubstr) {
					hit = e
				}
			}
			if hit == nil {
				t.Fatalf("no error contains %q; got:\n%v", tc.wantSubstr, err)
			}
			if hit.Pos.File != "lab.yaml" || hit.Pos.Line == 0 {
				t.Fatalf("error has no position: %v", hit)
			}
			if tc.atLine != "" {
				if want := lineOf(src, tc.atLine); hit.Pos.Line != want {
					t.Errorf("error at line %d, want %d (%q): %v", hit.Pos.Line, want, tc.atLine, hit)
				}
			}
			if tc.col != 0 && hit.Pos.Col != tc.col {
				t.Errorf("error at column %d, want %d: %v", hit.Pos.Col, tc.col, hit)
			}
			if !strings.HasPrefix(hit.Error(), "lab.yaml:") {
				t.Errorf("error is not in file:line:col form: %q", hit.Error())
			}
		})
	}
}

func TestAllErrorsAreReportedAtOnceInFileOrder(t *testing.T) {
	src := replace(t, "    r:   {kind: router}", "    r:   {kind: ruter, colour: red}")
	src = strings.Replace(src, "[r:eth1, gw2:eth0]", "[r:eth1, gw3:eth0]", 1)
	src = strings.Replace(src, "seed: 7", "seed: x", 1)
	_, err := Parse("lab.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) < 4 {
		t.Fatalf("want at least 4 errors at once, got:\n%v", err)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Pos.Line < errs[i-1].Pos.Line {
			t.Fatalf("errors not in file order:\n%v", err)
		}
	}
}

func TestSchemaIsValidJSONCoveringTheFormat(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	for _, k := range []string{"name", "topology", "ipsec", "script", "seed"} {
		if props[k] == nil {
			t.Errorf("schema lacks %q", k)
		}
	}
	nodes := props["topology"].(map[string]any)["properties"].(map[string]any)["nodes"].(map[string]any)
	kind := nodes["additionalProperties"].(map[string]any)["properties"].(map[string]any)["kind"].(map[string]any)
	if ref, ok := kind["$ref"].(string); ok { // defined once under $defs
		kind = s["$defs"].(map[string]any)[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
	}
	if enum, _ := kind["enum"].([]any); len(enum) != len(Kinds) {
		t.Errorf("kind enum: %v", kind)
	}
	if s["additionalProperties"] != false {
		t.Error("schema allows unknown top-level keys; the decoder does not")
	}
}

func TestGraphFormats(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(goodLab))
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string][]string{
		"dot":     {`graph "demo"`, `"gw1" -- "r"`, `"lan:lan2"`, "IPsec office"},
		"mermaid": {"flowchart LR", "gw1{{", "lan_lan2", "-.IPsec office.-"},
		"ascii":   {"gw1:eth0 198.51.100.2/24", "LAN lan2", "└─ c:eth0 10.2.0.11/24", "gw1 (198.51.100.2) ⇄ gw2 (203.0.113.2)"},
	} {
		out, err := lab.Graph(format)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s graph lacks %q:\n%s", format, w, out)
			}
		}
	}
	if _, err := lab.Graph("png"); err == nil {
		t.Error("unknown format accepted")
	}
}

// fuzzSmallLab is a whole lab with a connection and a script in 200 bytes.
const fuzzSmallLab = `name: x
topology:
  nodes: {a: {kind: gateway}, b: {kind: gateway}}
  links: [{endpoints: [a:e, b:e], addresses: [10.0.0.1/24, 10.0.0.2/24]}]
ipsec: {c: {initiator: a, responder: b, auth: {secret: s}, child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24}}}
script: [{wait: 1s}]
`

// The decoder never panics, whatever the file holds. Inputs stay under
// fuzzMaxLab: the fuzzer's minimisation of a new input costs the square of
// its length times a parse, and with the 1.2 KB goodLab as a seed it ate the
// whole run. FuzzParseLab reaches deeper into a whole lab.
func FuzzParse(f *testing.F) {
	const fuzzMaxLab = 320
	if _, err := Parse("fuzz.yaml", []byte(fuzzSmallLab)); err != nil {
		f.Fatalf("the seed lab is not valid: %v", err)
	}
	f.Add([]byte(fuzzSmallLab))
	f.Add([]byte("name: x\ntopology: {nodes: {a: {kind: host}}}\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("<<: [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxLab {
			return
		}
		lab, err := Parse("fuzz.yaml", data)
		if err == nil && lab == nil {
			t.Fatal("nil lab without an error")
		}
	})
}

// fuzzLabTemplate is goodLab's sections in flow style, with holes that
// FuzzParseLab fills: a connection's ike and child settings, and a script
// step.
const fuzzLabTemplate = `name: demo
topology:
  nodes: {a: {kind: host, gateway: 10.1.0.1}, gw1: {kind: gateway, gateway: 192.0.2.2}, gw2: {kind: gateway, gateway: 192.0.2.1}, b: {kind: host, gateway: 10.2.0.1}}
  links:
  - {endpoints: [a:eth0, gw1:eth1], addresses: [10.1.0.10/24, 10.1.0.1/24]}
  - {endpoints: [gw1:eth0, gw2:eth0], addresses: [192.0.2.1/24, 192.0.2.2/24]}
  lans: [{name: l, members: [gw2:eth1, b:eth0], addresses: [10.2.0.1/24, 10.2.0.10/24]}]
ipsec:
  o:
    initiator: gw1
    responder: {node: gw2, id: "fqdn:x"}
    auth: {secret: s}
    ike: %s
    child: %s
script:
- ping: {from: a, to: 10.2.0.10}
- %s
`

// FuzzParseLab puts arbitrary text into a whole lab, where the validation of
// connections and scripts runs, each hole short enough that minimising a new
// input stays cheap.
func FuzzParseLab(f *testing.F) {
	const fuzzMaxHole = 96
	for _, c := range [][3]string{
		{"{proposals: [aes128-sha256-ecp256], dpd: {delay: 10s}}", "{local-ts: 10.1.0.0/24, remote-ts: [10.2.0.0/24], esp: [aes128gcm16], pfs: modp2048}", "expect: {event: phase1-up, connection: o, within: 5s}"},
		{"{mode: aggressive, encap: true}", "{local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, start: trap}", "link: {name: gw1:eth0, down: true}"},
		{"{lifetime: 1h}", "{local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes256-sha256]}", "tunnel-down: o"},
	} {
		if _, err := Parse("fuzz.yaml", []byte(fmt.Sprintf(fuzzLabTemplate, c[0], c[1], c[2]))); err != nil {
			f.Fatalf("seed %q is not valid: %v", c, err)
		}
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, ike, child, step string) {
		if len(ike) > fuzzMaxHole || len(child) > fuzzMaxHole || len(step) > fuzzMaxHole {
			return
		}
		lab, err := Parse("fuzz.yaml", []byte(fmt.Sprintf(fuzzLabTemplate, ike, child, step)))
		if err == nil && lab == nil {
			t.Fatal("nil lab without an error")
		}
	})
}

// charon's IKEv1 DPD only probes periodically: a lab cannot ask a strongswan
// node for on-demand DPD, and the error points at the mode.
func TestOnDemandDPDNeedsAnIpseclabGateway(t *testing.T) {
	src := replace(t, "dpd: {delay: 10s}", "dpd: {delay: 10s, mode: on-demand}")
	if _, err := Parse("lab.yaml", []byte(src)); err != nil {
		t.Fatalf("two gateways with on-demand DPD: %v", err)
	}
	src = strings.Replace(src, "gw2: {kind: gateway, gateway: 203.0.113.1}", "gw2: {kind: strongswan, gateway: 203.0.113.1}", 1)
	_, err := Parse("lab.yaml", []byte(src))
	want := fmt.Sprintf("lab.yaml:%d:", lineOf(src, "mode: on-demand"))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "charon's IKEv1 DPD is periodic only") {
		t.Fatalf("on-demand DPD with a strongswan node: %v, want an error at %s", err, want)
	}
}

// A LAN is a Linux bridge, which takes at most 1,024 ports: a larger one is
// refused at its members, not by the kernel's "exchange full" at deploy.
func TestLANOfMoreThanABridgeTakesIsRefused(t *testing.T) {
	lab := func(n int) string {
		var b strings.Builder
		b.WriteString("name: big\ntopology:\n  nodes:\n")
		for i := range n {
			fmt.Fprintf(&b, "    h%d: {kind: host}\n", i)
		}
		b.WriteString("  lans:\n    - name: wan\n      members: [")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "h%d:eth0", i)
		}
		b.WriteString("]\n")
		return b.String()
	}
	if _, err := Parse("lab.yaml", []byte(lab(MaxLANMembers))); err != nil {
		t.Fatalf("a LAN of %d members: %v", MaxLANMembers, err)
	}
	_, err := Parse("lab.yaml", []byte(lab(MaxLANMembers+1)))
	if err == nil || !strings.Contains(err.Error(), "at most 1024 members") || !strings.Contains(err.Error(), "lab.yaml:") {
		t.Fatalf("a LAN of %d members: %v", MaxLANMembers+1, err)
	}
}
