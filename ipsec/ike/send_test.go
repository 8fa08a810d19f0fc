package ike_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// unreachable is a transport whose every send fails as a kernel without a
// route to the peer fails it.
type unreachable struct{}

func (unreachable) SendIKE(_, _ netip.AddrPort, _ []byte) error {
	return fmt.Errorf("write udp: %w", syscall.ENETUNREACH)
}
func (unreachable) SendKeepalive(netip.AddrPort) error { return syscall.ENETUNREACH }

// A send the network refuses is an event that names the errno, and an
// initiation that times out says what was sent, how often, and what came
// back, instead of only that time ran out.
func TestRefusedSendsAreEventsAndATimeoutSaysWhy(t *testing.T) {
	ci, _ := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ci.Retransmit = ike.Retransmit{Timeout: time.Second, Tries: 5, Base: 1}
	clock := sim.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	bus := events.NewBus("send", events.WithClock(clock.Now))
	sub := bus.SubscribeWithHistory(func(e *events.Event) bool { return e.Kind == events.IKESendFailed })
	defer sub.Close()
	e, err := ike.New(ike.Config{Node: "gw-a", Events: bus, Connections: []ike.Connection{ci}, Transport: unreachable{},
		DataPlane: newFakeDataPlane(0x1000), Clock: clock, Rand: mrand.NewChaCha8([32]byte{3})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Initiate(ctx, "lab") }()

	select {
	case ev := <-sub.C():
		if ev.Field("errno") != "ENETUNREACH" || ev.Level != events.Error || !strings.Contains(ev.Message, "Main Mode 1/6") {
			t.Errorf("send failure event: %s (errno %v, level %s)", ev, ev.Field("errno"), ev.Level)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a refused send published no event")
	}
	clock.Advance(time.Second) // one retransmission, refused too
	clock.Advance(time.Second)
	cancel()
	err = <-done
	if err == nil {
		t.Fatal("Initiate succeeded over a transport that sends nothing")
	}
	for _, want := range []string{"did not come up in time", "Main Mode 1/6 sent to 192.0.2.2:500", "sent again 2 times", "nothing came back", "network is unreachable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the timeout says %q, want it to say %q", err, want)
		}
	}
	if s := e.Stats(); s.SendErrors != 3 {
		t.Errorf("%d send errors counted, want 3", s.SendErrors)
	}
}
