package stack_test

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// nsNode is a throwaway namespace of the tests that need root.
type nsNode struct {
	name  string
	h     netns.NsHandle
	outer netip.Addr // address on eth0
	inner netip.Addr // a /32 on lo, the end of the protected traffic
}

// nsPair builds two namespaces joined by a veth pair (eth0 in each), each with
// an inner /32 on lo, as libipsec wants the local selector's address to
// exist:
//
//	inner 10.1.0.1/32 [a] 192.0.2.1/24 ── 192.0.2.2/24 [b] inner 10.2.0.1/32
func nsPair(t testing.TB) (a, b *nsNode) {
	t.Helper()
	testenv.NeedRoot(t)
	a = &nsNode{outer: addrA, inner: netip.MustParseAddr("10.1.0.1")}
	b = &nsNode{outer: addrB, inner: netip.MustParseAddr("10.2.0.1")}
	a.name, a.h = netenv.Netns(t, "ours")
	b.name, b.h = netenv.Netns(t, "peer")
	withHandle(t, a.h, func(nh *netlink.Handle) error {
		return nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(b.h))})
	})
	for _, n := range []*nsNode{a, b} {
		addAddr(t, n.h, "eth0", netip.PrefixFrom(n.outer, 24))
		addAddr(t, n.h, "lo", netip.PrefixFrom(n.inner, 32))
	}
	return a, b
}

func addAddr(t testing.TB, h netns.NsHandle, ifName string, p netip.Prefix) {
	t.Helper()
	withHandle(t, h, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(ifName)
		if err != nil {
			return err
		}
		addr, err := netlink.ParseAddr(p.String())
		if err != nil {
			return err
		}
		if err := nh.AddrAdd(l, addr); err != nil {
			return err
		}
		return nh.LinkSetUp(l)
	})
}

func withHandle(t testing.TB, h netns.NsHandle, fn func(*netlink.Handle) error) {
	t.Helper()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	if err := fn(nh); err != nil {
		t.Fatal(err)
	}
}
