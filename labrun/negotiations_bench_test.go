package labrun_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// acrossARouter is the start of a lab file: gw-a and gw-b, of the kind
// given, on either side of a router, as cmd/ipseclab's negotiation
// benchmark has them.
func acrossARouter(name, kind string) string {
	return fmt.Sprintf("name: %s\n"+`topology:
  nodes:
    gw-a: {kind: %s, gateway: 198.51.100.1}
    isp:  {kind: router}
    gw-b: {kind: %s, gateway: 203.0.113.1}
  links:
    - endpoints: [gw-a:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
`, name, kind, kind)
}

// BenchmarkLabProcessNegotiations is cmd/ipseclab's BenchmarkScriptNegotiations
// without the `run` process: the lab process's work alone (the two stacks,
// the links through the router, the script, and the event log, written
// nowhere), b.N tunnel-up/tunnel-down pairs in one script. With
// IPSECLAB_NO_EVENT_LOG=1 nothing reads the events but the script: what
// the lab machinery allows before anyone watches. Both are ceilings for the
// script run as users run it.
func BenchmarkLabProcessNegotiations(b *testing.B) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	for _, g := range []string{"modp2048", "curve25519"} {
		b.Run(g, func(b *testing.B) {
			name := fmt.Sprintf("b%d-neg", os.Getpid())
			var lab strings.Builder
			lab.WriteString(acrossARouter(name, "gateway"))
			fmt.Fprintf(&lab, `ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {method: psk, secret: lab-only-secret}
    ike: {mode: main, proposals: [aes128-sha256-%s]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128gcm16], start: trap}
script:
`, g)
			for range b.N {
				lab.WriteString("  - tunnel-up: {connection: office}\n  - tunnel-down: {connection: office}\n")
			}
			l, err := topology.Parse("lab.yaml", []byte(lab.String()))
			if err != nil {
				b.Fatal(err)
			}
			bus := events.NewBus(name)
			defer bus.Close()
			r, err := labrun.StartRuntime(context.Background(), l, labrun.RuntimeOptions{Bus: bus})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Shutdown()
			if os.Getenv("IPSECLAB_NO_EVENT_LOG") == "" {
				go labrun.WriteEventLines(io.Discard, bus, bus.SubscribeWithHistory(nil), nil, nil)
			}
			// When each tunnel-up step starts, noted as it is published
			// (the bus keeps too short a history for a long script).
			var ups []time.Time
			sub := bus.Subscribe(func(e *events.Event) bool {
				if e.Kind == events.ScriptStep && strings.Contains(e.Message, ": tunnel-up ") {
					ups = append(ups, e.Time) // under the bus's lock
				}
				return false
			})
			defer sub.Close()
			b.ResetTimer()
			res := r.RunScript(context.Background())
			b.StopTimer()
			if !res.OK() {
				b.Fatal(res.Errors)
			}
			bus.Close() // ups is complete
			if len(ups) != b.N {
				b.Fatalf("%d tunnel-up steps of %d in the bus's history", len(ups), b.N)
			}
			if b.N < 2 {
				return // the testing package's first round, one pair
			}
			// From the first tunnel-up to the last, as the CLI benchmark
			// counts: the script's settling at the end is not negotiating.
			b.ReportMetric(float64(len(ups)-1)/ups[len(ups)-1].Sub(ups[0]).Seconds(), "negotiations/s")
		})
	}
}

// BenchmarkWireCeiling is what the lab's wire alone allows a script of
// negotiations: no IKE, no SAs, no events, only the datagrams of one
// tunnel-up/tunnel-down pair crossing the same two impairable links and
// the router, between sockets in the two gateways' namespaces, inside
// the process that forwards the links (as the lab process does). Main
// Mode and Quick Mode 1-2 are eight messages each waiting for the one
// before; Quick Mode 3/3 and the two Deletes follow without an answer. No
// implementation of the script, in this lab, on this machine, negotiates
// faster than this; CPU per pair is the whole process's.
func BenchmarkWireCeiling(b *testing.B) {
	testenv.NeedRoot(b)
	netenv.SharedLabs(b)
	name := fmt.Sprintf("b%d-wire", os.Getpid())
	l, err := topology.Parse("lab.yaml", []byte(acrossARouter(name, "host")))
	if err != nil {
		b.Fatal(err)
	}
	bus := events.NewBus(name)
	defer bus.Close()
	r, err := labrun.StartRuntime(context.Background(), l, labrun.RuntimeOptions{Bus: bus})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Shutdown()
	listen := func(node, addr string) *net.UDPConn {
		var c *net.UDPConn
		if err := labrun.InNetnsHandle(r.Deployment.Nodes[node].Handle, func() (err error) {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		return c
	}
	ini, resp := listen("gw-a", "198.51.100.2:500"), listen("gw-b", "203.0.113.2:500")
	defer ini.Close()
	defer resp.Close()

	// The sizes of a Curve25519 Main Mode, an aes128gcm16 Quick Mode and
	// the Deletes, as the timeline's message events report them. The
	// first byte tells the responder whether to answer, and with what size.
	exchange := []struct{ size, answer int }{{356, 132}, {148, 148}, {108, 92}, {236, 236}}
	oneWay := []int{76, 76, 92} // Quick Mode 3/3, Delete (IPsec), Delete (ISAKMP)
	received := make(chan struct{}, 1<<16)
	go func() {
		buf := make([]byte, 2048)
		out := make([]byte, 2048)
		for {
			n, from, err := resp.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n >= 2 && buf[0] == 1 {
				size := int(buf[1]) * 4
				if _, err := resp.WriteToUDPAddrPort(out[:size], from); err != nil {
					return
				}
				continue
			}
			received <- struct{}{}
		}
	}()
	to := netip.MustParseAddrPort("203.0.113.2:500")
	msg, buf := make([]byte, 2048), make([]byte, 2048)
	pair := func() error {
		for _, x := range exchange {
			msg[0], msg[1] = 1, byte(x.answer/4)
			if _, err := ini.WriteToUDPAddrPort(msg[:x.size], to); err != nil {
				return err
			}
			_ = ini.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := ini.ReadFromUDPAddrPort(buf); err != nil {
				return err
			}
		}
		msg[0] = 0
		for _, size := range oneWay {
			if _, err := ini.WriteToUDPAddrPort(msg[:size], to); err != nil {
				return err
			}
		}
		return nil
	}
	for range 50 { // warm up: ARP, caches
		if err := pair(); err != nil {
			b.Fatal(err)
		}
	}
	for range 50 * len(oneWay) {
		<-received
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := pair(); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N * len(oneWay) {
		<-received
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(syscall.TimevalToNsec(after.Utime) + syscall.TimevalToNsec(after.Stime) -
		syscall.TimevalToNsec(before.Utime) - syscall.TimevalToNsec(before.Stime))
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pairs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/pair")
	b.ReportMetric(0, "ns/op")
}
