package ike

import (
	"net/netip"
	"testing"
)

// sas shows where a pair's packets travel: ESP over IP has no port, and ESP
// in UDP leaves from 4500 even when the pair was made while the ISAKMP SA
// still talked on 500, towards where the data plane sends it.
func TestChildEndpoints(t *testing.T) {
	local, remote := netip.MustParseAddrPort("198.51.100.2:500"), netip.MustParseAddrPort("203.0.113.2:500")
	plain := &childSA{local: local, remote: remote}
	if l, r := plain.endpoints(""); l != "198.51.100.2" || r != "203.0.113.2" {
		t.Errorf("ESP over IP: %s → %s, want addresses without ports", l, r)
	}
	encap := &childSA{encap: true, local: local, remote: remote}
	if l, r := encap.endpoints("203.0.113.2:4500"); l != "198.51.100.2:4500" || r != "203.0.113.2:4500" {
		t.Errorf("ESP in UDP: %s → %s, want 198.51.100.2:4500 → 203.0.113.2:4500", l, r)
	}
	if _, r := encap.endpoints(""); r != "203.0.113.2:500" {
		t.Errorf("with no data plane SA, the remote should be the pair's own: %s", r)
	}
}
