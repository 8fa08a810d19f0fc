package topology_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/topology"
)

// compileSchema compiles `ipseclab schema`'s output with a real JSON Schema
// validator, checking it against the draft 2020-12 meta-schema on the way,
// with format assertions on so that addresses are checked too.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := topology.Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("lab.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("lab.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// asJSON reads a lab file as an editor's YAML extension does before it applies
// the schema: YAML to JSON values.
func asJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestShippedLabsAndTheReadmeExampleMatchTheSchema(t *testing.T) {
	s := compileSchema(t)
	for name, src := range shippedLabs(t) {
		if err := s.Validate(asJSON(t, src)); err != nil {
			t.Errorf("%s does not match the schema:\n%v", name, err)
		}
	}
}

// allForms writes most settings in each of the forms the decoder reads.
const allForms = `name: forms
description: every written form
seed: 3
topology:
  nodes:
    a:   {kind: host, gateway: 10.1.0.1, labels: {role: client, tier: 1}}
    gw1: {kind: gateway, gateway: 198.51.100.1}
    nat: {kind: nat, gateway: 203.0.113.2, nat: {outside: eth1, udp-timeout: 30s, udp-stream-timeout: 2m, ports: random, esp: pass, ike-port: remap, forward: [{proto: udp, port: 500, to: 198.51.100.2}, {proto: udp, port: 4500, to: "198.51.100.2:4500"}]}}
    r:   {kind: router, routes: [{to: 10.1.0.0/24, via: 203.0.113.1}, {to: default, via: 192.0.2.1}]}
    gw2: {kind: strongswan, gateway: 192.0.2.2}
  links:
    - endpoints: [a:eth0, gw1:eth1]
      addresses: [10.1.0.10/24, 10.1.0.1/24]
      mtu: 1400
      impair: {delay: 1.5sec, jitter: 500US, distribution: normal, loss: "gemodel p 1% r 30% 1-h 100% 1-k 0%", rate: 10Mbit, limit: 50, mtu: 1300, down: false}
    - endpoints: [gw1:eth0, nat:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
      impair: {loss: {gemodel: {p: 1%, r: 30%}}, a-to-b: {loss: {random: 0.5%}, duplicate: 0, reorder: 25%, gap: 5, delay: 10ms}, b-to-a: {corrupt: 0.1%, rate: 0}}
    - endpoints: [nat:eth1, r:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
      impair: {loss: random 2%, delay: 1m30s}
    - endpoints: [r:eth1, gw2:eth0]
      addresses: [192.0.2.2/24, [192.0.2.1/24, 192.0.2.9/24]]
  lans:
    - name: extra
      members: [gw2:eth1, r:eth2]
      addresses: [10.2.0.1/24, null]
ipsec:
  c1:
    initiator: {node: gw1, id: "fqdn:gw1.example", psk: 12345678, address: 198.51.100.2}
    responder: gw2
    auth: {method: psk, secret: s}
    ike: {mode: aggressive, proposals: [aes128-sha256-modp2048], lifetime: 1h, encap: true, nat-t: off,
          dpd: {mode: periodic, delay: 10s, timeout: 30s, action: restart}, retransmit: {timeout: 500ms, tries: 3, base: 1.5}}
    child: {local-ts: 10.1.0.0/24, remote-ts: [10.2.0.0/24], esp: [aes128gcm16], pfs: modp2048, lifetime: 10m, life-bytes: 10MiB, start: none, replay-window: 64}
  c2:
    initiator: {node: gw1, id: "dn:CN=gw1, O=Lab"}
    responder: {node: gw2, id: "email:gw2@example"}
    auth: {method: pubkey}
    key-type: ecdsa-p384
    child: {mode: transport}
script:
  - tunnel-up: c1
  - tunnel-down: {connection: c1, node: gw2, at: 2s}
  - wait: 1s
  - wait: {event: phase2-up, node: gw1, connection: c1, timeout: 5s}
  - ping: {from: a, to: 10.2.0.1, count: 3, interval: 100ms, timeout: 1s, size: 1200, df: true}
  - traffic: {from: a, to: 10.2.0.1, proto: udp, port: 4000, duration: 2s, rate: 1mbit, size: 500}
  - traffic: {from: a, to: 10.2.0.1, proto: tcp, bytes: 2MB}
  - impair: {link: nat:eth1, set: {loss: 20%, b-to-a: {delay: 10ms}}, at: 3s}
  - impair: {link: nat:eth1, reset: true}
  - link: {name: nat:eth1, down: true}
  - nat-flush: nat
  - crash: {node: gw2}
  - restart: gw2
  - expect: {event: dpd-dead, node: gw1, within: 45s, absent: true, name: no dead peer}
  - expect: {ping: {from: a, to: 10.2.0.1}, success: 80%, max-success: 100}
  - expect: {traffic: {from: a, to: 10.2.0.1, count: 100, rate: 2mbit}, max-loss: 0%}
  - expect: {sa: {node: gw1, connection: c1}, counter: packets-in, min: 5, max: 10}
`

// The schema and the decoder read the same forms: what one accepts, the
// other does, and each broken lab below is refused by both.
func TestSchemaAndDecoderAgree(t *testing.T) {
	s := compileSchema(t)
	if _, err := topology.Parse("forms.yaml", []byte(allForms)); err != nil {
		t.Fatalf("the decoder refuses the forms lab:\n%v", err)
	}
	if err := s.Validate(asJSON(t, []byte(allForms))); err != nil {
		t.Fatalf("the schema refuses the forms lab:\n%v", err)
	}
	broken := []struct{ name, old, new string }{
		{"unknown key", "    a:   {kind: host,", "    a:   {kind: host, colour: red,"},
		{"unknown key in an impair block", "impair: {loss: random 2%,", "impair: {lose: random 2%,"},
		{"unknown key in a nat block", "nat: {outside: eth1,", "nat: {outsides: eth1,"},
		{"wrong type: a word for a number", "seed: 3", "seed: three"},
		{"wrong type: a list for a mapping", "auth: {method: psk, secret: s}", "auth: [psk, s]"},
		{"wrong type: a number for a duration", "within: 45s", "within: 45"},
		{"delay without a unit", "delay: 1m30s}", "delay: 90}"},
		{"bad duration string", "lifetime: 1h,", "lifetime: 1 hour,"},
		{"bad tc duration", "delay: 1.5sec,", "delay: 1.5 secs,"},
		{"bad nat timeout", "udp-timeout: 30s", "udp-timeout: 30"},
		{"bad rate", "rate: 10Mbit,", "rate: 10 megabit,"},
		{"rate without a unit", "rate: 1mbit, size: 500}", "rate: 1000000, size: 500}"},
		{"percentage without a sign", "reorder: 25%", "reorder: 25"},
		{"bad loss", "loss: random 2%,", "loss: sometimes,"},
		{"bad loss model", "loss: {gemodel: {p: 1%, r: 30%}}", "loss: {bursty: {p: 1%}}"},
		{"bad enum: kind", "{kind: router,", "{kind: ruter,"},
		{"bad enum: ike mode", "mode: aggressive", "mode: agressive"},
		{"bad enum: auth method", "auth: {method: pubkey}", "auth: {method: pubkeys}"},
		{"bad enum: key type", "key-type: ecdsa-p384", "key-type: ecdsa-p512"},
		{"wrong type: a list for a cert path", `id: "dn:CN=gw1, O=Lab"}`, `id: "dn:CN=gw1, O=Lab", cert: [a.pem]}`},
		{"bad enum: ports", "ports: random", "ports: randomly"},
		{"bad enum: distribution", "distribution: normal", "distribution: pareto"},
		{"bad enum: event", "event: dpd-dead", "event: dpd-died"},
		{"bad enum: dpd mode", "mode: periodic,", "mode: periodical,"},
		{"bad enum: counter", "counter: packets-in", "counter: packets"},
		{"a link setting in a direction block", "b-to-a: {corrupt: 0.1%,", "b-to-a: {mtu: 1200, corrupt: 0.1%,"},
		{"two actions in a step", "  - nat-flush: nat", "  - {nat-flush: nat, crash: gw2}"},
		{"bad lab name", "name: forms", "name: Forms!"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			if !strings.Contains(allForms, b.old) {
				t.Fatalf("test setup: %q not in the forms lab", b.old)
			}
			src := strings.Replace(allForms, b.old, b.new, 1)
			if err := s.Validate(asJSON(t, []byte(src))); err == nil {
				t.Errorf("the schema accepts it")
			}
			if _, err := topology.Parse("forms.yaml", []byte(src)); err == nil {
				t.Errorf("the decoder accepts it (so the schema should too)")
			}
		})
	}
}

// The schema's unit patterns accept exactly what netem's parsers read.
func TestUnitPatternsAgreeWithTheParsers(t *testing.T) {
	check := func(name, pattern string, parse func(string) error, inputs []string) {
		re := regexp.MustCompile(pattern)
		for _, in := range inputs {
			if matched, parsed := re.MatchString(in), parse(in) == nil; matched != parsed {
				t.Errorf("%s %q: pattern matches %v, parser accepts %v", name, in, matched, parsed)
			}
		}
	}
	check("duration", netem.DurationPattern, func(s string) error { _, err := netem.ParseDuration(s); return err },
		[]string{"0", "30ms", "30MS", "1.5s", "1.5sec", "2secs", "500us", "500usec", "500µs", ".5s", "1m30s", "1h", "2m", "30", "0ms", "0.0",
			"-5ms", "5 ms", "5 minutes", "ms", "1.5msecs", "10ns", "1h2m3.5s"})
	check("rate", netem.RatePattern, func(s string) error { _, err := netem.ParseRate(s); return err },
		[]string{"0", "10mbit", "10Mbit", "10MBIT", "1gbit", "500kbit", "2mbps", "1.5mibit", "100bit", "10", "10 mbit", "mbit", "10mb", "3tbit", "1kibps"})
	check("percent", netem.PercentPattern, func(s string) error { _, err := netem.ParsePercent(s); return err },
		[]string{"0", "0.0", "1%", "0.5%", "100%", "1 %", "1", "50", "%", "abc%", ".5%"})
	check("loss", netem.LossPattern, func(s string) error { _, err := netem.ParseLoss(s); return err },
		[]string{"1%", "0", "random 1%", "RANDOM 1%", "gemodel 1%", "gemodel 1% 30%", "gemodel 1% 30% 100% 0%", "gemodel p 1% r 30% 1-h 100% 1-k 0%",
			"gemodel P 1% R 30%", "gemodel", "gemodel 1% 2% 3% 4% 5%", "gemodel r 30%", "sometimes", "random", "1"})
}

// remoteAccessForms writes the remote-access settings in each form.
const remoteAccessForms = `name: ra-forms
topology:
  nodes:
    laptop1: {kind: gateway, gateway: 192.0.2.1}
    laptop2: {kind: gateway, gateway: 192.0.2.1}
    gw:      {kind: gateway, gateway: 192.0.2.1}
    r:       {kind: router}
    server:  {kind: host, gateway: 10.1.0.1}
  lans:
    - name: net
      members: [r:eth0, laptop1:eth0, laptop2:eth0, gw:eth0]
      addresses: [192.0.2.1/24, 192.0.2.10/24, 192.0.2.11/24, 192.0.2.2/24]
    - name: office
      members: [gw:eth1, server:eth0]
      addresses: [10.1.0.1/24, 10.1.0.10/24]
ipsec:
  rw:
    responder:
      node: gw
      xauth: {users: {alice: secret, bob: 1234}}
      pool: 10.9.0.0/24
      dns: [10.1.0.53, 10.1.0.54]
      nbns: [10.1.0.55]
      split-include: 10.1.0.0/24
      modecfg: push
      banner: Welcome
      default-domain: office.example
    initiators:
      - {node: laptop1, xauth: {user: alice, password: secret}}
      - laptop2
    remote: any
    auth: {method: hybrid}
    child: {start: none}
  one:
    initiator: {node: laptop1, xauth: {user: bob, password: 1234}}
    responder: {node: gw, xauth: {users-file: users.txt}}
    auth: {method: xauth-psk, secret: group}
    child: {mode: transport}
`

func TestSchemaAndDecoderAgreeOnRemoteAccess(t *testing.T) {
	s := compileSchema(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte("bob:1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "lab.yaml")
	// laptop2 has no xauth: the decoder wants one under hybrid, the schema
	// cannot know, so the forms lab gives it its credentials for the decoder.
	good := strings.Replace(remoteAccessForms, "      - laptop2\n", "      - {node: laptop2, xauth: {user: bob, password: 1234}}\n", 1)
	for _, src := range []string{remoteAccessForms, good} {
		if err := s.Validate(asJSON(t, []byte(src))); err != nil {
			t.Fatalf("the schema refuses the remote-access forms:\n%v", err)
		}
	}
	if _, err := topology.Parse(file, []byte(good)); err != nil {
		t.Fatalf("the decoder refuses the remote-access forms:\n%v", err)
	}
	broken := []struct{ name, old, new string }{
		{"bad enum: auth method", "{method: hybrid}", "{method: xauth}"},
		{"bad enum: modecfg", "modecfg: push", "modecfg: pushed"},
		{"bad enum: remote", "remote: any", "remote: all"},
		{"unknown key in xauth", "{user: alice, password: secret}", "{user: alice, pass: secret}"},
		{"users as a list", "{users: {alice: secret, bob: 1234}}", "{users: [alice, bob]}"},
		{"initiators as a mapping", "      - {node: laptop1, xauth: {user: alice, password: secret}}\n      - {node: laptop2,", "      laptop1: {xauth: {user: alice, password: secret}}\n      laptop2: {node: laptop2,"},
		{"initiators empty", "    initiators:\n      - {node: laptop1, xauth: {user: alice, password: secret}}\n      - {node: laptop2, xauth: {user: bob, password: 1234}}\n", "    initiators: []\n"},
		{"initiator and initiators", "    initiators:\n", "    initiator: laptop2\n    initiators:\n"},
		{"neither initiator nor initiators", "    initiators:\n      - {node: laptop1, xauth: {user: alice, password: secret}}\n      - {node: laptop2, xauth: {user: bob, password: 1234}}\n", ""},
		{"dns not a list", "dns: [10.1.0.53, 10.1.0.54]", "dns: {primary: 10.1.0.53}"},
		{"dns not an address", "dns: [10.1.0.53, 10.1.0.54]", "dns: [ns1.office.example]"},
		{"pool not a prefix", "pool: 10.9.0.0/24", "pool: a pool"},
		{"split-include not a prefix", "split-include: 10.1.0.0/24", "split-include: [the office]"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			if !strings.Contains(good, b.old) {
				t.Fatalf("test setup: %q not in the forms lab", b.old)
			}
			src := strings.Replace(good, b.old, b.new, 1)
			if err := s.Validate(asJSON(t, []byte(src))); err == nil {
				t.Errorf("the schema accepts it")
			}
			if _, err := topology.Parse(file, []byte(src)); err == nil {
				t.Errorf("the decoder accepts it (so the schema should too)")
			}
		})
	}
}
