package linux

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// TestRouteComesBackAsItWas: a responder's route into the TUN goes with the
// last SA of a negotiation and comes back with the next one. It comes back
// with the MTU and the source address it had, so that the next SA of the
// same size changes nothing; a remembered source address that has gone
// since is looked up again, and the route still goes in.
func TestRouteComesBackAsItWas(t *testing.T) {
	_, ns := netenv.Netns(t, "routes")
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// veth pairs, as this kernel may have no dummy interfaces.
	device := func(name string) netlink.Link {
		t.Helper()
		l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-peer"}
		if err := h.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name, name + "-peer"} {
			ln, err := h.LinkByName(n)
			if err == nil {
				err = h.LinkSetUp(ln)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	tun, lan := device("tun0"), device("lan0")
	setAddr := func(add, del string) {
		t.Helper()
		if del != "" {
			a, _ := netlink.ParseAddr(del)
			if err := h.AddrDel(lan, a); err != nil {
				t.Fatal(err)
			}
		}
		a, _ := netlink.ParseAddr(add)
		if err := h.AddrAdd(lan, a); err != nil {
			t.Fatal(err)
		}
	}
	setAddr("10.3.0.1/24", "")
	const table = 4242
	r, err := newRoutes(h, tun, table, 1400, 1500, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ts := func(s string) esp.TrafficSelector { return esp.TrafficSelector{Prefix: netip.MustParsePrefix(s)} }
	p := esp.Policy{Conn: "c", LocalTS: ts("10.3.0.0/24"), RemoteTS: ts("10.9.0.0/24")}
	route := func() (mtu int, src string) {
		t.Helper()
		rs, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range rs {
			if rt.Dst != nil && rt.Dst.String() == "10.9.0.0/24" {
				return rt.MTU, net.IP(rt.Src).String()
			}
		}
		return -1, ""
	}

	if err := r.AddRoute(p); err != nil {
		t.Fatal(err)
	}
	if mtu, src := route(); mtu != 1400 || src != "10.3.0.1" {
		t.Fatalf("first route: MTU %d from %s, want the TUN's 1400 from 10.3.0.1", mtu, src)
	}
	if _, changed, err := r.SetRouteMTU(p, 1350); err != nil || !changed {
		t.Fatalf("SetRouteMTU(1350) = changed %v, %v; want a change", changed, err)
	}
	if err := r.DeleteRoute(p); err != nil {
		t.Fatal(err)
	}
	if mtu, _ := route(); mtu != -1 {
		t.Fatalf("the route stayed after its policy (MTU %d)", mtu)
	}

	// The next negotiation: the route comes back as it was.
	if err := r.AddRoute(p); err != nil {
		t.Fatal(err)
	}
	if mtu, src := route(); mtu != 1350 || src != "10.3.0.1" {
		t.Fatalf("route back: MTU %d from %s, want 1350 from 10.3.0.1", mtu, src)
	}
	if _, changed, err := r.SetRouteMTU(p, 1350); err != nil || changed {
		t.Fatalf("an SA of the same MTU changed the route (changed %v, %v)", changed, err)
	}
	if err := r.DeleteRoute(p); err != nil {
		t.Fatal(err)
	}

	// The LAN's address changes while no route is up.
	setAddr("10.3.0.2/24", "10.3.0.1/24")
	if err := r.AddRoute(p); err != nil {
		t.Fatalf("a remembered address gone: %v", err)
	}
	if mtu, src := route(); mtu != 1350 || src != "10.3.0.2" {
		t.Fatalf("route after the address changed: MTU %d from %s, want 1350 from 10.3.0.2", mtu, src)
	}
	if err := r.DeleteRoute(p); err != nil {
		t.Fatal(err)
	}
}
