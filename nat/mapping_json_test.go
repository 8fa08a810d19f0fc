package nat_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/nat"
)

// `nat show --json` and the control socket write a mapping in the lab file's
// words: kebab-case keys, durations with their unit, endpoints as the table
// prints them; and read it back unchanged.
func TestMappingJSONUsesTheLabFilesWords(t *testing.T) {
	ms := []nat.Mapping{
		{ID: 7, Proto: "udp", Inside: netip.MustParseAddrPort("192.168.1.10:500"), Outside: netip.MustParseAddrPort("198.51.100.2:31874"),
			Remote: netip.MustParseAddrPort("203.0.113.2:500"), Age: 12500 * time.Millisecond, TimeLeft: 29 * time.Second, State: "assured"},
		{ID: 8, Proto: "esp", Inside: netip.MustParseAddrPort("192.168.1.10:0"), Outside: netip.MustParseAddrPort("198.51.100.2:0"),
			Remote: netip.MustParseAddrPort("203.0.113.2:0"), Age: 3 * time.Second, TimeLeft: 2 * time.Minute, State: "unreplied", Forwarded: true},
	}
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	var generic []map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": 7.0, "proto": "udp", "forwarded": false, "inside": "192.168.1.10:500", "outside": "198.51.100.2:31874",
			"remote": "203.0.113.2:500", "age": "12.5s", "time-left": "29s", "state": "assured"},
		{"id": 8.0, "proto": "esp", "forwarded": true, "inside": "192.168.1.10", "outside": "198.51.100.2",
			"remote": "203.0.113.2", "age": "3s", "time-left": "2m0s", "state": "unreplied"},
	}
	for i := range want {
		if len(generic[i]) != len(want[i]) {
			t.Errorf("mapping %d has keys %v, want those of %v", i, generic[i], want[i])
		}
		for k, v := range want[i] {
			if generic[i][k] != v {
				t.Errorf("mapping %d: %q is %#v, want %#v\n%s", i, k, generic[i][k], v, b)
			}
		}
	}
	var back []nat.Mapping
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		if back[i] != ms[i] {
			t.Errorf("mapping %d reads back as %+v, was %+v", i, back[i], ms[i])
		}
	}
}
