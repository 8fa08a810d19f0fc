package linux_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/linux"
)

// A policy whose local selector lies inside its remote one (a hub's spoke:
// 10.3.0.0/24 to 10.0.0.0/13) gets a throw route for its local selector in
// the TUN's table, so that packets for the spoke's own LAN leave by the main
// table; the throw route goes with the last policy that needs it, and with
// Close.
func TestLocalSelectorInsideRemoteBypassesTheTUN(t *testing.T) {
	_, ns := netenv.Netns(t, "spoke")
	d, err := linux.Open(ns, linux.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	throws := func() []string {
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: linux.DefaultRouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range routes {
			if r.Type == unix.RTN_THROW {
				out = append(out, r.Dst.String())
			}
		}
		return out
	}
	ts := func(s string) esp.TrafficSelector { return esp.TrafficSelector{Prefix: netip.MustParsePrefix(s)} }
	hub := esp.Policy{Conn: "hub", LocalTS: ts("10.3.0.0/24"), RemoteTS: ts("10.0.0.0/13")}
	other := esp.Policy{Conn: "other", LocalTS: ts("10.3.0.0/24"), RemoteTS: ts("10.0.0.0/8")}
	plain := esp.Policy{Conn: "plain", LocalTS: ts("10.3.0.0/24"), RemoteTS: ts("10.9.0.0/24")}
	for _, p := range []esp.Policy{hub, other, plain} {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := throws(); !slices.Equal(got, []string{"10.3.0.0/24"}) {
		t.Fatalf("throw routes %v, want one for 10.3.0.0/24", got)
	}
	if err := d.DeletePolicy(hub); err != nil {
		t.Fatal(err)
	}
	if got := throws(); len(got) != 1 {
		t.Errorf("the throw route went with the first of its two policies: %v", got)
	}
	if err := d.DeletePolicy(other); err != nil {
		t.Fatal(err)
	}
	if got := throws(); len(got) != 0 {
		t.Errorf("throw routes left after their policies: %v", got)
	}
	if err := d.AddPolicy(hub); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := throws(); len(got) != 0 {
		t.Errorf("throw routes left after Close: %v", got)
	}
}
