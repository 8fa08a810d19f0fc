package natconf_test

import (
	"regexp"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// The schema names the keys the decoder reads, and its patterns accept what
// the decoder accepts.
func TestSchemaDescribesTheWrittenForm(t *testing.T) {
	s := natconf.Config{}.JSONSchema()
	props := s["properties"].(map[string]any)
	var keys []string
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"esp", "forward", "ike-port", "outside", "ports", "udp-stream-timeout", "udp-timeout"}
	if !slices.Equal(keys, want) {
		t.Errorf("schema keys %v, want %v", keys, want)
	}
	for key, values := range map[string][]string{"ports": {"preserve", "random"}, "esp": {"pass", "drop"}, "ike-port": {"preserve", "remap"}} {
		if got := props[key].(map[string]any)["enum"]; !slices.Equal(got.([]string), values) {
			t.Errorf("%s: enum %v, want %v", key, got, values)
		}
	}

	timeout := regexp.MustCompile(props["udp-timeout"].(map[string]any)["pattern"].(string))
	for _, v := range []string{"30s", "2m", "1h", "1m30s", "30", "30 s", "thirty", "90sec"} {
		var d natconf.Duration
		parsed := yaml.Unmarshal([]byte(v), &d) == nil
		if timeout.MatchString(v) != parsed {
			t.Errorf("timeout %q: pattern matches %v, decoder accepts %v", v, timeout.MatchString(v), parsed)
		}
	}
	fwd := props["forward"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	to := regexp.MustCompile(fwd["to"].(map[string]any)["pattern"].(string))
	for _, v := range []string{"192.168.1.10", "192.168.1.10:4500", "192.168.1.10:", "fe80::1", "host"} {
		_, err := natconf.ParseTarget(v)
		if to.MatchString(v) != (err == nil) {
			t.Errorf("forward to %q: pattern matches %v, decoder accepts %v", v, to.MatchString(v), err == nil)
		}
	}
}
