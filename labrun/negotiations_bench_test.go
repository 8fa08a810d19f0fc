package labrun_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

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
			fmt.Fprintf(&lab, `name: %s
topology:
  nodes:
    gw-a: {kind: gateway, gateway: 198.51.100.1}
    isp:  {kind: router}
    gw-b: {kind: gateway, gateway: 203.0.113.1}
  links:
    - endpoints: [gw-a:eth0, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, gw-b:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {method: psk, secret: lab-only-secret}
    ike: {mode: main, proposals: [aes128-sha256-%s]}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128gcm16], start: trap}
script:
`, name, g)
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
