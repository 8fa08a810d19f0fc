package nat_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/nat"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

// The test bed is the smallest NAT lab, with documentation addresses:
//
//	inside host ── eth0 [NAT box] eth1 ── outside host
//	192.168.1.10   192.168.1.1  198.51.100.2   198.51.100.1
//
// The NAT's default route points at the outside host; the inside host's at
// the NAT. The outside host has no route to 192.168.1.0/24, as on the
// Internet.
var (
	insideAddr  = netip.MustParseAddr("192.168.1.10")
	natInside   = netip.MustParseAddr("192.168.1.1")
	natOutside  = netip.MustParseAddr("198.51.100.2")
	outsideAddr = netip.MustParseAddr("198.51.100.1")
)

type host struct {
	name string
	h    netns.NsHandle
}

type testbed struct {
	inside, box, outside host
	bus                  *events.Bus
	nat                  *nat.Box
}

func newHost(t *testing.T, label string) host {
	name, h := netenv.Netns(t, label)
	return host{name, h}
}

// link makes a veth pair between two namespaces, addresses it (/24) and brings
// both ends up. The pair is created inside a, so nothing ever appears in the
// host's namespace.
func link(t *testing.T, a host, aIf string, aAddr netip.Addr, b host, bIf string, bAddr netip.Addr) {
	t.Helper()
	ha, err := netlink.NewHandleAt(a.h)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aIf}, PeerName: bIf, PeerNamespace: netlink.NsFd(int(b.h))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s:%s-%s:%s: %v", a.name, aIf, b.name, bIf, err)
	}
	for _, end := range []struct {
		h    netns.NsHandle
		name string
		addr netip.Addr
	}{{a.h, aIf, aAddr}, {b.h, bIf, bAddr}} {
		nh, err := netlink.NewHandleAt(end.h)
		if err != nil {
			t.Fatal(err)
		}
		l, err := nh.LinkByName(end.name)
		if err == nil {
			err = nh.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: end.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}})
		}
		if err == nil {
			err = nh.LinkSetUp(l)
		}
		nh.Close()
		if err != nil {
			t.Fatalf("configure %s: %v", end.name, err)
		}
	}
}

func route(t *testing.T, on host, dst string, via netip.Addr) {
	t.Helper()
	nh, err := netlink.NewHandleAt(on.h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	r := &netlink.Route{Gw: via.AsSlice()}
	if dst != "default" {
		_, r.Dst, _ = net.ParseCIDR(dst)
	}
	if err := nh.RouteAdd(r); err != nil {
		t.Fatalf("route %s via %s on %s: %v", dst, via, on.name, err)
	}
}

// newTestbed builds the namespaces and links but does not start the NAT.
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	tb := &testbed{inside: newHost(t, "inside"), box: newHost(t, "nat"), outside: newHost(t, "outside"),
		bus: events.NewBus("nattest")}
	t.Cleanup(tb.bus.Close)
	link(t, tb.inside, "eth0", insideAddr, tb.box, "eth0", natInside)
	link(t, tb.box, "eth1", natOutside, tb.outside, "eth0", outsideAddr)
	route(t, tb.inside, "default", natInside)
	route(t, tb.box, "default", outsideAddr)
	return tb
}

// start runs the NAT box with c; it is closed when the test ends.
func (tb *testbed) start(t *testing.T, c natconf.Config) *nat.Box {
	t.Helper()
	b, err := nat.Start(tb.box.h, c, events.Publisher{Bus: tb.bus, Node: "home-nat"})
	if err != nil {
		t.Fatalf("start NAT: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close NAT: %v", err)
		}
	})
	tb.nat = b
	return b
}

// udpSocket opens a UDP socket bound inside the namespace.
func udpSocket(t *testing.T, on host, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := namespace.RunHandle(on.h, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("UDP socket %s in %s: %v", addr, on.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendUDP sends one datagram and returns the source the receiver saw.
func sendUDP(t *testing.T, from, to *net.UDPConn, payload string) netip.AddrPort {
	t.Helper()
	dst := to.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := from.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
	src, ok := recvUDP(t, to, payload, 3*time.Second)
	if !ok {
		t.Fatalf("%q sent from %s to %s never arrived", payload, from.LocalAddr(), dst)
	}
	return src
}

// recvUDP waits for a datagram with the payload, skipping others.
func recvUDP(t *testing.T, c *net.UDPConn, payload string, wait time.Duration) (netip.AddrPort, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(wait)
	for {
		c.SetReadDeadline(deadline)
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return netip.AddrPort{}, false
			}
			t.Fatalf("receive on %s: %v", c.LocalAddr(), err)
		}
		if string(buf[:n]) == payload {
			return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), true
		}
	}
}

// rawESP opens a raw IPv4 socket for protocol 50 (ESP) inside the namespace.
func rawESP(t *testing.T, on host, local netip.Addr) *net.IPConn {
	t.Helper()
	var c *net.IPConn
	err := namespace.RunHandle(on.h, func() error {
		var err error
		c, err = net.ListenIP("ip4:50", &net.IPAddr{IP: local.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatalf("raw ESP socket in %s: %v", on.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvESP waits for an ESP packet with the payload and returns its source.
func recvESP(t *testing.T, c *net.IPConn, payload string, wait time.Duration) (netip.Addr, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(wait)
	for {
		c.SetReadDeadline(deadline)
		n, src, err := c.ReadFromIP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return netip.Addr{}, false
			}
			t.Fatalf("receive ESP: %v", err)
		}
		if strings.HasSuffix(string(buf[:n]), payload) {
			a, _ := netip.AddrFromSlice(src.IP)
			return a.Unmap(), true
		}
	}
}

// espPacket is an ESP header (SPI, sequence number) and a marker payload; the
// NAT never looks inside, so no cipher is needed.
func espPacket(spi, seq uint32, payload string) []byte {
	b := []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
	return append(b, payload...)
}

// waitEvent waits for an event of the kind that satisfies match.
func waitEvent(t *testing.T, sub *events.Subscription, kind events.Kind, wait time.Duration, match func(events.Event) bool) events.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				t.Fatalf("bus closed while waiting for %s", kind)
			}
			if e.Kind == kind && (match == nil || match(e)) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within %v", kind, wait)
		}
	}
}

// readSysctl reads a sysctl as seen from inside the namespace.
func readSysctl(t *testing.T, on host, name string) string {
	t.Helper()
	var v string
	err := namespace.RunHandle(on.h, func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatalf("read %s in %s: %v", name, on.name, err)
	}
	return v
}

func findMapping(ms []nat.Mapping, inside netip.AddrPort, proto string) (nat.Mapping, bool) {
	for _, m := range ms {
		if m.Inside == inside && m.Proto == proto {
			return m, true
		}
	}
	return nat.Mapping{}, false
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
