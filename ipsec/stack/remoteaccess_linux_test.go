package stack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// A road warrior over real sockets: XAUTH and Mode Config give the client
// 10.9.0.1, the stack puts it on the client's loopback, and the client's
// own packets (from an unbound socket: the route chooses the source) reach
// the gateway's network through the tunnel. When the tunnel goes, so does
// the address.
func TestRemoteAccessVirtualIP(t *testing.T) {
	a, gw := nsPair(t)
	client := ike.Connection{
		Name: "lab", Role: ike.Initiator, Local: a.outer, Remote: gw.outer, PSK: psk,
		Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child:     ike.Child{Proposals: espProposals(t, "aes128gcm16")},
		XAuth:     &ike.XAuth{User: "alice", Password: "wonderland"}, ModeConfig: &ike.ModeConfig{},
	}
	gateway := ike.Connection{
		Name: "lab", Role: ike.Responder, Local: gw.outer, PSK: psk,
		Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child:     ike.Child{Proposals: espProposals(t, "aes128gcm16")},
		XAuth:     &ike.XAuth{Users: map[string]string{"alice": "wonderland"}},
		ModeConfig: &ike.ModeConfig{Pool: netip.MustParsePrefix("10.9.0.0/24"),
			SplitInclude: []netip.Prefix{netip.PrefixFrom(gw.inner, 32)}},
	}
	c := benchStack(t, a, client)
	benchStack(t, gw, gateway)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Initiate(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("10.9.0.1")
	if !hasAddr(t, a, vip) {
		t.Fatalf("%s is not on the client", vip)
	}
	if err := swantest.UDPEcho(ctx, a.h, netip.IPv4Unspecified(), gw.h, gw.inner, []byte("from the road")); err != nil {
		t.Fatalf("echo from the client's own address: %v", err)
	}
	if err := c.Terminate(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, a, vip) {
		t.Errorf("%s stays on the client after the tunnel went down", vip)
	}
}

func hasAddr(t *testing.T, n *nsNode, want netip.Addr) bool {
	found := false
	withHandle(t, n.h, func(nh *netlink.Handle) error {
		addrs, err := nh.AddrList(nil, netlink.FAMILY_V4)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == want {
				found = true
			}
		}
		return err
	})
	return found
}
