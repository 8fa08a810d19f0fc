package esp

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/node"
)

// libipsecMbps is strongSwan's kernel-libipsec between two namespaces on this
// machine, as measured for the design notes (about 550 Mbit/s); the interop
// harness measures it live.
const libipsecMbps = 550

// BenchmarkTCPThroughput measures one bulk TCP flow from hostA to hostB
// through the two gateways: without IPsec (the gateways route in the clear),
// and through the user-space data plane with AES-GCM-128 and with
// AES-CBC-128/HMAC-SHA1-96, plain ESP and UDP-encapsulated, with the TUN's
// segmentation offload and without it. Each iteration sends 1 MiB; the
// metrics are Mbit/s and, for IPsec, the ratios to the clear path measured in
// the same run and to strongSwan's kernel-libipsec. Run it with
// -bench TCPThroughput -benchtime 2000x (two GiB per case).
func BenchmarkTCPThroughput(b *testing.B) {
	var clearMbps float64
	cases := []struct {
		name      string
		tr        *transform
		encap     bool
		noOffload bool
	}{
		{name: "no-ipsec"},
		{name: "esp-aes128gcm16", tr: &transform{ProtoESP, EncAESGCM16_128, IntegNone}},
		{name: "esp-aes128-sha1", tr: &transform{ProtoESP, EncAESCBC128, IntegHMACSHA1_96}},
		{name: "esp-aes128gcm16-udp", tr: &transform{ProtoESP, EncAESGCM16_128, IntegNone}, encap: true},
		{name: "esp-aes128-sha1-udp", tr: &transform{ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, encap: true},
		{name: "esp-aes128gcm16-no-offload", tr: &transform{ProtoESP, EncAESGCM16_128, IntegNone}, noOffload: true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			l := newLab(b)
			if tc.tr == nil {
				l.route(b, l.gwA, "10.2.0.0/24", "192.0.2.2")
				l.route(b, l.gwB, "10.1.0.0/24", "192.0.2.1")
			} else {
				a := openGateway(b, l.gwA, "gwA", OpenConfig{NoOffload: tc.noOffload})
				g := openGateway(b, l.gwB, "gwB", OpenConfig{NoOffload: tc.noOffload})
				gatewayPair(b, a, g, *tc.tr, Tunnel, tc.encap, "10.1.0.0/24", "10.2.0.0/24")
			}
			mbps := bulkTCP(b, l.hostA, l.hostB, "10.2.0.10")
			b.ReportMetric(mbps, "Mbit/s")
			if tc.tr == nil {
				clearMbps = mbps
				return
			}
			if clearMbps > 0 {
				b.ReportMetric(mbps/clearMbps, "x-no-ipsec")
			}
			b.ReportMetric(mbps/libipsecMbps, "x-libipsec")
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
// timed from the first byte written to the last byte received.
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
	want := int64(b.N) * chunk
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
	return float64(want) * 8 / elapsed.Seconds() / 1e6
}
