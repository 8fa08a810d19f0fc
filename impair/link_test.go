package impair_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

func ms(n int) netem.Duration { return netem.Duration(time.Duration(n) * time.Millisecond) }

func mustPing(t *testing.T, pg *pinger, dst net.IP) time.Duration {
	t.Helper()
	rtt, ok, err := pg.ping(dst, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("ping %s: no reply (%v)", dst, err)
	}
	return rtt
}

func TestLinkForwardsBothWays(t *testing.T) {
	p := newPair(t, pairOpt{})
	mustPing(t, newPinger(t, p.a), p.bAddr)
	mustPing(t, newPinger(t, p.b), p.aAddr)
	a, b := p.link.Counters()
	if a.Sent == 0 || a.Delivered != a.Sent || b.Delivered != b.Sent {
		t.Errorf("counters: a-to-b %+v, b-to-a %+v", a, b)
	}
	for _, mac := range []net.HardwareAddr{p.aMAC, p.bMAC} {
		if mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
			t.Errorf("MAC %s is not locally administered unicast", mac)
		}
	}
	if bytes.Equal(p.aMAC, p.bMAC) {
		t.Error("both ends have the same MAC")
	}
}

func TestRefusesTheHostNamespace(t *testing.T) {
	testenv.NeedRoot(t)
	_, b := netenv.Netns(t, "b")
	host, err := netns.Get() // this thread's: the test process's own namespace
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	_, err = impair.New(impair.Config{Name: "host", A: impair.Endpoint{Node: "host", Iface: "iplt0", Netns: host},
		B: impair.Endpoint{Node: "b", Iface: "eth0", Netns: b}})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("a link end in the host namespace: %v", err)
	}
	nl, _ := netlink.NewHandleAt(b)
	defer nl.Close()
	if _, err := nl.LinkByName("eth0"); err == nil {
		t.Error("the other end was left behind")
	}
}

// blast sends count numbered UDP datagrams from a to b and returns how often
// each number arrived. It waits for the link to take each burst before
// sending the next, and the receiving socket has room for them all, so that
// on a busy machine nothing is lost but what the link drops on purpose.
func blast(t *testing.T, p *pair, send, recv *net.UDPConn, first, count int) map[uint32]int {
	t.Helper()
	rc, err := recv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		// Past net.core.rmem_max, which a namespace cannot raise: root may.
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
	})
	if err != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v", err)
	}
	got := map[uint32]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			recv.SetReadDeadline(time.Now().Add(time.Second))
			n, err := recv.Read(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				got[binary.BigEndian.Uint32(buf)]++
			}
		}
	}()
	base, _ := p.link.Counters()
	msg := make([]byte, 32)
	for i := range count {
		binary.BigEndian.PutUint32(msg, uint32(first+i))
		if _, err := send.Write(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%50 == 49 || i == count-1 {
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, _ := p.link.Counters()
				if c.Sent-base.Sent >= uint64(i+1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the link took %d of %d datagrams", c.Sent-base.Sent, i+1)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	<-done
	return got
}

func sumCounts(m map[uint32]int) int {
	n := 0
	for _, k := range m {
		n += k
	}
	return n
}

func withinBinomial(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	if math.Abs(float64(k)-mean) > 5*sd {
		t.Errorf("%s: %d of %d, expected %.0f ± %.0f", what, k, n, mean, 5*sd)
	}
}

// Loss, duplication and corruption on real devices, 10,000 datagrams each:
// the rates hold, and what the receiver gets agrees with the counters.
func TestRatesOnDevices(t *testing.T) {
	p := newPair(t, pairOpt{quiet: true, seed: 1})
	send, recv := p.udpPair(t)
	const n = 10000
	before, _ := p.link.Counters()
	step := func(name string, args ...string) (impair.Counters, map[uint32]int) {
		c, err := netem.ParseChange(args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.link.Update(c); err != nil {
			t.Fatal(err)
		}
		got := blast(t, p, send, recv, 0, n)
		after, _ := p.link.Counters()
		d := diff(after, before)
		before = after
		if d.Sent != n {
			t.Fatalf("%s: the link saw %d of %d datagrams", name, d.Sent, n)
		}
		return d, got
	}

	d, got := step("loss", "--loss", "20%")
	withinBinomial(t, "lost", int(d.Lost), n, 0.20)
	if sumCounts(got) != n-int(d.Lost) {
		t.Errorf("received %d, sent %d, lost %d", sumCounts(got), n, d.Lost)
	}

	d, got = step("duplicate", "--loss", "0%", "--duplicate", "10%")
	withinBinomial(t, "duplicated", int(d.Duplicated), n, 0.10)
	if sumCounts(got) != n+int(d.Duplicated) || len(got) != n {
		t.Errorf("received %d (%d distinct), sent %d, duplicated %d", sumCounts(got), len(got), n, d.Duplicated)
	}

	// Every single-bit error is caught by the IPv4 header or UDP checksum, so
	// exactly the corrupted datagrams go missing.
	d, got = step("corrupt", "--duplicate", "0%", "--corrupt", "10%")
	withinBinomial(t, "corrupted", int(d.Corrupted), n, 0.10)
	if sumCounts(got) != n-int(d.Corrupted) {
		t.Errorf("received %d, sent %d, corrupted %d", sumCounts(got), n, d.Corrupted)
	}
}

func diff(a, b impair.Counters) impair.Counters {
	return impair.Counters{Sent: a.Sent - b.Sent, Delivered: a.Delivered - b.Delivered, Lost: a.Lost - b.Lost,
		Duplicated: a.Duplicated - b.Duplicated, Corrupted: a.Corrupted - b.Corrupted, MTUDrops: a.MTUDrops - b.MTUDrops,
		DownDrops: a.DownDrops - b.DownDrops, QueueDrops: a.QueueDrops - b.QueueDrops, DeliveredBytes: a.DeliveredBytes - b.DeliveredBytes}
}

func TestSameSeedSameDropsOnDevices(t *testing.T) {
	pattern := func(seed uint64) string {
		p := newPair(t, pairOpt{quiet: true, seed: seed, params: netem.Both(netem.Netem{Loss: netem.Loss{Random: 30}})})
		send, recv := p.udpPair(t)
		got := blast(t, p, send, recv, 0, 400)
		var ids []uint32
		for id := range got {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if a, _ := p.link.Counters(); a.Sent != 400 {
			t.Fatalf("the link saw %d frames, not just the 400 datagrams", a.Sent)
		}
		return fmt.Sprint(ids)
	}
	first := pattern(11)
	if again := pattern(11); again != first {
		t.Errorf("seed 11 twice gave different drops:\n%s\n%s", first, again)
	}
	if other := pattern(12); other == first {
		t.Error("seeds 11 and 12 gave the same drops")
	}
}

func TestDelayShowsInPing(t *testing.T) {
	p := newPair(t, pairOpt{params: netem.Both(netem.Netem{Delay: ms(20)})})
	pg := newPinger(t, p.a)
	mustPing(t, pg, p.bAddr) // ARP, itself delayed
	var rtts []time.Duration
	for range 5 {
		rtts = append(rtts, mustPing(t, pg, p.bAddr))
	}
	slices.Sort(rtts)
	if med := rtts[2]; med < 40*time.Millisecond || med > 90*time.Millisecond {
		t.Errorf("median RTT %v over a link with 20ms each way; all %v", med, rtts)
	}
	// Changed at run time: the next ping sees it.
	if _, err := p.link.Update(netem.Change{Value: netem.Params{BtoA: netem.Netem{Delay: ms(60)}}, BtoA: netem.FieldDelay}); err != nil {
		t.Fatal(err)
	}
	if rtt := mustPing(t, pg, p.bAddr); rtt < 80*time.Millisecond || rtt > 130*time.Millisecond {
		t.Errorf("RTT %v after b-to-a became 60ms", rtt)
	}
}

// A bulk TCP transfer through a 20 Mbit/s link: the wire carries 20 Mbit/s
// within 5%, and the application gets that rate less the headers.
func TestRateLimitHoldsForTCP(t *testing.T) {
	const rate = 20e6
	p := newPair(t, pairOpt{params: netem.Params{AtoB: netem.Netem{Rate: rate}}})
	var ln net.Listener
	inNS(t, p.b, func() (err error) { ln, err = net.Listen("tcp4", net.JoinHostPort(p.bAddr.String(), "0")); return err })
	defer ln.Close()
	var received atomic.Int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	var c net.Conn
	inNS(t, p.a, func() (err error) { c, err = net.Dial("tcp4", ln.Addr().String()); return err })
	stop := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); c.Close() }()
	time.Sleep(time.Second) // slow start, and the queue filling
	r0, c0, t0 := received.Load(), counterBytes(p.link), time.Now()
	time.Sleep(3 * time.Second)
	r1, c1, t1 := received.Load(), counterBytes(p.link), time.Now()
	secs := t1.Sub(t0).Seconds()
	wire := float64(c1-c0) * 8 / secs
	goodput := float64(r1-r0) * 8 / secs
	// Full-sized segments: 1448 bytes of data in a 1514-byte frame
	// (Ethernet 14, IPv4 20, TCP 20 + 12 of timestamps).
	wantGoodput := rate * 1448 / 1514
	t.Logf("wire %.2f Mbit/s, goodput %.2f Mbit/s (expected %.2f)", wire/1e6, goodput/1e6, wantGoodput/1e6)
	if math.Abs(wire-rate) > 0.05*rate {
		t.Errorf("the wire carried %.2f Mbit/s through a %.0f Mbit/s link", wire/1e6, rate/1e6)
	}
	if math.Abs(goodput-wantGoodput) > 0.05*wantGoodput {
		t.Errorf("TCP got %.2f Mbit/s through a %.0f Mbit/s link, expected %.2f", goodput/1e6, rate/1e6, wantGoodput/1e6)
	}
}

func counterBytes(l *impair.Link) int64 {
	a, _ := l.Counters()
	return int64(a.DeliveredBytes)
}

func TestRuntimeChangeAndDownUp(t *testing.T) {
	p := newPair(t, pairOpt{quiet: true})
	sub := p.events.Subscribe(nil)
	defer sub.Close()
	send, recv := p.udpPair(t)
	// one sends a datagram and reports whether it arrived. A datagram that
	// crosses does so in microseconds; the wait only guards a busy machine.
	one := func() bool {
		t.Helper()
		if _, err := send.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		recv.SetReadDeadline(time.Now().Add(time.Second))
		_, err := recv.Read(make([]byte, 8))
		return err == nil
	}
	if !one() {
		t.Fatal("nothing passes an unimpaired link")
	}
	lossAll, _ := netem.ParseChange([]string{"--loss", "100%"})
	if _, err := p.link.Update(lossAll); err != nil {
		t.Fatal(err)
	}
	if one() {
		t.Error("the datagram right after loss 100% arrived")
	}
	if a, _ := p.link.Counters(); a.Lost != 1 {
		t.Errorf("Lost %d after one datagram", a.Lost)
	}
	if err := p.link.Reset(); err != nil {
		t.Fatal(err)
	}
	if !one() {
		t.Error("the datagram right after --reset was lost")
	}

	// An invalid result is refused, the link keeps its settings.
	bad, _ := netem.ParseChange([]string{"--reorder", "10%"})
	if _, err := p.link.Update(bad); err == nil {
		t.Error("reorder without a delay accepted")
	}
	if p.link.Params() != (netem.Params{}) {
		t.Errorf("a refused change changed the settings: %v", p.link.Params())
	}

	if err := p.link.SetDown(true); err != nil {
		t.Fatal(err)
	}
	for _, h := range []netns.NsHandle{p.a, p.b} {
		if carrier(t, h) {
			t.Error("carrier still up on a link that is down")
		}
	}
	pg := newPinger(t, p.a)
	if _, ok, _ := pg.ping(p.bAddr, 500*time.Millisecond); ok {
		t.Error("ping crossed a link that is down")
	}
	if err := p.link.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if !carrier(t, p.a) {
		t.Error("carrier not back")
	}
	// The first packet after SetDown(false) returns crosses: the kernel
	// has its device back in service by then (a script pings right after
	// `link: {up: true}`). Several times, as the race it guards was rare;
	// every other cycle waits for the kernel to take the device out of
	// service first, the others go down and up at once.
	for i := range 20 {
		if _, ok, _ := pg.ping(p.bAddr, 500*time.Millisecond); !ok {
			t.Fatalf("cycle %d: the first ping after the link came up was lost", i)
		}
		if err := p.link.SetDown(true); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			for deadline := time.Now().Add(time.Second); eth0(t, p.a).OperState == netlink.OperUp && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		if err := p.link.SetDown(false); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := pg.ping(p.bAddr, 500*time.Millisecond); !ok {
		t.Fatal("the first ping after the last cycle was lost")
	}

	var kinds []events.Kind
	for len(kinds) < 4+2*20 {
		select {
		case e := <-sub.C():
			if e.Link != p.link.Name() {
				t.Errorf("event for link %q: %v", e.Link, e)
			}
			kinds = append(kinds, e.Kind)
		case <-time.After(time.Second):
			t.Fatalf("events so far: %v", kinds)
		}
	}
	// loss 100%, reset, down, up: going down or up is not also an impairment change.
	want := []events.Kind{events.LinkImpair, events.LinkImpair, events.LinkDown, events.LinkUp}
	for range 20 {
		want = append(want, events.LinkDown, events.LinkUp)
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

// eth0 reads the attributes of a node's eth0 as the kernel last set them.
func eth0(t *testing.T, h netns.NsHandle) *netlink.LinkAttrs {
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
	return l.Attrs()
}

func carrier(t *testing.T, h netns.NsHandle) bool {
	return eth0(t, h).RawFlags&0x10000 != 0 // IFF_LOWER_UP
}

func TestMTUDropsLargerPackets(t *testing.T) {
	p := newPair(t, pairOpt{params: netem.Params{MTU: 1000}})
	pg := newPinger(t, p.a)
	mustPing(t, pg, p.bAddr)
	// A 1200-byte ICMP payload makes a 1228-byte IP packet; the interfaces
	// have MTU 1500, so nothing fragments it and the wire drops it.
	pg.payload = make([]byte, 1200)
	if _, ok, _ := pg.ping(p.bAddr, 500*time.Millisecond); ok {
		t.Error("a 1228-byte packet crossed a link with MTU 1000")
	}
	if a, _ := p.link.Counters(); a.MTUDrops != 1 {
		t.Errorf("MTUDrops %d", a.MTUDrops)
	}
	pg.payload = make([]byte, 972) // exactly 1000 bytes of IP packet
	mustPing(t, pg, p.bAddr)
}

func TestCloseRemovesDevicesAndPublishesCounters(t *testing.T) {
	p := newPair(t, pairOpt{})
	sub := p.events.Subscribe(func(e *events.Event) bool { return e.Kind == events.LinkCounters })
	defer sub.Close()
	mustPing(t, newPinger(t, p.a), p.bAddr)
	if err := p.link.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []netns.NsHandle{p.a, p.b} {
		nl, _ := netlink.NewHandleAt(h)
		if _, err := nl.LinkByName("eth0"); err == nil {
			t.Error("eth0 is still there after Close")
		}
		nl.Close()
	}
	select {
	case e := <-sub.C():
		a, ok := e.Field("a-to-b").(impair.Counters)
		if !ok || a.Sent == 0 {
			t.Errorf("final counters event: %v %#v", e, e.Fields)
		}
	case <-time.After(time.Second):
		t.Error("no final LinkCounters event")
	}
	if _, err := p.link.Update(netem.Change{}); err == nil {
		t.Error("a closed link took a change")
	}
}

// readPcap reads a capture back with gopacket, failing on any frame it cannot
// decode, and returns the frames.
func readPcap(t *testing.T, r io.Reader) []gopacket.Packet {
	t.Helper()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		t.Fatalf("pcap header: %v", err)
	}
	if pr.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", pr.LinkType())
	}
	var out []gopacket.Packet
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(out)+1, err)
		}
		if ci.Length > 1514 {
			t.Errorf("frame %d is %d bytes: a super-frame reached the capture", len(out)+1, ci.Length)
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Errorf("frame %d does not decode: %v", len(out)+1, el.Error())
		}
		out = append(out, pkt)
	}
}

func countEchoRequests(pkts []gopacket.Packet) int {
	n := 0
	for _, p := range pkts {
		if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && ic.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
			n++
		}
	}
	return n
}

// bulk sends n bytes over TCP from a to b.
func bulk(t *testing.T, p *pair, n int) {
	t.Helper()
	var ln net.Listener
	inNS(t, p.b, func() (err error) { ln, err = net.Listen("tcp4", net.JoinHostPort(p.bAddr.String(), "0")); return err })
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		k, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- k
	}()
	var c net.Conn
	inNS(t, p.a, func() (err error) { c, err = net.Dial("tcp4", ln.Addr().String()); return err })
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if k := <-done; k != int64(n) {
		t.Fatalf("TCP delivered %d of %d bytes", k, n)
	}
}

func TestCaptureToFileAndStream(t *testing.T) {
	p := newPair(t, pairOpt{})
	dir := t.TempDir()
	sent, err := p.link.CaptureFile(filepath.Join(dir, "sender.pcap"), impair.CaptureOptions{Point: impair.AtSender, Directions: []netem.Dir{netem.AtoB}})
	if err != nil {
		t.Fatal(err)
	}
	// A live stream, as `ipseclab capture LINK -w - | tshark -r -` gets it:
	// frames must reach the reader while the capture still runs.
	pr, pw := io.Pipe()
	live, err := p.link.Capture(pw, impair.CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	echoes := make(chan int, 1)
	streamed := make(chan []gopacket.Packet, 1)
	go func() {
		r, err := pcapgo.NewReader(pr)
		if err != nil {
			streamed <- nil
			return
		}
		var pkts []gopacket.Packet
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				streamed <- pkts
				return
			}
			pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
			pkts = append(pkts, pkt)
			if countEchoRequests(pkts) == 1 && countEchoRequests([]gopacket.Packet{pkt}) == 1 {
				echoes <- 1
			}
		}
	}()
	pg := newPinger(t, p.a)
	mustPing(t, pg, p.bAddr)
	select {
	case <-echoes:
	case <-time.After(2 * time.Second):
		t.Fatal("the live capture did not show the echo request while running")
	}
	mustPing(t, pg, p.bAddr)
	bulk(t, p, 4<<20) // without offloads off, this would come as 64 KiB super-frames
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pkts := <-streamed
	if countEchoRequests(pkts) != 2 {
		t.Errorf("live capture: %d echo requests, want 2", countEchoRequests(pkts))
	}
	if err := sent.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "sender.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	filePkts := readPcap(t, f)
	tcpBytes := 0
	for _, pk := range filePkts {
		if tcp, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			tcpBytes += len(tcp.Payload)
		}
		if ic, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && ic.TypeCode.Type() == layers.ICMPv4TypeEchoReply {
			t.Error("the a-to-b capture holds a reply from b")
		}
	}
	if tcpBytes < 4<<20 {
		t.Errorf("the sender capture holds %d bytes of TCP data, 4 MiB were sent", tcpBytes)
	}
	if n, dropped := sent.Stats(); n != uint64(len(filePkts)) || dropped != 0 {
		t.Errorf("stats %d written %d dropped, file has %d", n, dropped, len(filePkts))
	}
}

// With loss, the sender's capture has every frame and the receiver's only
// those that arrived.
func TestCapturePointsAroundLoss(t *testing.T) {
	p := newPair(t, pairOpt{quiet: true, params: netem.Params{AtoB: netem.Netem{Loss: netem.Loss{Random: 50}}}})
	var before, after bytes.Buffer
	cs, err := p.link.Capture(&before, impair.CaptureOptions{Point: impair.AtSender})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := p.link.Capture(&after, impair.CaptureOptions{Point: impair.AtReceiver})
	if err != nil {
		t.Fatal(err)
	}
	send, recv := p.udpPair(t)
	got := blast(t, p, send, recv, 0, 200)
	cs.Close()
	cr.Close()
	nb, na := len(readPcap(t, &before)), len(readPcap(t, &after))
	if nb != 200 || na != sumCounts(got) {
		t.Errorf("sender capture %d frames (want 200), receiver capture %d (received %d)", nb, na, sumCounts(got))
	}
}

func TestCaptureReadsInTshark(t *testing.T) {
	tshark := testenv.NeedCommand(t, "tshark")
	p := newPair(t, pairOpt{params: netem.Both(netem.Netem{Delay: ms(1)})})
	path := filepath.Join(t.TempDir(), "link.pcap")
	c, err := p.link.CaptureFile(path, impair.CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pg := newPinger(t, p.a)
	for range 3 {
		mustPing(t, pg, p.bAddr)
	}
	bulk(t, p, 1<<20)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	n, _ := c.Stats()
	cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.severity")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != int(n) {
		t.Errorf("tshark read %d frames, the capture wrote %d", len(lines), n)
	}
	for _, l := range lines {
		if strings.Contains(l, "8388608") { // PI_ERROR: malformed
			t.Errorf("tshark reports an error: %s", l)
		}
	}
	// The same file read back from stdin, as `tshark -r -` does.
	f, _ := os.Open(path)
	defer f.Close()
	cmd = exec.Command(tshark, "-r", "-", "-Y", "icmp.type == 8")
	cmd.Stdin = f
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err = cmd.CombinedOutput()
	if err != nil || strings.Count(string(out), "Echo (ping) request") != 3 {
		t.Errorf("tshark -r - found %d echo requests (%v):\n%s", strings.Count(string(out), "Echo (ping) request"), err, out)
	}
}
