package linux

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// TestPathMTUFollowsTheInterface: the MTU toward a peer is the outgoing
// interface's, read by name once the name is known (SIOCGIFMTU), and it
// follows a change of the MTU at once and a rename of the interface (the
// name then belongs to another one).
func TestPathMTUFollowsTheInterface(t *testing.T) {
	_, ns := netenv.Netns(t, "mtu")
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := namespace.RunHandle(ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := &routes{h: h, ioctlFD: fd, names: map[int]string{}}
	t.Cleanup(func() { r.Close() })

	veth := func(name, peer string, mtu int) netlink.Link {
		t.Helper()
		l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}, PeerName: peer}
		if err := h.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name, peer} {
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
	eth0 := veth("eth0", "peer1", 1400)
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := h.AddrAdd(eth0, addr); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("192.0.2.2")
	want := func(mtu int, viaIoctl bool) {
		t.Helper()
		got, err := r.PathMTU(peer)
		if err != nil || got != mtu {
			t.Fatalf("PathMTU = %d, %v; want %d", got, err, mtu)
		}
		if _, known := r.names[eth0.Attrs().Index]; known != viaIoctl {
			t.Fatalf("name of the interface known: %v, want %v", known, viaIoctl)
		}
	}
	want(1400, true) // by netlink, which names the interface
	want(1400, true) // by ioctl
	if err := h.LinkSetMTU(eth0, 1300); err != nil {
		t.Fatal(err)
	}
	want(1300, true)

	// eth0 becomes wan; a new eth0 with another MTU must not answer for it.
	if err := h.LinkSetDown(eth0); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetName(eth0, "wan"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	veth("eth0", "peer2", 9000)
	if got, err := r.PathMTU(peer); err != nil || got != 1300 {
		t.Fatalf("after the rename, PathMTU = %d, %v; want wan's 1300", got, err)
	}
	if got := r.names[eth0.Attrs().Index]; got != "wan" {
		t.Fatalf("the renamed interface is known as %q", got)
	}
}
