package topology

import (
	"strings"
	"testing"
)

const namesLab = `name: names
description: %DESC%
topology:
  nodes:
    a: {kind: host}
    b: {kind: host}
  links:
    - endpoints: ["a:%IFACE%", b:eth0]
      addresses: [10.0.0.1/24, 10.0.0.2/24]
`

func namesLabWith(iface, desc string) []byte {
	return []byte(strings.NewReplacer("%IFACE%", iface, "%DESC%", desc).Replace(namesLab))
}

// Names reach terminals, graphs and the kernel: an interface name is
// printable ASCII without whitespace of any kind, as Linux refuses \v, \f and
// \r too; a description holds no control characters. Each refusal names its
// line and shows the character escaped.
func TestNamesArePrintable(t *testing.T) {
	for _, c := range []struct{ iface, desc, want string }{
		{`eth\r0`, "ok", `contains '\r'`},
		{`eth\v0`, "ok", `contains '\v'`},
		{`eth\f0`, "ok", `contains '\f'`},
		{`eth\e0`, "ok", `contains '\x1b'`},
		{"eth0", `"a \e[31mred\e[0m lab"`, `control character '\x1b'`},
	} {
		_, err := Parse("names.yaml", namesLabWith(c.iface, c.desc))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "names.yaml:") {
			t.Errorf("iface %q, description %q: %v, want an error with %q", c.iface, c.desc, err, c.want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\v\f\x1b") {
			t.Errorf("the error carries a raw control character: %q", err)
		}
	}
}

// A quote in an interface name (Linux allows it) does not end a Mermaid
// label, and odd characters of a LAN's name stay out of Mermaid's IDs.
func TestMermaidEscapesNames(t *testing.T) {
	lab, err := Parse("names.yaml", namesLabWith(`eth\"0`, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := lab.Graph("mermaid")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g, "eth#quot;0") || strings.Contains(g, `eth"0`) {
		t.Errorf("the quote in eth\"0 is not escaped:\n%s", g)
	}
}
