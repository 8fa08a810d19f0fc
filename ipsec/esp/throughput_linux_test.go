package esp_test

import (
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/linux"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// BenchmarkTCPThroughput measures one bulk TCP flow from hostA to hostB
// through two gateways, in one run so that the ratios compare like with like:
//
//   - strongswan-libipsec/*: charon with kernel-libipsec on both gateways
//     (strongswan/swantest), always UDP-encapsulated;
//   - esp-*: this data plane, ESP over IP protocol 50 or UDP-encapsulated,
//     with the TUN's segmentation offload and, once, without it;
//   - esp-null-none-udp-ceiling: the same tunnel with no cryptography at all
//     (which RFC 4303 forbids, so only this benchmark can install it): the
//     most any transform can reach on this machine.
//
// Each esp case runs beside its own no-IPsec baseline: a second lab of the
// same shape whose gateways route in the clear. The two flows take turns in
// bursts of burstMiB, so that this VM's drifting speed (the clear path alone
// ranges from 11 to 18 Gbit/s between runs) weighs on both alike; the ratio
// is the clear flow's total time over the tunnel's for the same bytes.
//
// b.N is the number of MiB each flow sends. Cases report the tunnel's
// Mbit/s, the clear path's (clear-Mbit/s), their ratio (x-no-ipsec) and the
// ratio to charon with the same transform (x-libipsec). Run it with
// -bench TCPThroughput -benchtime 1000x.
func BenchmarkTCPThroughput(b *testing.B) {
	libipsec := map[string]float64{}
	for _, bl := range swantest.ThroughputBaselines {
		b.Run("strongswan-libipsec/"+bl.Name, func(b *testing.B) {
			swantest.BenchTCP(b, bl)
			libipsec[bl.Name] = float64(b.N) * (1 << 20) * 8 / 1e6 / b.Elapsed().Seconds()
		})
	}
	gcm := transform{esp.ProtoESP, esp.EncAESGCM16_128, esp.IntegNone}
	cbc := transform{esp.ProtoESP, esp.EncAESCBC128, esp.IntegHMACSHA1_96}
	cases := []struct {
		name      string
		tr        transform
		baseline  string
		encap     bool
		noOffload bool
	}{
		{"esp-aes128gcm16-udp", gcm, "aes128gcm16", true, false},
		{"esp-aes128-sha1-udp", cbc, "aes128-sha1", true, false},
		{"esp-aes128gcm16", gcm, "aes128gcm16", false, false},
		{"esp-aes128-sha1", cbc, "aes128-sha1", false, false},
		{"esp-aes128gcm16-udp-no-offload", gcm, "aes128gcm16", true, true},
		// No cryptography at all, which RFC 4303 forbids: the ceiling of
		// the tunnel's own work (TUN, sockets, framing, replay, policy),
		// whatever the transform.
		{"esp-null-none-udp-ceiling", transform{esp.ProtoESP, esp.EncNull, esp.IntegNone}, "", true, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			clear := newLab(b)
			clear.route(b, clear.gwA, "10.2.0.0/24", "192.0.2.2")
			clear.route(b, clear.gwB, "10.1.0.0/24", "192.0.2.1")
			l := newLab(b)
			if tc.tr.enc == esp.EncNull && tc.tr.integ == esp.IntegNone {
				esp.AllowUnprotectedForCeiling(b)
			}
			a := openGateway(b, l.gwA, "gwA", linux.Config{NoOffload: tc.noOffload})
			g := openGateway(b, l.gwB, "gwB", linux.Config{NoOffload: tc.noOffload})
			gatewayPair(b, a, g, tc.tr, esp.Tunnel, tc.encap, "10.1.0.0/24", "10.2.0.0/24")

			clearFlow := startFlow(b, clear.hostA, clear.hostB, "10.2.0.10")
			tunnelFlow := startFlow(b, l.hostA, l.hostB, "10.2.0.10")
			b.ResetTimer()
			var clearTime, tunnelTime time.Duration
			for sent := 0; sent < b.N; sent += burstMiB {
				n := min(burstMiB, b.N-sent)
				clearTime += clearFlow.send(b, n)
				tunnelTime += tunnelFlow.send(b, n)
			}
			b.StopTimer()
			bits := float64(b.N) * (1 << 20) * 8
			mbps := bits / 1e6 / tunnelTime.Seconds()
			clearMbps := bits / 1e6 / clearTime.Seconds()
			b.ReportMetric(mbps, "Mbit/s")
			b.ReportMetric(clearMbps, "clear-Mbit/s")
			b.ReportMetric(mbps/clearMbps, "x-no-ipsec")
			if ref := libipsec[tc.baseline]; ref > 0 {
				b.ReportMetric(mbps/ref, "x-libipsec")
			}
			// ns/op is the tunnel's time per MiB, not the wall time of both flows.
			b.ReportMetric(float64(tunnelTime.Nanoseconds())/float64(b.N), "ns/op")
		})
	}
}

// burstMiB is how much one flow sends before the other takes its turn: long
// enough to measure bulk transfer rather than TCP's start after the pause
// (the clear path gains up to a third on bursts of 4 MiB, when the receiver
// starts on an empty queue), short enough that the two flows see the same
// machine. The environment variable BURST overrides it, to study that.
var burstMiB = envInt("BURST", 256)

// flow is one established TCP connection whose receiver counts bytes, so
// that a burst is timed from its first byte written to its last byte read.
type flow struct {
	conn     net.Conn
	received atomic.Int64
	progress chan struct{} // signalled after reads; capacity 1
	done     chan struct{} // closed when the receiver stops
	total    int64
}

// startFlow connects from → dst:5201 in to, and sends 4 MiB so that TCP has
// found the path MTU (the TUN's is smaller than the links') and opened its
// window before anything is timed.
func startFlow(b *testing.B, from, to netns.NsHandle, dst string) *flow {
	b.Helper()
	var ln net.Listener
	if err := namespace.RunHandle(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(dst, "5201"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	f := &flow{progress: make(chan struct{}, 1), done: make(chan struct{})}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		// io.Discard's reads: 8 KiB at a time, as the figures were
		// first measured.
		buf := make([]byte, 8<<10)
		defer close(f.done)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				f.received.Add(int64(n))
				select {
				case f.progress <- struct{}{}:
				default:
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	if err := namespace.RunHandle(from, func() error {
		var err error
		f.conn, err = net.DialTimeout("tcp4", net.JoinHostPort(dst, "5201"), 5*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		b.Fatal("the receiver did not accept the connection")
	}
	b.Cleanup(func() { f.conn.Close(); peer.Close() })
	f.send(b, 4)
	f.total = f.received.Load()
	return f
}

// send writes n MiB and returns how long it took from the first byte written
// to the last byte read.
func (f *flow) send(b *testing.B, n int) time.Duration {
	b.Helper()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range n {
		if _, err := f.conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	f.total += int64(n) << 20
	return f.waitFor(b, f.total).Sub(start)
}

// waitFor returns when the receiver has read mark bytes in all.
func (f *flow) waitFor(b *testing.B, mark int64) time.Time {
	b.Helper()
	timeout := time.After(30 * time.Second)
	for f.received.Load() < mark {
		select {
		case <-f.progress:
		case <-f.done:
			b.Fatalf("the receiver stopped after %d of %d bytes", f.received.Load(), mark)
		case <-timeout:
			b.Fatalf("the receiver has %d of %d bytes after 30 s", f.received.Load(), mark)
		}
	}
	return time.Now()
}

func (l *lab) route(t testing.TB, ns netns.NsHandle, dst, gw string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, n, _ := net.ParseCIDR(dst)
	if err := h.RouteAdd(&netlink.Route{Dst: n, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatal(err)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}
