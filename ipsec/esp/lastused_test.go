package esp

import (
	"sync"
	"testing"
	"time"
)

// LastUsed is when an SA last carried a packet, on the data plane's clock,
// in each direction; an SA that carried nothing reads zero. Dead peer
// detection counts the silence from it.
func TestLastUsed(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, b := twoGateways(t, Config{Node: "a", Now: clock.Now}, Config{Node: "b", Now: clock.Now})
	ab, ba := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x1000)
	for _, id := range append(ab[:], ba[:]...) {
		if u := a.dp.LastUsed(id); !u.IsZero() {
			t.Fatalf("SA %s used at %v before any packet", id, u)
		}
	}
	clock.Advance(1500 * time.Millisecond)
	sent := clock.Now()
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 1, 100)
	receive(t, b.dev, 2*time.Second)
	clock.Advance(time.Second)
	if u := a.dp.LastUsed(ab[0]); !u.Equal(sent) {
		t.Errorf("A's outbound SA last used at %v, want %v", u, sent)
	}
	if u := b.dp.LastUsed(ab[1]); !u.Equal(sent) {
		t.Errorf("B's inbound SA last used at %v, want %v", u, sent)
	}
	if u := b.dp.LastUsed(ba[0]); !u.IsZero() {
		t.Errorf("B's outbound SA, which carried nothing, last used at %v", u)
	}
	if u := a.dp.LastUsed(SAID{}); !u.IsZero() {
		t.Errorf("an SA that is not installed reads %v", u)
	}
}

// Packets for an SPI with no SA are reported to IKE (Hooks.UnknownSPI) with
// their sender, at most once per UnknownSPIInterval however many arrive;
// each one is counted.
func TestUnknownSPIReportedRateLimited(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	var got []UnknownSPI
	hooks := Hooks{UnknownSPI: func(u UnknownSPI) { mu.Lock(); got = append(got, u); mu.Unlock() }}
	a, b := twoGateways(t, Config{Node: "a", Now: clock.Now}, Config{Node: "b", Now: clock.Now, Hooks: hooks})
	ab, _ := installPair(t, a, b, transform{ProtoESP, EncAESGCM16_128, IntegNone}, false, 0x1000)
	must(t, b.dp.DeleteSA(ab[1])) // B lost the SA; A goes on using it
	for i := range 10 {
		a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 100)
	}
	waitFor(t, func() bool { return b.dp.Stats().UnknownSPI == 10 })
	clock.Advance(UnknownSPIInterval)
	a.dev.in <- icmpEcho("10.1.0.5", "10.2.0.7", 11, 100)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	time.Sleep(20 * time.Millisecond) // room for a report too many
	mu.Lock()
	defer mu.Unlock()
	for _, u := range got {
		if u.Protocol != ProtoESP || u.SPI != 0x1000 || u.Peer.Addr().String() != "192.0.2.1" {
			t.Errorf("reported %+v, want ESP SPI 00001000 from 192.0.2.1", u)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d reports for 11 packets in two intervals, want 2", len(got))
	}
}
