package esp

import (
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
)

// Each ESP fault, on one packet of three, and what the receiver makes of it.
func TestESPFaults(t *testing.T) {
	cases := []struct {
		action   fault.Action
		arrive   int // packets B's device gets
		check    func(in Counters, st Stats) bool
		reaction string
	}{
		{fault.Corrupt, 2, func(in Counters, _ Stats) bool { return in.IntegrityFailures == 1 }, "one integrity failure"},
		{fault.Replay, 3, func(in Counters, _ Stats) bool { return in.ReplayDrops == 1 }, "one replay drop"},
		{fault.WrongSPI, 2, func(_ Counters, st Stats) bool { return st.UnknownSPI == 1 }, "one packet for an unknown SPI"},
		{fault.Truncate, 2, func(in Counters, st Stats) bool { return in.IntegrityFailures+in.OtherDrops+st.Malformed == 1 }, "one packet dropped as malformed or failing integrity"},
		{fault.Reorder, 3, func(in Counters, _ Stats) bool { return in.ReplayDrops == 0 && in.Packets == 3 }, "three packets accepted, none as a replay"},
	}
	for _, tr := range []transform{{ProtoESP, EncAESGCM16_128, IntegNone}, {ProtoESP, EncAESCBC128, IntegHMACSHA1_96}, {ProtoAH, 0, IntegHMACSHA256_128}} {
		for _, encap := range []bool{false, true} {
			if encap && tr.proto == ProtoAH {
				continue
			}
			for _, c := range cases {
				name := tr.String() + "/" + string(c.action)
				if encap {
					name += "/udp"
				}
				t.Run(name, func(t *testing.T) {
					bus := events.NewBus("esp-fault")
					a, b := twoGateways(t, Config{Node: "a", Events: bus}, Config{Node: "b"})
					ab, _ := installPair(t, a, b, tr, encap, 0x1000)
					must(t, a.dp.InjectFault(fault.Fault{Plane: fault.ESP, Action: c.action}))
					for i := range 3 {
						a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 100)
						if c.action != fault.Reorder || i > 0 {
							time.Sleep(5 * time.Millisecond) // one batch each
						}
					}
					for range c.arrive {
						receive(t, b.dev, 2*time.Second)
					}
					var in Counters
					waitFor(t, func() bool {
						for _, s := range b.dp.SAs() {
							if s.ID == ab[1] {
								in = s.Counters
							}
						}
						return c.check(in, b.dp.Stats())
					})
					select {
					case p := <-b.dev.out:
						t.Fatalf("an extra packet arrived: %x", p)
					case <-time.After(20 * time.Millisecond):
					}
					var faults []events.Event
					for _, e := range bus.Since(0) {
						if e.Kind == events.FaultInjected {
							faults = append(faults, e)
						}
					}
					if len(faults) != 1 || !strings.Contains(faults[0].Message, "fault injected: a") {
						t.Errorf("fault events: %v", faults)
					}
					if a.dp.ClearFaults() != 0 {
						t.Errorf("a fault for one packet stayed armed")
					}
				})
			}
		}
	}
}

// With nothing armed, flush costs one atomic load: the benchmark of the
// outbound path (BenchmarkOutbound*) is the measure; this only checks that
// disarming restores the plain path.
func TestESPFaultClear(t *testing.T) {
	a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
	installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x1000)
	must(t, a.dp.InjectFault(fault.Fault{Plane: fault.ESP, Action: fault.Corrupt, Occurrence: fault.Occurrence{Every: true}}))
	if l := a.dp.ArmedFaults(); len(l) != 1 || l[0].Action != fault.Corrupt || l[0].Remaining != -1 {
		t.Fatalf("ArmedFaults: %+v", l)
	}
	if n := a.dp.ClearFaults(); n != 1 {
		t.Fatalf("ClearFaults: %d", n)
	}
	if l := a.dp.ArmedFaults(); len(l) != 0 {
		t.Fatalf("ArmedFaults after ClearFaults: %+v", l)
	}
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 1, 100)
	receive(t, b.dev, 2*time.Second)
	// A fault for three packets, one of them sent: two left.
	must(t, a.dp.InjectFault(fault.Fault{Plane: fault.ESP, Action: fault.Replay, Occurrence: fault.Occurrence{Count: 3}}))
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 2, 100)
	receive(t, b.dev, 2*time.Second)
	if l := a.dp.ArmedFaults(); len(l) != 1 || l[0].Remaining != 2 || l[0].Seen != 1 {
		t.Fatalf("ArmedFaults after one of three packets: %+v", l)
	}
	if err := a.dp.InjectFault(fault.Fault{Plane: fault.IKE, Action: fault.Drop}); err == nil {
		t.Errorf("the data plane took an IKE fault")
	}
}

// A reorder with no later packet to go after still delivers its packet, once
// the hold has passed: the default second, or the fault's own hold; a
// cleared fault drops what it held.
func TestESPReorderReleasedAfterHold(t *testing.T) {
	for _, c := range []struct {
		name  string
		hold  time.Duration
		encap bool
		clear bool
	}{
		{"default", 0, false, false},
		{"hold-200ms", 200 * time.Millisecond, false, false},
		{"hold-200ms/udp", 200 * time.Millisecond, true, false},
		{"cleared", 200 * time.Millisecond, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := twoGateways(t, Config{Node: "a"}, Config{Node: "b"})
			ab, _ := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, c.encap, 0x1000)
			must(t, a.dp.InjectFault(fault.Fault{Plane: fault.ESP, Action: fault.Reorder, Delay: c.hold}))
			want := c.hold
			if want == 0 {
				want = fault.DefaultHold
			}
			start := time.Now()
			a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 1, 100)
			if c.clear {
				time.Sleep(50 * time.Millisecond)
				a.dp.ClearFaults()
				select {
				case p := <-b.dev.out:
					t.Fatalf("a cleared reorder still sent its packet: %x", p)
				case <-time.After(want + 300*time.Millisecond):
				}
				return
			}
			receive(t, b.dev, want+2*time.Second)
			if took := time.Since(start); took < want {
				t.Errorf("the held packet arrived after %v, before its hold of %v", took, want)
			}
			var in Counters
			for _, s := range b.dp.SAs() {
				if s.ID == ab[1] {
					in = s.Counters
				}
			}
			if in.Packets != 1 || in.ReplayDrops != 0 {
				t.Errorf("receiver's counters: %+v", in)
			}
		})
	}
}

// An ESP fault narrowed to a connection damages only the packets of that
// connection's SAs, and counts only them.
func TestESPFaultOfOneConnection(t *testing.T) {
	bus := events.NewBus("esp-fault-conn")
	a, b := twoGateways(t, Config{Node: "a", Events: bus}, Config{Node: "b"})
	tr := transform{ProtoESP, EncAESGCM16_128, IntegNone}
	ab, _ := installPair(t, a, b, tr, false, 0x1000)
	// A second connection, a-c, toward 10.3.0.0/24 behind the same peer.
	out, in := saPair(t, tr.proto, Tunnel, tr.enc, tr.integ, false, 0x2000)
	out.Conn, in.Conn = "a-c", "a-c"
	out.RemoteTS, in.RemoteTS = mustTS(t, "10.3.0.0/24"), mustTS(t, "10.3.0.0/24")
	must(t, a.dp.AddPolicy(Policy{Conn: "a-c", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.3.0.0/24")}))
	must(t, b.dp.AddPolicy(Policy{Conn: "a-c", LocalTS: mustTS(t, "10.3.0.0/24"), RemoteTS: mustTS(t, "10.1.0.0/24")}))
	must(t, b.dp.AddSA(in))
	must(t, a.dp.AddSA(out))

	must(t, a.dp.InjectFault(fault.Fault{Plane: fault.ESP, Action: fault.Corrupt, Conn: "a-c", Occurrence: fault.Occurrence{Count: 2}}))
	for i, dst := range []string{"10.2.0.7", "10.3.0.7", "10.2.0.7", "10.3.0.7"} {
		a.dev.in <- icmpEcho("10.1.0.5", dst, uint32(i), 100)
		time.Sleep(5 * time.Millisecond) // one batch each
	}
	receive(t, b.dev, 2*time.Second) // the two packets of a-b
	receive(t, b.dev, 2*time.Second)
	counters := func() (abIn, acIn Counters) {
		for _, s := range b.dp.SAs() {
			switch s.ID {
			case ab[1]:
				abIn = s.Counters
			case in.ID():
				acIn = s.Counters
			}
		}
		return
	}
	waitFor(t, func() bool { _, ac := counters(); return ac.IntegrityFailures == 2 })
	if abIn, _ := counters(); abIn.Packets != 2 || abIn.IntegrityFailures != 0 {
		t.Errorf("a-b's packets were touched: %+v", abIn)
	}
	if l := a.dp.ArmedFaults(); len(l) != 0 {
		t.Errorf("the fault for two packets of a-c is still armed: %+v", l)
	}
	for _, e := range bus.Since(0) {
		if e.Kind == events.FaultInjected && e.Conn != "a-c" {
			t.Errorf("fault event of connection %q: %s", e.Conn, e.Message)
		}
	}
}
