package esp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/node"
)

// lab is four namespaces in a row, built with veth pairs:
//
//	hostA 10.1.0.10 ── 10.1.0.1 gwA 192.0.2.1 ── 192.0.2.2 gwB 10.2.0.1 ── 10.2.0.10 hostB
//
// The gateways forward, and neither has a route to the other's LAN: only the
// IPsec data plane, through its TUN, connects them.
type lab struct {
	hostA, gwA, gwB, hostB netns.NsHandle
}

func newLab(t testing.TB) *lab {
	testenv.NeedRoot(t)
	l := &lab{}
	_, l.hostA = testenv.Netns(t, "hostA")
	_, l.gwA = testenv.Netns(t, "gwA")
	_, l.gwB = testenv.Netns(t, "gwB")
	_, l.hostB = testenv.Netns(t, "hostB")
	l.link(t, l.hostA, "eth0", "10.1.0.10/24", l.gwA, "eth1", "10.1.0.1/24")
	l.link(t, l.gwA, "eth0", "192.0.2.1/24", l.gwB, "eth0", "192.0.2.2/24")
	l.link(t, l.gwB, "eth1", "10.2.0.1/24", l.hostB, "eth0", "10.2.0.10/24")
	l.defaultRoute(t, l.hostA, "10.1.0.1")
	l.defaultRoute(t, l.hostB, "10.2.0.1")
	for _, gw := range []netns.NsHandle{l.gwA, l.gwB} {
		err := node.InNetnsHandle(gw, func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *lab) link(t testing.TB, a netns.NsHandle, aName, aAddr string, b netns.NsHandle, bName, bAddr string) {
	t.Helper()
	ha, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(int(b))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s-%s: %v", aName, bName, err)
	}
	hb, err := netlink.NewHandleAt(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	for _, end := range []struct {
		h          *netlink.Handle
		name, addr string
	}{{ha, aName, aAddr}, {hb, bName, bAddr}} {
		lk, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(end.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := end.h.AddrAdd(lk, addr); err != nil {
			t.Fatal(err)
		}
		if err := end.h.LinkSetUp(lk); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *lab) defaultRoute(t testing.TB, ns netns.NsHandle, gw string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatal(err)
	}
}

// openGateway starts a data plane on a gateway and closes it at the end.
func openGateway(t testing.TB, ns netns.NsHandle, name string, cfg OpenConfig) *DataPlane {
	t.Helper()
	cfg.Node = name
	d, err := Open(ns, cfg)
	if err != nil {
		t.Fatalf("open data plane on %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close data plane on %s: %v", name, err)
		}
	})
	return d
}

// gatewayPair installs static SAs (no IKE) between the gateways for traffic
// between localTS (behind A) and remoteTS (behind B).
func gatewayPair(t testing.TB, a, b *DataPlane, tr transform, mode Mode, encap bool, localTS, remoteTS string) {
	t.Helper()
	ga, gb := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	key := func(n int, seed byte) []byte {
		k := make([]byte, max(n, 0))
		rand.Read(k)
		return k
	}
	mk := func(spi uint32, local, remote netip.Addr, lts, rts string) SAConfig {
		c := SAConfig{
			Conn: "a-b", SPI: spi, Protocol: tr.proto, Mode: mode,
			Enc: tr.enc, EncKey: key(tr.enc.KeySize(), 0), Salt: key(tr.enc.SaltSize(), 0),
			Integ: tr.integ, IntegKey: key(tr.integ.KeySize(), 0),
			Local: local, Remote: remote, LocalTS: mustTS(t, lts), RemoteTS: mustTS(t, rts),
		}
		if tr.proto == ProtoAH {
			c.Enc, c.EncKey, c.Salt = 0, nil, nil
		}
		if encap {
			c.Encap = &UDPEncap{LocalPort: 4500, RemotePort: 4500}
		}
		return c
	}
	must(t, a.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, localTS), RemoteTS: mustTS(t, remoteTS)}))
	must(t, b.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, remoteTS), RemoteTS: mustTS(t, localTS)}))
	ab := mk(0xa000b001, ga, gb, localTS, remoteTS) // A → B, the SPI B chose
	ba := mk(0xb000a001, gb, ga, remoteTS, localTS) // B → A
	abIn, baIn := ab, ba
	ab.Dir, ba.Dir, abIn.Dir, baIn.Dir = Outbound, Outbound, Inbound, Inbound
	abIn.Local, abIn.Remote, abIn.LocalTS, abIn.RemoteTS = gb, ga, ab.RemoteTS, ab.LocalTS
	baIn.Local, baIn.Remote, baIn.LocalTS, baIn.RemoteTS = ga, gb, ba.RemoteTS, ba.LocalTS
	// Inbound first, as IKE does, so the first packet finds its SA.
	must(t, b.AddSA(abIn))
	must(t, a.AddSA(baIn))
	must(t, a.AddSA(ab))
	must(t, b.AddSA(ba))
}

// ping sends ICMP echo requests from inside ns and waits for each reply.
func ping(t testing.TB, ns netns.NsHandle, dst string, count int) {
	t.Helper()
	var c *icmp.PacketConn
	err := node.InNetnsHandle(ns, func() error {
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.IPAddr{IP: net.ParseIP(dst)}
	for seq := 1; seq <= count; seq++ {
		body := &icmp.Echo{ID: 0x1e5, Seq: seq, Data: []byte(fmt.Sprintf("ipseclab ping %d", seq))}
		msg, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: body}).Marshal(nil)
		if _, err := c.WriteTo(msg, to); err != nil {
			t.Fatalf("ping %s: %v", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("ping %s seq %d: no reply: %v", dst, seq, err)
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply || from.String() != dst {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq && bytes.Equal(e.Data, body.Data) {
				break
			}
		}
	}
}

// tcpTransfer sends size random bytes over TCP from one namespace to another
// and compares SHA-256 digests computed at both ends.
func tcpTransfer(t testing.TB, from netns.NsHandle, to netns.NsHandle, dst string, size int) {
	t.Helper()
	var ln net.Listener
	err := node.InNetnsHandle(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(dst, "5001"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	var conn net.Conn
	err = node.InNetnsHandle(from, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(dst, "5001"), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", dst, err)
	}
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(data); err != nil {
		t.Fatalf("send: %v", err)
	}
	conn.Close()
	select {
	case h := <-got:
		if h != want {
			t.Fatalf("TCP transfer of %d bytes: digest %x at the receiver, %x at the sender", size, h, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("TCP transfer did not finish")
	}
}

func TestLabHostToHostAndGatewayToGateway(t *testing.T) {
	cases := []struct {
		name  string
		tr    transform
		mode  Mode
		encap bool
	}{
		{"tunnel/esp-aes128gcm16", transform{ProtoESP, EncAESGCM16_128, IntegNone}, Tunnel, false},
		{"tunnel/esp-aes128-sha1/udp", transform{ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, Tunnel, true},
		{"tunnel/ah-sha256", transform{ProtoAH, 0, IntegHMACSHA256_128}, Tunnel, false},
		{"transport/esp-aes256-sha256", transform{ProtoESP, EncAESCBC256, IntegHMACSHA256_128}, Transport, false},
		{"transport/esp-null-sha1/udp", transform{ProtoESP, EncNull, IntegHMACSHA1_96}, Transport, true},
		{"transport/ah-sha512", transform{ProtoAH, 0, IntegHMACSHA512_256}, Transport, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			a := openGateway(t, l.gwA, "gwA", OpenConfig{})
			b := openGateway(t, l.gwB, "gwB", OpenConfig{})
			if tc.mode == Tunnel {
				gatewayPair(t, a, b, tc.tr, tc.mode, tc.encap, "10.1.0.0/24", "10.2.0.0/24")
				ping(t, l.hostA, "10.2.0.10", 3)
				tcpTransfer(t, l.hostA, l.hostB, "10.2.0.10", 4<<20)
				tcpTransfer(t, l.hostB, l.hostA, "10.1.0.10", 1<<20)
			} else {
				gatewayPair(t, a, b, tc.tr, tc.mode, tc.encap, "192.0.2.1/32", "192.0.2.2/32")
				ping(t, l.gwA, "192.0.2.2", 3)
				tcpTransfer(t, l.gwA, l.gwB, "192.0.2.2", 4<<20)
			}
			for _, d := range []*DataPlane{a, b} {
				for _, s := range d.SAs() {
					c := s.Counters
					if c.Packets == 0 || c.IntegrityFailures != 0 || c.PolicyDrops != 0 {
						t.Errorf("%s SA %s: %+v", s.Dir, s.SPI, c)
					}
				}
			}
		})
	}
}
