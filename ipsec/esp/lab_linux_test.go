package esp_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/linux"
)

// These tests use only the package's exported API, as the lab runtime and IKE
// do; they live in package esp_test so that they may also import the
// strongSwan harness for the throughput baseline.

// transform is an SA's protocol and algorithms.
type transform struct {
	proto esp.Protocol
	enc   esp.EncAlg
	integ esp.IntegAlg
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustTS(t testing.TB, s string) esp.TrafficSelector {
	t.Helper()
	ts, err := esp.ParseTrafficSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// lab is four namespaces in a row, built with veth pairs:
//
//	hostA 10.1.0.10 ── 10.1.0.1 gwA 192.0.2.1 ── 192.0.2.2 gwB 10.2.0.1 ── 10.2.0.10 hostB
//
// The gateways forward, and neither has a route to the other's LAN: only the
// IPsec data plane, through its TUN, connects them.
type lab struct {
	hostA, gwA, gwB, hostB netns.NsHandle
}

// neighbours lists a namespace's neighbour table, for failure messages.
func neighbours(t testing.TB, ns netns.NsHandle) string {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err.Error()
	}
	defer h.Close()
	ns4, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		return err.Error()
	}
	var out []string
	if links, err := h.LinkList(); err == nil {
		for _, l := range links {
			st := l.Attrs().Statistics
			if st != nil {
				out = append(out, fmt.Sprintf("%s tx %d txdrop %d rx %d", l.Attrs().Name, st.TxPackets, st.TxDropped, st.RxPackets))
			}
		}
	}
	for _, n := range ns4 {
		out = append(out, fmt.Sprintf("%v %v state %#x", n.IP, n.HardwareAddr, n.State))
	}
	return strings.Join(out, ", ")
}

func newLab(t testing.TB) *lab {
	testenv.NeedRoot(t)
	l := &lab{}
	_, l.hostA = netenv.Netns(t, "hostA")
	_, l.gwA = netenv.Netns(t, "gwA")
	_, l.gwB = netenv.Netns(t, "gwB")
	_, l.hostB = netenv.Netns(t, "hostB")
	l.link(t, l.hostA, "eth0", "10.1.0.10/24", l.gwA, "eth1", "10.1.0.1/24")
	l.link(t, l.gwA, "eth0", "192.0.2.1/24", l.gwB, "eth0", "192.0.2.2/24")
	l.link(t, l.gwB, "eth1", "10.2.0.1/24", l.hostB, "eth0", "10.2.0.10/24")
	l.defaultRoute(t, l.hostA, "10.1.0.1")
	l.defaultRoute(t, l.hostB, "10.2.0.1")
	for _, gw := range []netns.NsHandle{l.gwA, l.gwB} {
		err := namespace.RunHandle(gw, func() error {
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
func openGateway(t testing.TB, ns netns.NsHandle, name string, cfg linux.Config) *esp.DataPlane {
	t.Helper()
	cfg.Node = name
	d, err := linux.Open(ns, cfg)
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
// between localTS (behind A) and remoteTS (behind B), with the policies.
func gatewayPair(t testing.TB, a, b *esp.DataPlane, tr transform, mode esp.Mode, encap bool, localTS, remoteTS string) {
	t.Helper()
	must(t, a.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, localTS), RemoteTS: mustTS(t, remoteTS)}))
	must(t, b.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, remoteTS), RemoteTS: mustTS(t, localTS)}))
	installGatewaySAs(t, a, b, tr, mode, encap, localTS, remoteTS, 0xa000b000)
}

// installGatewaySAs installs a fresh pair of SAs with random keys, the SPIs
// spi (A→B) and spi+1 (B→A), inbound first as IKE does so that the first
// packet on the new outbound SA finds its peer ready. It returns the SAs as
// {A's outbound, B's inbound, B's outbound, A's inbound}.
func installGatewaySAs(t testing.TB, a, b *esp.DataPlane, tr transform, mode esp.Mode, encap bool, localTS, remoteTS string, spi uint32) [4]esp.SAID {
	t.Helper()
	ga, gb := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	key := func(n int) []byte {
		k := make([]byte, max(n, 0))
		rand.Read(k)
		return k
	}
	mk := func(dir esp.Direction, spi uint32, local, remote netip.Addr, lts, rts string) esp.SAConfig {
		c := esp.SAConfig{
			Conn: "a-b", Dir: dir, SPI: spi, Protocol: tr.proto, Mode: mode,
			Enc: tr.enc, EncKey: key(tr.enc.KeySize()), Salt: key(tr.enc.SaltSize()),
			Integ: tr.integ, IntegKey: key(tr.integ.KeySize()),
			Local: local, Remote: remote, LocalTS: mustTS(t, lts), RemoteTS: mustTS(t, rts),
		}
		if tr.proto == esp.ProtoAH {
			c.Enc, c.EncKey, c.Salt = 0, nil, nil
		}
		if encap {
			c.Encap = &esp.UDPEncap{LocalPort: 4500, RemotePort: 4500}
		}
		return c
	}
	ab := mk(esp.Outbound, spi, ga, gb, localTS, remoteTS)
	ba := mk(esp.Outbound, spi+1, gb, ga, remoteTS, localTS)
	abIn, baIn := ab, ba // same keys, seen from the other end
	abIn.Dir, abIn.Local, abIn.Remote, abIn.LocalTS, abIn.RemoteTS = esp.Inbound, gb, ga, ab.RemoteTS, ab.LocalTS
	baIn.Dir, baIn.Local, baIn.Remote, baIn.LocalTS, baIn.RemoteTS = esp.Inbound, ga, gb, ba.RemoteTS, ba.LocalTS
	must(t, b.AddSA(abIn))
	must(t, a.AddSA(baIn))
	must(t, a.AddSA(ab))
	must(t, b.AddSA(ba))
	return [4]esp.SAID{ab.ID(), abIn.ID(), ba.ID(), baIn.ID()}
}

// ping sends ICMP echo requests from inside ns and waits for each reply.
func ping(t testing.TB, ns netns.NsHandle, dst string, count int) {
	t.Helper()
	var c *icmp.PacketConn
	err := namespace.RunHandle(ns, func() error {
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
	err := namespace.RunHandle(to, func() error {
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
	err = namespace.RunHandle(from, func() error {
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
		mode  esp.Mode
		encap bool
	}{
		{"tunnel/esp-aes128gcm16", transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, esp.Tunnel, false},
		{"tunnel/esp-aes128-sha1/udp", transform{esp.ProtoESP, esp.EncAESCBC128, esp.IntegHMACSHA1_96}, esp.Tunnel, true},
		{"tunnel/ah-sha256", transform{esp.ProtoAH, 0, esp.IntegHMACSHA256_128}, esp.Tunnel, false},
		{"transport/esp-aes256-sha256", transform{esp.ProtoESP, esp.EncAESCBC256, esp.IntegHMACSHA256_128}, esp.Transport, false},
		{"transport/esp-null-sha1/udp", transform{esp.ProtoESP, esp.EncNull, esp.IntegHMACSHA1_96}, esp.Transport, true},
		{"transport/ah-sha512", transform{esp.ProtoAH, 0, esp.IntegHMACSHA512_256}, esp.Transport, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			a := openGateway(t, l.gwA, "gwA", linux.Config{})
			b := openGateway(t, l.gwB, "gwB", linux.Config{})
			if tc.mode == esp.Tunnel {
				gatewayPair(t, a, b, tc.tr, tc.mode, tc.encap, "10.1.0.0/24", "10.2.0.0/24")
				ping(t, l.hostA, "10.2.0.10", 3)
				tcpTransfer(t, l.hostA, l.hostB, "10.2.0.10", 4<<20)
				tcpTransfer(t, l.hostB, l.hostA, "10.1.0.10", 1<<20)
			} else {
				gatewayPair(t, a, b, tc.tr, tc.mode, tc.encap, "192.0.2.1/32", "192.0.2.2/32")
				ping(t, l.gwA, "192.0.2.2", 3)
				tcpTransfer(t, l.gwA, l.gwB, "192.0.2.2", 4<<20)
			}
			for _, d := range []*esp.DataPlane{a, b} {
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

// A numbered UDP stream from hostA to hostB flows while the gateways replace
// their SAs again and again, make before break: new inbound SAs, new outbound
// SAs (traffic moves at once), then the old outbound SAs are deleted and, once
// what was in flight has arrived, the old inbound ones. No number goes missing.
func TestLabRekeyUnderTrafficLosesNothing(t *testing.T) {
	l := newLab(t)
	a := openGateway(t, l.gwA, "gwA", linux.Config{})
	b := openGateway(t, l.gwB, "gwB", linux.Config{})
	tr := transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}
	must(t, a.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")}))
	must(t, b.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, "10.2.0.0/24"), RemoteTS: mustTS(t, "10.1.0.0/24")}))
	old := installGatewaySAs(t, a, b, tr, esp.Tunnel, false, "10.1.0.0/24", "10.2.0.0/24", 0x10000)

	var rx, tx *net.UDPConn
	must(t, namespace.RunHandle(l.hostB, func() error {
		var err error
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.2.0.10"), Port: 6000})
		return err
	}))
	defer rx.Close()
	rx.SetReadBuffer(8 << 20)
	must(t, namespace.RunHandle(l.hostA, func() error {
		var err error
		tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP("10.2.0.10"), Port: 6000})
		return err
	}))
	defer tx.Close()

	// The path works end to end before the stream starts: a veth just
	// brought up may leave a gateway's first ARP request unanswered, and
	// the next goes a second later, longer than the stream lasts.
	probe := make([]byte, 4) // sequence number 0, which the stream never uses
	for deadline := time.Now().Add(5 * time.Second); ; {
		tx.Write(probe)
		rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := rx.Read(make([]byte, 2048)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe crossed the tunnel in 5 s; gwB %s", neighbours(t, l.gwB))
		}
	}

	seen := map[uint32]int{}
	var mu sync.Mutex
	recvDone := make(chan struct{})
	var recvErr error
	go func() {
		defer close(recvDone)
		buf := make([]byte, 2048)
		for {
			rx.SetReadDeadline(time.Now().Add(time.Second))
			n, err := rx.Read(buf)
			if err != nil {
				recvErr = err
				return
			}
			if n >= 4 {
				mu.Lock()
				seen[binary.BigEndian.Uint32(buf)]++
				mu.Unlock()
			}
		}
	}()
	stop := make(chan struct{})
	sent := make(chan uint32)
	go func() {
		msg := make([]byte, 200)
		n := uint32(0)
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			// About 4,000 packets a second: a steady stream, below what a
			// loaded 2-core CI machine's socket queues drop on their own.
			for range 4 {
				n++
				binary.BigEndian.PutUint32(msg, n)
				tx.Write(msg)
			}
			time.Sleep(time.Millisecond)
		}
	}()

	const rekeys = 10
	spi := uint32(0x20000)
	for range rekeys {
		time.Sleep(50 * time.Millisecond)
		fresh := installGatewaySAs(t, a, b, tr, esp.Tunnel, false, "10.1.0.0/24", "10.2.0.0/24", spi)
		spi += 2
		time.Sleep(5 * time.Millisecond) // packets already past the SA lookup finish on the old SA
		sentAB, sentBA := packets(a, old[0]), packets(b, old[2])
		must(t, a.DeleteSA(old[0]))
		must(t, b.DeleteSA(old[2]))
		// What was sent on the old SAs has arrived: the old inbound SAs
		// counted as many packets as their outbound twins sent.
		waitUntil(t, func() bool { return packets(b, old[1]) >= sentAB && packets(a, old[3]) >= sentBA })
		must(t, b.DeleteSA(old[1]))
		must(t, a.DeleteSA(old[3]))
		old = fresh
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	total := <-sent
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	var lost, dup int
	for n := uint32(1); n <= total; n++ {
		switch seen[n] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("%d of %d packets lost, %d duplicated across %d rekeys; the receiver stopped on %v; hostB UDP in %d, no port %d, errors %d, buffer errors %d; gwA stats %+v; gwB stats %+v; hostA UDP out %d, errors %d; hostA IP out %d, no route %d; gwA IP in %d, forwarded %d, addr errors %d, no route %d, discards %d; hostA neigh %s; gwA %s; gwB %s; hostB %s; gwB IP in %d, delivered %d, forwarded %d, addr errors %d, unknown protos %d, discards %d",
			lost, total, dup, rekeys, recvErr, snmpCounter(t, l.hostB, "Udp:", "InDatagrams"), snmpCounter(t, l.hostB, "Udp:", "NoPorts"),
			snmpCounter(t, l.hostB, "Udp:", "InErrors"), snmpCounter(t, l.hostB, "Udp:", "RcvbufErrors"), a.Stats(), b.Stats(),
			snmpCounter(t, l.hostA, "Udp:", "OutDatagrams"), snmpCounter(t, l.hostA, "Udp:", "SndbufErrors"),
			snmpCounter(t, l.hostA, "Ip:", "OutRequests"), snmpCounter(t, l.hostA, "Ip:", "OutNoRoutes"),
			snmpCounter(t, l.gwA, "Ip:", "InReceives"), snmpCounter(t, l.gwA, "Ip:", "ForwDatagrams"), snmpCounter(t, l.gwA, "Ip:", "InAddrErrors"),
			snmpCounter(t, l.gwA, "Ip:", "OutNoRoutes"), snmpCounter(t, l.gwA, "Ip:", "InDiscards"), neighbours(t, l.hostA), neighbours(t, l.gwA), neighbours(t, l.gwB), neighbours(t, l.hostB),
			snmpCounter(t, l.gwB, "Ip:", "InReceives"), snmpCounter(t, l.gwB, "Ip:", "InDelivers"), snmpCounter(t, l.gwB, "Ip:", "ForwDatagrams"), snmpCounter(t, l.gwB, "Ip:", "InAddrErrors"), snmpCounter(t, l.gwB, "Ip:", "InUnknownProtos"), snmpCounter(t, l.gwB, "Ip:", "InDiscards"))
	}
	if total < 1000 {
		t.Fatalf("only %d packets sent", total)
	}
	for _, s := range b.SAs() {
		if s.Dir == "in" && s.Counters.Packets == 0 {
			t.Errorf("the last inbound SA %s carried nothing", s.SPI)
		}
	}
	t.Logf("%d packets, none lost, across %d rekeys; gwB stats %+v", total, rekeys, b.Stats())
}

// Step 1 by traffic: the first ping matches a policy with no SA; the data
// plane holds it and calls Acquire, the stand-in for IKE installs the SAs, and
// the held packet goes out: the very first echo request gets its reply.
func TestLabAcquireHoldsTheFirstPacket(t *testing.T) {
	l := newLab(t)
	var b *esp.DataPlane
	acquired := make(chan esp.AcquireRequest, 4)
	a := openGateway(t, l.gwA, "gwA", linux.Config{Config: esp.Config{Hooks: esp.Hooks{Acquire: func(r esp.AcquireRequest) { acquired <- r }}}})
	b = openGateway(t, l.gwB, "gwB", linux.Config{})
	tr := transform{esp.ProtoESP, esp.EncAESCBC192, esp.IntegHMACSHA384_192}
	must(t, a.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")}))
	must(t, b.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, "10.2.0.0/24"), RemoteTS: mustTS(t, "10.1.0.0/24")}))
	go func() {
		r := <-acquired
		if r.Conn == "a-b" && r.Dst == netip.MustParseAddr("10.2.0.10") {
			installGatewaySAs(t, a, b, tr, esp.Tunnel, false, "10.1.0.0/24", "10.2.0.0/24", 0x3000)
		}
	}()
	ping(t, l.hostA, "10.2.0.10", 1)
	if s := a.Stats(); s.AcquireHeld != 0 || s.AcquireDropped != 0 {
		t.Fatalf("stats after the acquire: %+v", s)
	}
}

// packets is what an installed SA has carried so far.
func packets(d *esp.DataPlane, id esp.SAID) uint64 {
	for _, s := range d.SAs() {
		if s.ID == id {
			return s.Counters.Packets
		}
	}
	return 0
}

func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Each route into the TUN carries its SA's inner MTU: the path's 1500 bytes
// minus what the SA adds, counted here by hand from RFC 4303, 3948 and the
// transforms. A ping that fills it exactly, with DF, crosses the tunnel
// whole, and the protected packet on the wire is not fragmented.
func TestLabRouteMTUPerSA(t *testing.T) {
	cases := []struct {
		name    string
		tr      transform
		encap   bool
		mtu     int
		linkMTU int // of the link between the gateways; 0 leaves 1500
	}{
		// outer IPv4 20, UDP 8, ESP header 8, IV 8, padding ≤ 3, trailer 2, ICV 16
		{"esp-aes128gcm16/udp", transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, true, 1500 - 65, 0},
		// the same on a path of 1400 bytes, which the data plane finds itself
		{"esp-aes128gcm16/udp/link-1400", transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, true, 1400 - 65, 1400},
		// outer IPv4 20, ESP header 8, IV 16, padding ≤ 15, trailer 2, ICV 12
		{"esp-aes128-sha1", transform{esp.ProtoESP, esp.EncAESCBC128, esp.IntegHMACSHA1_96}, false, 1500 - 73, 0},
		// outer IPv4 20, AH 12 + ICV 16
		{"ah-sha256", transform{esp.ProtoAH, 0, esp.IntegHMACSHA256_128}, false, 1500 - 48, 0},
		// Jumbo links everywhere: the data plane sizes its buffers from its
		// interfaces, and TCP's segments (TSO split, GRO) are jumbo too.
		{"esp-aes128gcm16/udp/jumbo-9000", transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, true, 9000 - 65, 9000},
		{"esp-aes128-sha1/jumbo-9000", transform{esp.ProtoESP, esp.EncAESCBC128, esp.IntegHMACSHA1_96}, false, 9000 - 73, 9000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			jumbo := tc.linkMTU > 1500
			if tc.linkMTU != 0 {
				for _, ns := range []netns.NsHandle{l.gwA, l.gwB} {
					setLinkMTU(t, ns, "eth0", tc.linkMTU)
					if jumbo {
						setLinkMTU(t, ns, "eth1", tc.linkMTU)
					}
				}
				if jumbo {
					setLinkMTU(t, l.hostA, "eth0", tc.linkMTU)
					setLinkMTU(t, l.hostB, "eth0", tc.linkMTU)
				}
			}
			bus := events.NewBus("t")
			a := openGateway(t, l.gwA, "gwA", linux.Config{Config: esp.Config{Events: bus}})
			b := openGateway(t, l.gwB, "gwB", linux.Config{})
			gatewayPair(t, a, b, tc.tr, esp.Tunnel, tc.encap, "10.1.0.0/24", "10.2.0.0/24")
			var mtuEvents []events.Event
			for _, e := range bus.Since(0) {
				if e.Kind == events.RouteMTU {
					mtuEvents = append(mtuEvents, e)
				}
			}
			if len(mtuEvents) != 1 || mtuEvents[0].Fields["mtu"] != tc.mtu || mtuEvents[0].Step != events.StepData {
				t.Fatalf("route-mtu events %+v, want one with mtu %d", mtuEvents, tc.mtu)
			}
			t.Log(mtuEvents[0].Message)
			for _, s := range a.SAs() {
				if s.Dir == "out" && s.MTU != tc.mtu {
					t.Errorf("outbound SA %s: MTU %d, want %d", s.SPI, s.MTU, tc.mtu)
				}
			}
			h, err := netlink.NewHandleAt(l.gwA)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: linux.DefaultRouteTable}, netlink.RT_FILTER_TABLE)
			if err != nil || len(routes) != 1 {
				t.Fatalf("table %d: %v, %v", linux.DefaultRouteTable, routes, err)
			}
			if routes[0].MTU != tc.mtu {
				t.Fatalf("route %s: MTU %d, want %d", routes[0].Dst, routes[0].MTU, tc.mtu)
			}
			pingDF(t, l.hostA, "10.2.0.10", tc.mtu)
			if jumbo {
				tcpTransfer(t, l.hostA, l.hostB, "10.2.0.10", 8<<20)
			}
			if reasm := snmpCounter(t, l.gwB, "Ip:", "ReasmReqds"); reasm != 0 {
				t.Errorf("gwB reassembled %d fragments: the protected packet did not fit the path", reasm)
			}
		})
	}
}

// Two policies that share a remote prefix share its route into the TUN. The
// route takes the smaller of their SAs' inner MTUs, which fits both; when the
// policy with the smaller one goes, the route takes the other's, and it goes
// with the last policy.
func TestLabRouteMTUSharedPrefix(t *testing.T) {
	l := newLab(t)
	a := openGateway(t, l.gwA, "gwA", linux.Config{})
	b := openGateway(t, l.gwB, "gwB", linux.Config{})
	policy := func(lts string) esp.Policy {
		return esp.Policy{Conn: "a-b", LocalTS: mustTS(t, lts), RemoteTS: mustTS(t, "10.2.0.0/24")}
	}
	for _, lts := range []string{"10.1.0.0/25", "10.1.0.128/25"} {
		must(t, a.AddPolicy(policy(lts)))
		must(t, b.AddPolicy(esp.Policy{Conn: "a-b", LocalTS: mustTS(t, "10.2.0.0/24"), RemoteTS: mustTS(t, lts)}))
	}
	h, err := netlink.NewHandleAt(l.gwA)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routeMTU := func() int {
		t.Helper()
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: linux.DefaultRouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) > 1 {
			t.Fatalf("table %d: %v, %v", linux.DefaultRouteTable, routes, err)
		}
		if len(routes) == 0 {
			return 0
		}
		return routes[0].MTU
	}
	// ESP over protocol 50: GCM adds 20+8+8+3+2+16 bytes, CBC with
	// HMAC-SHA1-96 20+8+16+15+2+12.
	installGatewaySAs(t, a, b, transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, esp.Tunnel, false, "10.1.0.0/25", "10.2.0.0/24", 0xa000b000)
	if got := routeMTU(); got != 1500-57 {
		t.Fatalf("one GCM SA: route MTU %d, want %d", got, 1500-57)
	}
	installGatewaySAs(t, a, b, transform{esp.ProtoESP, esp.EncAESCBC128, esp.IntegHMACSHA1_96}, esp.Tunnel, false, "10.1.0.128/25", "10.2.0.0/24", 0xa000c000)
	if got := routeMTU(); got != 1500-73 {
		t.Fatalf("GCM and CBC SAs: route MTU %d, want the smaller, %d", got, 1500-73)
	}
	pingDF(t, l.hostA, "10.2.0.10", 1500-73)
	must(t, a.DeletePolicy(policy("10.1.0.128/25")))
	if got := routeMTU(); got != 1500-57 {
		t.Fatalf("the CBC policy deleted: route MTU %d, want the GCM SA's %d", got, 1500-57)
	}
	must(t, a.DeletePolicy(policy("10.1.0.0/25")))
	if got := routeMTU(); got != 0 {
		t.Fatalf("both policies deleted: a route is left with MTU %d", got)
	}
}

func setLinkMTU(t testing.TB, ns netns.NsHandle, name string, mtu int) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetMTU(link, mtu)
	}
	if err != nil {
		t.Fatalf("MTU %d on %s: %v", mtu, name, err)
	}
}

// pingDF sends one echo request of size bytes (IPv4 header included) with
// DF set, so that nothing on the way may fragment it, and waits for the reply.
func pingDF(t testing.TB, ns netns.NsHandle, dst string, size int) {
	t.Helper()
	var c net.PacketConn
	err := namespace.RunHandle(ns, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.IPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	})
	if err != nil {
		t.Fatal(err)
	}
	body := &icmp.Echo{ID: 0x1e6, Seq: 1, Data: bytes.Repeat([]byte{0xa5}, size-28)}
	msg, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: body}).Marshal(nil)
	to := &net.IPAddr{IP: net.ParseIP(dst)}
	// The first request may meet the gateway's route before hostA knows its
	// MTU; hostA learns it from the ICMP "fragmentation needed" it gets back.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.WriteTo(msg, to); err != nil {
			t.Fatalf("ping %s, %d bytes with DF: %v", dst, size, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, size+100)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && m.Type == ipv4.ICMPTypeEchoReply && from.String() == dst {
				if e, ok := m.Body.(*icmp.Echo); ok && e.ID == 0x1e6 && bytes.Equal(e.Data, body.Data) {
					return
				}
			}
		}
	}
	t.Fatalf("ping %s, %d bytes with DF: no reply", dst, size)
}

// snmpCounter reads one counter of /proc/net/snmp in the namespace.
func snmpCounter(t testing.TB, ns netns.NsHandle, table, name string) int64 {
	t.Helper()
	var data []byte
	err := namespace.RunHandle(ns, func() error {
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != table {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no %s %s in /proc/net/snmp", table, name)
	return 0
}

// The route into the TUN follows the path MTU toward the peer: when the
// kernel learns a smaller one (here a route with an MTU stands in for what an
// ICMP "fragmentation needed" from a router would teach it), the inner MTU
// drops within a second or two, and comes back when it goes.
func TestLabRouteMTUFollowsThePath(t *testing.T) {
	l := newLab(t)
	bus := events.NewBus("t")
	a := openGateway(t, l.gwA, "gwA", linux.Config{Config: esp.Config{Events: bus}})
	b := openGateway(t, l.gwB, "gwB", linux.Config{})
	gatewayPair(t, a, b, transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}, esp.Tunnel, true, "10.1.0.0/24", "10.2.0.0/24")
	h, err := netlink.NewHandleAt(l.gwA)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tunRouteMTU := func() int {
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: linux.DefaultRouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) != 1 {
			t.Fatalf("table %d: %v, %v", linux.DefaultRouteTable, routes, err)
		}
		return routes[0].MTU
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for tunRouteMTU() != want {
			if time.Now().After(deadline) {
				t.Fatalf("route into the TUN: MTU %d, want %d", tunRouteMTU(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(1500 - 65)
	narrow := &netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("192.0.2.2").To4(), Mask: net.CIDRMask(32, 32)}, LinkIndex: linkIndex(t, h, "eth0"), MTU: 1400}
	if err := h.RouteAdd(narrow); err != nil {
		t.Fatal(err)
	}
	waitFor(1400 - 65)
	pingDF(t, l.hostA, "10.2.0.10", 1400-65)
	if err := h.RouteDel(narrow); err != nil {
		t.Fatal(err)
	}
	waitFor(1500 - 65)
	var mtus []any
	for _, e := range bus.Since(0) {
		if e.Kind == events.RouteMTU {
			mtus = append(mtus, e.Fields["mtu"])
		}
	}
	if fmt.Sprint(mtus) != "[1435 1335 1435]" {
		t.Errorf("route-mtu events carried %v, want [1435 1335 1435]", mtus)
	}
}

func linkIndex(t testing.TB, h *netlink.Handle, name string) int {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Index
}
