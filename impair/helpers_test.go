package impair_test

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// pair is two throwaway namespaces joined by an impair.Link, with
// 10.9.0.1/24 on a's eth0 and 10.9.0.2/24 on b's.
type pair struct {
	link   *impair.Link
	a, b   netns.NsHandle
	aAddr  net.IP
	bAddr  net.IP
	aMAC   net.HardwareAddr
	bMAC   net.HardwareAddr
	events *events.Bus
}

type pairOpt struct {
	seed   uint64
	params netem.Params
	// quiet makes the link carry only the test's own frames: IPv6 off (no
	// DAD, router or MLD chatter) and static neighbour entries (no ARP), so
	// that the PRNG sees exactly the same frame sequence on every run.
	quiet bool
}

func newPair(t testing.TB, o pairOpt) *pair {
	t.Helper()
	testenv.NeedRoot(t)
	_, a := netenv.Netns(t, "a")
	_, b := netenv.Netns(t, "b")
	p := &pair{a: a, b: b, aAddr: net.IPv4(10, 9, 0, 1).To4(), bAddr: net.IPv4(10, 9, 0, 2).To4(), events: events.NewBus("impair-test")}
	if o.quiet {
		for _, h := range []netns.NsHandle{a, b} {
			if err := namespace.RunHandle(h, func() error {
				for _, k := range []string{"all", "default"} {
					if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0o644); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatalf("disable IPv6: %v", err)
			}
		}
	}
	l, err := impair.New(impair.Config{
		Name:   t.Name(),
		A:      impair.Endpoint{Node: "a", Iface: "eth0", Netns: a},
		B:      impair.Endpoint{Node: "b", Iface: "eth0", Netns: b},
		Seed:   o.seed,
		Params: o.params,
		Events: events.Publisher{Bus: p.events},
	})
	if err != nil {
		t.Fatalf("impair.New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close link: %v", err)
		}
	})
	p.link = l
	p.aMAC = configure(t, a, p.aAddr)
	p.bMAC = configure(t, b, p.bAddr)
	if o.quiet {
		neighbour(t, a, p.bAddr, p.bMAC)
		neighbour(t, b, p.aAddr, p.aMAC)
	}
	return p
}

// configure puts addr/24 on eth0 in the namespace and returns eth0's MAC.
func configure(t testing.TB, h netns.NsHandle, addr net.IP) net.HardwareAddr {
	t.Helper()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	l, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 not in its namespace: %v", err)
	}
	if err := nl.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: addr, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatalf("address %s: %v", addr, err)
	}
	if err := nl.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

func neighbour(t testing.TB, h netns.NsHandle, ip net.IP, mac net.HardwareAddr) {
	t.Helper()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	l, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, State: netlink.NUD_PERMANENT, IP: ip, HardwareAddr: mac, Family: netlink.FAMILY_V4}); err != nil {
		t.Fatalf("neighbour %s: %v", ip, err)
	}
}

// inNS runs fn inside the namespace: sockets created there stay there.
func inNS(t testing.TB, h netns.NsHandle, fn func() error) {
	t.Helper()
	if err := namespace.RunHandle(h, fn); err != nil {
		t.Fatal(err)
	}
}

// udpPair returns a socket in a connected to a socket bound in b.
func (p *pair) udpPair(t testing.TB) (send, recv *net.UDPConn) {
	t.Helper()
	inNS(t, p.b, func() (err error) {
		recv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: p.bAddr})
		return err
	})
	t.Cleanup(func() { recv.Close() })
	inNS(t, p.a, func() (err error) {
		send, err = net.DialUDP("udp4", nil, recv.LocalAddr().(*net.UDPAddr))
		return err
	})
	t.Cleanup(func() { send.Close() })
	return send, recv
}

// pinger sends ICMP echo requests from a namespace (there is no ping binary).
type pinger struct {
	c       *icmp.PacketConn
	id      int
	seq     int
	payload []byte
}

func newPinger(t testing.TB, h netns.NsHandle) *pinger {
	t.Helper()
	var c *icmp.PacketConn
	inNS(t, h, func() (err error) {
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	t.Cleanup(func() { c.Close() })
	return &pinger{c: c, id: os.Getpid() & 0xffff, payload: []byte("ipseclab impair test")}
}

// ping sends one echo request and returns the round-trip time, or ok false
// when no reply came within timeout.
func (pg *pinger) ping(dst net.IP, timeout time.Duration) (rtt time.Duration, ok bool, err error) {
	pg.seq++
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: pg.id, Seq: pg.seq, Data: pg.payload}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, false, err
	}
	start := time.Now()
	if _, err := pg.c.WriteTo(b, &net.IPAddr{IP: dst}); err != nil {
		return 0, false, fmt.Errorf("send echo: %w", err)
	}
	buf := make([]byte, 65536)
	deadline := start.Add(timeout)
	for {
		pg.c.SetReadDeadline(deadline)
		n, _, err := pg.c.ReadFrom(buf)
		if err != nil {
			if ne, isNet := err.(net.Error); isNet && ne.Timeout() {
				return 0, false, nil
			}
			return 0, false, err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, isEcho := m.Body.(*icmp.Echo); isEcho && e.ID == pg.id && e.Seq == pg.seq {
			return time.Since(start), true, nil
		}
	}
}
