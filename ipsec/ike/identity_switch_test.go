package ike_test

import (
	"context"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// Two road-warrior connections on one gateway share a pre-shared key and
// accept any address; each expects its own identity. In Main Mode the
// gateway must pick one before the identity arrives; once MM5 shows it, the
// ISAKMP SA moves to the connection that expects it, as strongSwan does,
// instead of refusing the peer with INVALID-ID-INFORMATION.
func TestMainModeSwitchesConnectionByIdentity(t *testing.T) {
	for _, who := range []string{"alice", "bob"} {
		t.Run(who, func(t *testing.T) {
			client, base := conns(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			client.LocalID = "fqdn:" + who + ".example"
			base.Remote = netip.Addr{}
			var gwConns []ike.Connection
			for _, n := range []string{"alice", "bob"} {
				c := base
				c.Name, c.RemoteID = n, "fqdn:"+n+".example"
				gwConns = append(gwConns, c)
			}
			client.Name = who
			w := &wire{}
			clock := sim.NewClock(pairEpoch)
			bus := events.NewBus("switch", events.WithHistory(4096))
			engines := map[netip.Addr]*ike.Engine{}
			for i, cs := range [][]ike.Connection{{client}, gwConns} {
				e, err := ike.New(ike.Config{Node: cs[0].Local.String(), Events: bus, Connections: cs, Transport: endpoint{w},
					DataPlane: newFakeDataPlane(uint32(i+1) << 12), Clock: clock, Rand: mrand.NewChaCha8([32]byte{byte(i + 1)})})
				if err != nil {
					t.Fatal(err)
				}
				engines[cs[0].Local] = e
			}
			done := make(chan error, 1)
			go func() { done <- engines[client.Local].Initiate(context.Background(), who) }()
			var err error
			for waiting := true; waiting; {
				for d, ok := w.next(); ok; d, ok = w.next() {
					engines[d.to.Addr()].Receive(ike.Packet{Local: d.to, Remote: d.from, Data: d.data})
				}
				select {
				case err = <-done:
					waiting = false
				case <-time.After(time.Millisecond):
				}
			}
			if err != nil {
				t.Fatalf("initiate: %v\n%s", err, eventLines(bus.Since(0)))
			}
			gw := engines[gwConns[0].Local].SAs()
			if len(gw.ISAKMP) != 1 || gw.ISAKMP[0].Conn != who {
				t.Errorf("the gateway's ISAKMP SA serves %+v, want connection %s", gw.ISAKMP, who)
			}
			switched := findEvents(bus.Since(0), events.ISAKMPConn)
			if who == "alice" && len(switched) != 0 {
				t.Errorf("switched although the first guess was right: %s", eventLines(switched))
			}
			if who == "bob" && (len(switched) != 1 || !strings.Contains(switched[0].Message, "switching to it")) {
				t.Errorf("no switch to bob's connection: %s", eventLines(bus.Since(0)))
			}
		})
	}
}
