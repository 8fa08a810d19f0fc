package impair_test

import (
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"

	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// The benchmarks compare an unimpaired impair.Link with a plain veth pair
// between the same kind of namespaces, in one run, and report both and their
// ratio:
//
//	go test ./impair -run '^$' -bench . -benchtime 2s
//
// (BenchmarkTCPBulk: one TCP connection, 64 KiB writes; BenchmarkSmallPackets:
// UDP frames of 64 bytes, as fast as one sender goes; BenchmarkLatency: UDP
// ping-pong, median round trip.)

// vethPair is two namespaces joined by a veth pair, addressed like pair.
func vethPair(b *testing.B) (a, bb netns.NsHandle, bAddr net.IP) {
	b.Helper()
	testenv.NeedRoot(b)
	_, a = netenv.Netns(b, "va")
	_, bb = netenv.Netns(b, "vb")
	nl, err := netlink.NewHandleAt(a)
	if err != nil {
		b.Fatal(err)
	}
	defer nl.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(bb))}
	if err := nl.LinkAdd(veth); err != nil {
		b.Fatalf("veth: %v", err)
	}
	configure(b, a, net.IPv4(10, 9, 0, 1).To4())
	configure(b, bb, net.IPv4(10, 9, 0, 2).To4())
	return a, bb, net.IPv4(10, 9, 0, 2).To4()
}

// path is a way between two namespaces to measure.
type path struct {
	name string
	a, b netns.NsHandle
	dst  net.IP
}

func benchPaths(b *testing.B) []path {
	va, vb, vdst := vethPair(b)
	p := newPair(b, pairOpt{})
	return []path{{"veth", va, vb, vdst}, {"link", p.a, p.b, p.bAddr}}
}

func BenchmarkTCPBulk(b *testing.B) {
	paths := benchPaths(b)
	b.ResetTimer()
	const chunk = 64 << 10
	gbps := map[string]float64{}
	for _, pt := range paths {
		var ln net.Listener
		inNS(b, pt.b, func() (err error) {
			ln, err = net.Listen("tcp4", net.JoinHostPort(pt.dst.String(), "0"))
			return err
		})
		done := make(chan int64, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- 0
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			done <- n
		}()
		var c net.Conn
		inNS(b, pt.a, func() (err error) {
			c, err = net.Dial("tcp4", ln.Addr().String())
			return err
		})
		buf := make([]byte, chunk)
		// Warm up (slow start, offload state) before timing.
		for range 256 {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		n := <-done
		elapsed := time.Since(start)
		ln.Close()
		if want := int64(b.N+256) * chunk; n != want {
			b.Fatalf("%s: received %d bytes of %d", pt.name, n, want)
		}
		gbps[pt.name] = float64(b.N) * chunk * 8 / elapsed.Seconds() / 1e9
	}
	b.ReportMetric(gbps["link"], "link-Gbit/s")
	b.ReportMetric(gbps["veth"], "veth-Gbit/s")
	b.ReportMetric(gbps["link"]/gbps["veth"], "link/veth")
	b.SetBytes(chunk)
}

func BenchmarkSmallPackets(b *testing.B) {
	paths := benchPaths(b)
	b.ResetTimer()
	// 64-byte Ethernet frames: 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload.
	// sendmmsg/recvmmsg batches of 64, so that the sockets are not what is
	// measured.
	const batch = 64
	payload := make([]byte, 64-14-20-8)
	pps := map[string]float64{}
	for _, pt := range paths {
		var recv *net.UDPConn
		inNS(b, pt.b, func() (err error) {
			recv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: pt.dst})
			return err
		})
		recv.SetReadBuffer(16 << 20)
		var send *net.UDPConn
		inNS(b, pt.a, func() (err error) {
			send, err = net.DialUDP("udp4", nil, recv.LocalAddr().(*net.UDPAddr))
			return err
		})
		// Resolve the neighbour before measuring.
		send.Write(payload)
		recv.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := recv.Read(make([]byte, 64)); err != nil {
			b.Fatalf("%s: first datagram: %v", pt.name, err)
		}
		got := make(chan int, 1)
		var last time.Time
		go func() {
			rc := ipv4.NewPacketConn(recv)
			msgs := make([]ipv4.Message, batch)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{make([]byte, 64)}
			}
			n := 0
			for {
				recv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				k, err := rc.ReadBatch(msgs, 0)
				if err != nil {
					got <- n
					return
				}
				n += k
				last = time.Now()
			}
		}()
		sc := ipv4.NewPacketConn(send)
		msgs := make([]ipv4.Message, batch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{payload}
		}
		start := time.Now()
		for sent := 0; sent < b.N; {
			k, err := sc.WriteBatch(msgs[:min(batch, b.N-sent)], 0)
			if err != nil {
				k = max(k, 1) // ENOBUFS and the like: the packet is gone, go on
			}
			sent += k
		}
		n := <-got
		send.Close()
		recv.Close()
		if n == 0 {
			b.Fatalf("%s: nothing received", pt.name)
		}
		pps[pt.name] = float64(n) / last.Sub(start).Seconds()
	}
	b.ReportMetric(pps["link"]/1e3, "link-kpps")
	b.ReportMetric(pps["veth"]/1e3, "veth-kpps")
	b.ReportMetric(pps["link"]/pps["veth"], "link/veth")
}

func BenchmarkLatency(b *testing.B) {
	paths := benchPaths(b)
	b.ResetTimer()
	median := map[string]time.Duration{}
	for _, pt := range paths {
		var echo *net.UDPConn
		inNS(b, pt.b, func() (err error) {
			echo, err = net.ListenUDP("udp4", &net.UDPAddr{IP: pt.dst})
			return err
		})
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := echo.ReadFromUDP(buf)
				if err != nil {
					return
				}
				echo.WriteToUDP(buf[:n], from)
			}
		}()
		var c *net.UDPConn
		inNS(b, pt.a, func() (err error) {
			c, err = net.DialUDP("udp4", nil, echo.LocalAddr().(*net.UDPAddr))
			return err
		})
		msg, buf := make([]byte, 32), make([]byte, 64)
		rtts := make([]time.Duration, 0, b.N)
		roundTrip := func() (time.Duration, error) {
			start := time.Now()
			if _, err := c.Write(msg); err != nil {
				return 0, err
			}
			c.SetReadDeadline(start.Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				return 0, err
			}
			return time.Since(start), nil
		}
		for range 100 { // warm up: ARP, caches
			if _, err := roundTrip(); err != nil {
				b.Fatalf("%s: %v", pt.name, err)
			}
		}
		for range b.N {
			rtt, err := roundTrip()
			if err != nil {
				b.Fatalf("%s: %v", pt.name, err)
			}
			rtts = append(rtts, rtt)
		}
		c.Close()
		echo.Close()
		slices.Sort(rtts)
		median[pt.name] = rtts[len(rtts)/2]
	}
	b.ReportMetric(float64(median["link"].Microseconds()), "link-µs/rtt")
	b.ReportMetric(float64(median["veth"].Microseconds()), "veth-µs/rtt")
	b.ReportMetric(float64((median["link"] - median["veth"]).Microseconds()), "added-µs/rtt")
}

// BenchmarkNewLink is what links cost a deployment: 50 links created
// concurrently (two TAP devices each, MACs set, up, forwarders started), then
// removed with CloseAll. Reported per link.
func BenchmarkNewLink(b *testing.B) {
	testenv.NeedRoot(b)
	_, a := netenv.Netns(b, "na")
	_, bb := netenv.Netns(b, "nb")
	const n = 50
	var create, remove time.Duration
	b.ResetTimer()
	for range b.N {
		links := make([]*impair.Link, n)
		errs := make(chan error, n)
		start := time.Now()
		for i := range n {
			go func() {
				l, err := impair.New(impair.Config{
					Name: fmt.Sprintf("bench-%d", i),
					A:    impair.Endpoint{Node: "a", Iface: fmt.Sprintf("eth%d", i), Netns: a},
					B:    impair.Endpoint{Node: "b", Iface: fmt.Sprintf("eth%d", i), Netns: bb},
				})
				links[i] = l
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		create += time.Since(start)
		start = time.Now()
		if err := impair.CloseAll(links...); err != nil {
			b.Fatal(err)
		}
		remove += time.Since(start)
	}
	b.ReportMetric(float64(create.Microseconds())/float64(b.N*n), "µs/link-created")
	b.ReportMetric(float64(remove.Microseconds())/float64(b.N*n), "µs/link-closed")
}
