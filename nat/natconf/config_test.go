package natconf_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// decodeNode decodes a lab fragment whose node home-nat has a nat: block, the
// way the topology layer hands it over.
func decodeNode(src string) (natconf.Config, error) {
	var doc struct {
		Nodes map[string]struct {
			Kind string         `yaml:"kind"`
			NAT  natconf.Config `yaml:"nat"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return natconf.Config{}, err
	}
	return doc.Nodes["home-nat"].NAT, nil
}

const example = `nodes:
  home-nat: {kind: nat, nat: {outside: eth1, udp-timeout: 30s, ports: random, esp: drop, ike-port: remap,
             forward: [{proto: udp, port: 500, to: 192.168.1.10}, {proto: udp, port: 4500, to: 192.168.1.10:4500}]}}
`

func TestDecodeTheExampleNode(t *testing.T) {
	c, err := decodeNode(example)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	to1, _ := natconf.ParseTarget("192.168.1.10")
	to2, _ := natconf.ParseTarget("192.168.1.10:4500")
	if c.Outside != "eth1" || c.UDPTimeout != natconf.Duration(30*time.Second) || c.UDPStreamTimeout != 0 ||
		c.Ports != natconf.PortsRandom || c.ESP != natconf.ESPDrop || c.IKEPort != natconf.IKEPortRemap || len(c.Forward) != 2 {
		t.Fatalf("decoded %+v", c)
	}
	if f := c.Forward[0]; f.Proto != natconf.UDP || f.Port != 500 || f.To != to1 || f.To.Port() != 0 {
		t.Fatalf("forward[0] = %+v", f)
	}
	if f := c.Forward[1]; f.Port != 4500 || f.To != to2 || f.To.Addr() != netip.MustParseAddr("192.168.1.10") || f.To.Port() != 4500 {
		t.Fatalf("forward[1] = %+v", f)
	}

	// The configuration writes back as it was written.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"udp-timeout: 30s", "ports: random", "to: 192.168.1.10:4500", "to: 192.168.1.10\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("marshalled config lacks %q:\n%s", want, out)
		}
	}
	var back natconf.Config
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.Outside != c.Outside || back.UDPTimeout != c.UDPTimeout || !reflect.DeepEqual(targets(back), targets(c)) {
		t.Fatalf("round trip changed %+v into %+v", c, back)
	}
}

func targets(c natconf.Config) []string {
	var out []string
	for _, f := range c.Forward {
		out = append(out, string(f.Proto), f.To.String())
	}
	return out
}

func TestAnEmptyNATBlockIsAHomeRouter(t *testing.T) {
	c, err := decodeNode("nodes: {home-nat: {kind: nat, nat: {}}}")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Outside != "" || c.Ports != "" || c.ESP != "" || c.UDPTimeout != 0 {
		t.Fatalf("empty block decoded as %+v", c)
	}
}

// fieldErrors returns the *natconf.FieldError values in err.
func fieldErrors(t *testing.T, err error) []*natconf.FieldError {
	t.Helper()
	var out []*natconf.FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *natconf.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %q (%T) does not name a field", e, e)
		}
		out = append(out, fe)
	}
	walk(err)
	return out
}

// Each case is one line of the nat: block; the error must name the field and
// point at the value on that line.
func TestDecodeErrorsNameTheFieldAndItsPlace(t *testing.T) {
	for _, tc := range []struct {
		name, line, field, col, msg string
	}{
		{"unknown behaviour", "ports: rand", "ports", "ports: ", `unknown value "rand" (want preserve or random)`},
		{"unknown esp", "esp: block", "esp", "esp: ", `unknown value "block"`},
		{"unknown ike-port", "ike-port: keep", "ike-port", "ike-port: ", `unknown value "keep"`},
		{"unparsable timeout", "udp-timeout: 3O s", "udp-timeout", "udp-timeout: ", "is not a duration"},
		{"timeout without unit", "udp-timeout: 30", "udp-timeout", "udp-timeout: ", "has no unit"},
		{"stream timeout", "udp-stream-timeout: soon", "udp-stream-timeout", "udp-stream-timeout: ", "is not a duration"},
		{"bad forward address", "forward: [{proto: udp, port: 500, to: 192.168.1.300}]", "forward[0].to", "forward: [{proto: udp, port: 500, to: ", "not an IPv4 address"},
		{"IPv6 forward", "forward: [{proto: udp, port: 500, to: '2001:db8::1'}]", "forward[0].to", "forward: [{proto: udp, port: 500, to: ", "IPv4 only"},
		{"forward port zero", "forward: [{proto: udp, port: 500, to: 192.168.1.10:0}]", "forward[0].to", "forward: [{proto: udp, port: 500, to: ", "port 0"},
		{"bad forward port", "forward: [{proto: udp, port: 70000, to: 192.168.1.10}]", "forward[0].port", "forward: [{proto: udp, port: ", "not a port"},
		{"bad forward proto", "forward: [{proto: esp, port: 500, to: 192.168.1.10}]", "forward[0].proto", "forward: [{proto: ", `unknown value "esp"`},
		{"unknown forward key", "forward: [{proto: udp, port: 500, dest: 192.168.1.10}]", "forward[0].dest", "forward: [{proto: udp, port: 500, ", "unknown key"},
		{"forward not a list", "forward: {proto: udp}", "forward", "forward: ", "want a list"},
		{"typo in a key", "udp-timout: 30s", "udp-timout", "", "unknown key"},
		{"outside not a name", "outside: [eth1]", "outside", "outside: ", "want an interface name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "nodes:\n  home-nat:\n    kind: nat\n    nat:\n      " + tc.line + "\n"
			_, err := decodeNode(src)
			if err == nil {
				t.Fatal("accepted")
			}
			fes := fieldErrors(t, err)
			if len(fes) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			fe := fes[0]
			if fe.Field() != tc.field || !strings.Contains(fe.Error(), "nat."+tc.field+": ") || !strings.Contains(fe.Error(), tc.msg) {
				t.Fatalf("error %q (field %q); want field %q and %q", fe, fe.Field(), tc.field, tc.msg)
			}
			if line, col := fe.Position(); line != 5 || col != 7+len(tc.col) {
				t.Fatalf("error at %d:%d; want 5:%d", line, col, 7+len(tc.col))
			}
		})
	}
}

func TestDecodeReportsEveryProblemAtOnce(t *testing.T) {
	_, err := decodeNode(`nodes:
  home-nat:
    kind: nat
    nat:
      ports: rand
      esp: maybe
      forward:
        - {proto: udp, port: 500, to: 192.168.1.10}
        - {proto: udp, port: 4500, to: nowhere}
`)
	var got []string
	for _, fe := range fieldErrors(t, err) {
		line, _ := fe.Position()
		got = append(got, fe.Field()+"@"+string(rune('0'+line)))
	}
	if want := []string{"ports@5", "esp@6", "forward[1].to@9"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("errors %v; want %v", got, want)
	}
}

func TestValidateCatchesWhatDecodingCannot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		field string
		msg   string
	}{
		{"sub-second timeout", "udp-timeout: 1500ms", "udp-timeout", "whole number of seconds"},
		{"tiny timeout", "udp-timeout: 10ms", "udp-timeout", "below 1s"},
		{"huge timeout", "udp-stream-timeout: 48h", "udp-stream-timeout", "above the 24h0m0s limit"},
		{"bad interface name", "outside: eth1/2", "outside", "not a valid interface name"},
		{"duplicate forward", "forward: [{proto: udp, port: 500, to: 192.168.1.10}, {proto: udp, port: 500, to: 192.168.1.11}]", "forward[1].port", "already forwarded by forward[0]"},
		{"forward without target", "forward: [{proto: udp, port: 500}]", "forward[0].to", "missing"},
		{"forward without port", "forward: [{proto: tcp, to: 192.168.1.10}]", "forward[0].port", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := decodeNode("nodes:\n  home-nat:\n    kind: nat\n    nat:\n      " + tc.yaml + "\n")
			if err != nil {
				t.Fatalf("decoding failed: %v", err)
			}
			fes := fieldErrors(t, c.Validate())
			if len(fes) != 1 || fes[0].Field() != tc.field || !strings.Contains(fes[0].Error(), tc.msg) {
				t.Fatalf("Validate: %v; want one error on %s saying %q", fes, tc.field, tc.msg)
			}
			if line, _ := fes[0].Position(); line != 5 {
				t.Fatalf("error on line %d, want 5", line)
			}
		})
	}
}

func TestValidateAConfigBuiltInGo(t *testing.T) {
	c := natconf.Config{Ports: "rand", ESP: natconf.ESPDrop, UDPTimeout: natconf.Duration(-time.Second)}
	fes := fieldErrors(t, c.Validate())
	if len(fes) != 2 || fes[0].Field() != "udp-timeout" || fes[1].Field() != "ports" {
		t.Fatalf("errors %v", fes)
	}
	if fes[1].Error() != `nat.ports: unknown value "rand" (want preserve or random)` {
		t.Fatalf("message %q", fes[1].Error())
	}
	if line, col := fes[1].Position(); line != 0 || col != 0 {
		t.Fatalf("a Go-built config has no position, got %d:%d", line, col)
	}
}

func TestCheckInterfacesNamesTheOutsideField(t *testing.T) {
	c, err := decodeNode("nodes:\n  home-nat:\n    kind: nat\n    nat: {outside: eth3}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckInterfaces([]string{"eth0", "eth3"}); err != nil {
		t.Fatalf("eth3 exists: %v", err)
	}
	err = c.CheckInterfaces([]string{"eth0", "eth1"})
	fes := fieldErrors(t, err)
	if len(fes) != 1 || fes[0].Field() != "outside" || !strings.Contains(err.Error(), `nat.outside: the node has no interface "eth3" (it has eth0, eth1)`) {
		t.Fatalf("error %v", err)
	}
	if line, col := fes[0].Position(); line != 4 || col != 20 {
		t.Fatalf("error at %d:%d, want 4:20", line, col)
	}
	if err := (&natconf.Config{}).CheckInterfaces(nil); err != nil {
		t.Fatalf("no outside named: the default route decides, but got %v", err)
	}
}

// FuzzDecodeConfig: any YAML either decodes or fails with field errors, never
// panics, and a decoded configuration validates without panicking.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("nodes: {home-nat: {nat: {ports: rand, udp-timeout: 3O s, forward: [{to: 1.2.3.4:0}]}}}"))
	f.Add([]byte("nodes: {home-nat: {nat: &a {forward: [*a]}}}"))
	f.Add([]byte("nodes: {home-nat: {nat: [1, 2]}}"))
	f.Add([]byte("nodes: {home-nat: {nat: {udp-timeout: 1500ms, forward: [{proto: tcp, port: 1}, ~]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeNode(string(data))
		if err != nil {
			return
		}
		_ = c.Validate()
		_ = c.CheckInterfaces([]string{"eth0"})
	})
}
