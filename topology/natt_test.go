package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// `nat-t` is still `on` or `off`, and as a mapping sets the keepalives:
// an interval, or off.
func TestNATTKeepaliveSetting(t *testing.T) {
	ike := "    ike: {proposals: [aes256-sha1-modp1024, aes128-sha256-ecp256], dpd: {delay: 10s}}"
	for _, c := range []struct {
		nat  string
		want NATTConfig
	}{
		{"", NATTConfig{Mode: NATTOn}},
		{", nat-t: off", NATTConfig{Mode: NATTOff}},
		{", nat-t: {keepalive: 5s}", NATTConfig{Mode: NATTOn, Keepalive: Keepalive{Interval: 5 * time.Second}}},
		{", nat-t: {keepalive: off}", NATTConfig{Mode: NATTOn, Keepalive: Keepalive{Off: true}}},
	} {
		src := replace(t, ike, strings.TrimSuffix(ike, "}")+c.nat+"}")
		lab, err := Parse("lab.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", c.nat, err)
		}
		if got := lab.IPsec["office"].IKE.NATT; got != c.want {
			t.Errorf("%q: %+v, want %+v", c.nat, got, c.want)
		}
	}
	for _, c := range []struct{ nat, want string }{
		{"nat-t: {keepalive: 20}", "a duration needs a unit"},
		{"nat-t: {keepalive: 100ms}", "at least 1s (or off)"},
		{"nat-t: {keepalive: never}", `"never" is not a duration`},
		{"nat-t: {mode: off, keepalive: 10s}", "keepalives are part of NAT traversal, which is off here"},
		{"nat-t: {keepalives: 10s}", `unknown field "keepalives"`},
	} {
		src := replace(t, ike, strings.TrimSuffix(ike, "}")+", "+c.nat+"}")
		_, err := Parse("lab.yaml", []byte(src))
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("%s: want topology.Errors, got %v", c.nat, err)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Msg, c.want) || errs[0].Pos.Line != lineOf(src, "nat-t:") || errs[0].Pos.Col == 0 {
			t.Errorf("%s: %v, want one error at line %d saying %q", c.nat, err, lineOf(src, "nat-t:"), c.want)
		}
	}
}
