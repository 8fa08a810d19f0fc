package esp_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/node"
	"github.com/ipseclab/ipseclab/node/strongswan/swantest"
)

// BenchmarkTCPThroughput measures one bulk TCP flow from hostA to hostB
// through two gateways, in one run so that the ratios compare like with like:
//
//   - no-ipsec: the gateways route in the clear;
//   - strongswan-libipsec/*: charon with kernel-libipsec on both gateways
//     (node/strongswan/swantest), always UDP-encapsulated;
//   - esp-*: this data plane, ESP over IP protocol 50 or UDP-encapsulated,
//     with the TUN's segmentation offload and, once, without it.
//
// Each iteration sends 1 MiB. IPsec cases report Mbit/s, the ratio to the
// clear path (x-no-ipsec) and to charon with the same transform (x-libipsec).
// Run it with -bench TCPThroughput -benchtime 1000x.
func BenchmarkTCPThroughput(b *testing.B) {
	var clearMbps float64
	libipsec := map[string]float64{}
	b.Run("no-ipsec", func(b *testing.B) {
		l := newLab(b)
		l.route(b, l.gwA, "10.2.0.0/24", "192.0.2.2")
		l.route(b, l.gwB, "10.1.0.0/24", "192.0.2.1")
		clearMbps = bulkTCP(b, l.hostA, l.hostB, "10.2.0.10")
		b.ReportMetric(clearMbps, "Mbit/s")
	})
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
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			l := newLab(b)
			a := openGateway(b, l.gwA, "gwA", esp.OpenConfig{NoOffload: tc.noOffload})
			g := openGateway(b, l.gwB, "gwB", esp.OpenConfig{NoOffload: tc.noOffload})
			gatewayPair(b, a, g, tc.tr, esp.Tunnel, tc.encap, "10.1.0.0/24", "10.2.0.0/24")
			mbps := bulkTCP(b, l.hostA, l.hostB, "10.2.0.10")
			b.ReportMetric(mbps, "Mbit/s")
			if clearMbps > 0 {
				b.ReportMetric(mbps/clearMbps, "x-no-ipsec")
			}
			if ref := libipsec[tc.baseline]; ref > 0 {
				b.ReportMetric(mbps/ref, "x-libipsec")
			}
		})
	}
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

// bulkTCP sends b.N MiB over one TCP connection and returns the rate in Mbit/s,
// timed from the first measured byte written to the last byte received. Like
// swantest.BenchTCP, it first sends 4 MiB so that TCP has found the path MTU
// (the TUN's is smaller than the links') and opened its window.
func bulkTCP(b *testing.B, from, to netns.NsHandle, dst string) float64 {
	const chunk = 1 << 20
	var ln net.Listener
	if err := node.InNetnsHandle(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(dst, "5201"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const warmup = 4
	want := int64(b.N+warmup) * chunk
	done := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		defer c.Close()
		n, _ := io.CopyN(io.Discard, c, want)
		done <- n
	}()
	var conn net.Conn
	if err := node.InNetnsHandle(from, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(dst, "5201"), 5*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, chunk)
	for range warmup {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(chunk)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	got := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	if got != want {
		b.Fatalf("received %d of %d bytes", got, want)
	}
	return float64(b.N) * chunk * 8 / elapsed.Seconds() / 1e6
}
