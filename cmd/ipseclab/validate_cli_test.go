package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/labs"
)

// None of these tests deploys a lab: validate, schema and graph only read.

// twoGateways is a site-to-site lab whose gw-a node and ipsec block the tests
// vary.
func twoGateways(gwA, conn string) string {
	return `topology:
  nodes:
    alice: {kind: host, gateway: 10.1.0.1}
    ` + gwA + `
    isp:   {kind: router}
    gw-b:  {kind: gateway, gateway: 203.0.113.1}
  links:
    - endpoints: [alice:eth0, gw-a:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
    - endpoints: [gw-a:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
ipsec:
  office:
    ` + conn + `
    responder: gw-b
    auth: {secret: s}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24}
`
}

func TestValidateCLISaysWhichAddressIKEUses(t *testing.T) {
	lab := writeLab(t, "ike", twoGateways("gw-a:  {kind: gateway, gateway: 198.51.100.1}", "initiator: gw-a"))
	r := run(t, "validate", lab)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("valid lab: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"lab ike is valid: 4 nodes, 3 links, 0 LANs, 1 IPsec connections",
		"  office: gw-a (initiator) uses 198.51.100.2 (eth0) for IKE, the address on the interface of its gateway 198.51.100.1\n",
		"  office: gw-b (responder) uses 203.0.113.2 (eth0) for IKE, the address on the interface of its gateway 203.0.113.1\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestValidateCLIRefusesAPeerNoRouteReaches(t *testing.T) {
	// gw-a has no gateway: it uses its first address, on its LAN side, and
	// has no route to gw-b at all.
	lab := writeLab(t, "noroute", twoGateways("gw-a:  {kind: gateway}", "initiator: gw-a"))
	r := run(t, "validate", lab)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Line 17 is "    initiator: gw-a" (writeLab adds the name line).
	want := lab + ":17:16: connection office: IKE from gw-a (10.1.0.1) cannot reach gw-b (203.0.113.2): gw-a has no route to 203.0.113.2: no connected subnet, no route, no gateway"
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks\n%s\n%s", want, r.stderr)
	}

	// With a route to gw-b but its LAN address for IKE, the replies have no
	// way back; validate names the address that works.
	lab = writeLab(t, "lanfirst", twoGateways("gw-a:  {kind: gateway, routes: [{to: 203.0.113.0/24, via: 198.51.100.1}]}", "initiator: gw-a"))
	r = run(t, "validate", lab)
	want = lab + ":17:16: connection office: gw-b's IKE replies to 10.1.0.1, where gw-a's packets come from, cannot get back: isp has no route to 10.1.0.1"
	if r.code != 2 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "set address: 198.51.100.2 on the initiator, or give gw-a a gateway: on eth0") {
		t.Errorf("exit %d; stderr lacks\n%s\nor the fix:\n%s", r.code, want, r.stderr)
	}
}

func TestValidateCLIShowsTheYAMLLineAtFault(t *testing.T) {
	lab := writeLab(t, "syntax", "topology:\n  nodes:\n    a: {kind: host\n    b: {kind: host}\n")
	r := run(t, "validate", lab)
	want := lab + ":4:8: not valid YAML: the { opened here is never closed"
	if r.code != 2 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "    4 |     a: {kind: host\n      |        ^\n") {
		t.Errorf("exit %d; stderr lacks %q and the line with a caret:\n%s", r.code, want, r.stderr)
	}
}

// `ipseclab schema` is a schema a real validator compiles, and every shipped
// lab matches it.
func TestSchemaCLIMatchesTheShippedLabs(t *testing.T) {
	r := run(t, "schema")
	if r.code != 0 {
		t.Fatalf("schema: %+v", r)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("lab.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("lab.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	err = fs.WalkDir(labs.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, "/lab.yaml") {
			return err
		}
		src, err := fs.ReadFile(labs.FS(), p)
		if err != nil {
			return err
		}
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil {
			return err
		}
		b, _ := json.Marshal(v)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s does not match `ipseclab schema`:\n%v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// `graph --format dot` output is a graph Graphviz draws with each node's kind
// on a second line.
func TestGraphCLIDotDrawsTwoLineLabels(t *testing.T) {
	r := run(t, "graph", "-t", "site-to-site", "--format", "dot")
	if r.code != 0 || !strings.Contains(r.stdout, `"alice" [label="alice\nhost", shape=box];`) {
		t.Fatalf("graph: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dot := testenv.NeedCommand(t, "dot")
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(r.stdout)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dot: %v", err)
	}
	svg := string(out)
	if !strings.Contains(svg, ">alice</text>") || !strings.Contains(svg, ">host</text>") || strings.Contains(svg, `alice\nhost`) {
		t.Errorf("Graphviz did not draw alice's kind on a second line:\n%s", svg)
	}
}
