package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// espVsAH returns the two connections of the esp-vs-ah lab, as one gateway
// (local, protecting localTS) sees them towards another: an ESP tunnel
// between the LANs, and AH in transport mode between the gateways.
func espVsAH(t *testing.T, role ike.Role, local, remote netip.Addr, localTS, remoteTS netip.Prefix) (tunnel, transport ike.Connection) {
	ah, err := proposal.ParseList(proposal.AH, []string{"sha256"})
	if err != nil {
		t.Fatal(err)
	}
	tunnel = ike.Connection{
		Name: "esp-tunnel", Role: role, Local: local, PSK: psk, Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child: ike.Child{LocalTS: localTS, RemoteTS: remoteTS, Proposals: espProposals(t, "null-sha256"), Mode: esp.Tunnel},
	}
	transport = tunnel
	transport.Name, transport.Child = "ah-transport", ike.Child{Proposals: ah, Mode: esp.Transport}
	if role == ike.Initiator {
		tunnel.Remote, transport.Remote = remote, remote
	}
	return tunnel, transport
}

// TestQuickModeChoosesTheConnection: B answers two connections with A, an
// ESP tunnel and AH in transport mode, each accepting any peer, as a lab's
// responder does. Phase 1 can only pick one of them (by A's address), yet
// each Quick Mode must get the IPsec SAs of the connection its selectors and
// proposals ask for, accounted to that connection. A connection with another
// pre-shared key is never a candidate, whatever its selectors.
func TestQuickModeChoosesTheConnection(t *testing.T) {
	for _, first := range []string{"esp-tunnel", "ah-transport"} {
		t.Run(first+"-first", func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.Phase2Up)
			aTunnel, aTransport := espVsAH(t, ike.Initiator, addrA, addrB, lanA, lanB)
			bTunnel, bTransport := espVsAH(t, ike.Responder, addrB, netip.Addr{}, lanB, lanA)
			a := w.start("A", w.net.AddHost("A", addrA), nil, aTunnel, aTransport)
			// B lists AH first: every ISAKMP SA from A is made under it.
			b := w.start("B", w.net.AddHost("B", addrB), nil, bTransport, bTunnel)
			second := map[string]string{"esp-tunnel": "ah-transport", "ah-transport": "esp-tunnel"}[first]
			for _, name := range []string{first, second} {
				if err := a.stack.Initiate(ctx(t), name); err != nil {
					t.Fatalf("initiate %s: %v", name, err)
				}
			}
			var pairs []ike.IPsecStatus
			eventually(t, "B to install both pairs", func() bool { pairs = b.installed(); return len(pairs) == 2 })
			for _, p := range pairs {
				want := map[string]string{"esp-tunnel": "esp tunnel " + lanB.String(), "ah-transport": "ah transport " + addrB.String() + "/32"}[p.Conn]
				if got := p.Protocol + " " + p.Mode + " " + p.LocalTS; got != want {
					t.Errorf("B's pair of %s: %s, want %s", p.Conn, got, want)
				}
			}
			ups := rec.find(events.Phase2Up, "B", "")
			for _, name := range []string{"esp-tunnel", "ah-transport"} {
				if len(filterConn(ups, name)) != 1 {
					t.Errorf("B's phase2-up events do not name %s once: %v", name, ups)
				}
			}
			sendThrough(t, a, b, hostA, hostB, "through the ESP tunnel")
			sendThrough(t, b, a, hostB, hostA, "back through the ESP tunnel")
			gwA, gwB := netip.AddrPortFrom(addrA, 1000), netip.AddrPortFrom(addrB, 2000)
			sendThrough(t, a, b, gwA, gwB, "gateway to gateway under AH")
			sendThrough(t, b, a, gwB, gwA, "and back under AH")
			for _, s := range b.stack.DataPlane().SAs() {
				if (s.Conn == "esp-tunnel") != (s.Protocol == "esp") {
					t.Errorf("B's data plane accounts %s SA %s to %s", s.Protocol, s.SPI, s.Conn)
				}
			}
		})
	}

	t.Run("another-key", func(t *testing.T) {
		w := newWorld(t)
		aTunnel, _ := espVsAH(t, ike.Initiator, addrA, addrB, lanA, lanB)
		bTunnel, bTransport := espVsAH(t, ike.Responder, addrB, netip.Addr{}, lanB, lanA)
		bTunnel.PSK = "another-secret"
		a := w.start("A", w.net.AddHost("A", addrA), nil, aTunnel)
		b := w.start("B", w.net.AddHost("B", addrB), nil, bTransport, bTunnel)
		if err := a.stack.Initiate(ctx(t), "esp-tunnel"); err == nil {
			t.Fatal("B gave IPsec SAs of a connection with another key to a peer authenticated with this one")
		}
		if got := b.installed(); len(got) != 0 {
			t.Errorf("B installed %+v", got)
		}
	})
}

func filterConn(evs []events.Event, conn string) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Conn == conn {
			out = append(out, e)
		}
	}
	return out
}

// TestReplyOvertakingQM3 loses A's first QM3. A already sends ESP (its SAs
// are up after QM2), and B, whose inbound SA is up since QM2, delivers it; the
// answer then finds B's policy without an outbound SA. It must wait in the
// acquire queue, not be dropped for matching no policy, and it must neither
// make B start a negotiation of its own (as it would when B's connection
// traps too) nor be published as B's acquire (step 1): B is answering. When B
// retransmits QM2, A answers with QM3 again, B installs its outbound SA, and
// the answer goes out.
func TestReplyOvertakingQM3(t *testing.T) {
	for _, bRole := range []ike.Role{ike.Responder, ike.Initiator} {
		t.Run("B-"+bRole.String(), func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.IKEMessage, events.Acquire)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			if bRole == ike.Initiator {
				cb.Role, cb.Child.Start = ike.Initiator, ike.StartTrap
			}
			a, b := w.pair(ca, cb, nil)
			d := &dropper{drops: map[string]bool{"QM3": true}}
			w.net.SetFilter(d.filter)
			if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
				t.Fatal(err)
			}
			sendThrough(t, a, b, hostA, hostB, "ahead of QM3")
			bdp := b.stack.DataPlane()
			b.host.TUN().Send(sim.UDPPacket(hostB, hostA, []byte("the answer")))
			eventually(t, "B to hold the answer", func() bool { return bdp.Stats().AcquireHeld == 1 })
			if s := bdp.Stats(); s.NoPolicy != 0 {
				t.Fatalf("B dropped %d packets for matching no policy", s.NoPolicy)
			}
			if len(b.installed()) != 0 {
				t.Fatal("B installed its pair without QM3")
			}
			w.clock.Advance(2 * time.Second) // B resends QM2; A answers with its QM3 again
			timeout := time.After(5 * time.Second)
			for got := false; !got; {
				select {
				case p := <-a.host.TUN().Delivered():
					got = string(p[len(p)-len("the answer"):]) == "the answer"
				case <-timeout:
					t.Fatalf("the held answer never reached A (B holds %d)", bdp.Stats().AcquireHeld)
				}
			}
			checkPairMirrors(t, a, b)
			// B's data plane handled the answer before this packet: an
			// acquire for it would have been published by now.
			sendThrough(t, b, a, hostB, hostA, "after QM3")
			if acq := rec.find(events.Acquire, "B", ""); len(acq) != 0 {
				t.Errorf("B published an acquire for the answer it held: %s", acq[0].Message)
			}
			for _, e := range rec.find(events.IKEMessage, "B", "") {
				if e.IKE.Dir == events.Sent && e.IKE.MsgNum%2 == 1 { // MM1, MM3, MM5, QM1, QM3
					t.Errorf("B started a negotiation of its own: %s", e.Message)
				}
			}
		})
	}
}

// TestResponderServesPeersBehindTwoNATs: two road warriors, each behind a NAT
// of its own, negotiate with one responder connection that accepts any peer.
// Each peer's IPsec SAs get a policy of their own at B, so that B's traffic
// to each goes through that peer's SAs; ending one leaves the other working.
func TestResponderServesPeersBehindTwoNATs(t *testing.T) {
	lanC := netip.MustParsePrefix("10.3.0.0/24")
	for _, mode := range []esp.Mode{esp.Tunnel, esp.Transport} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t)
			type warrior struct {
				gw       *gw
				nat      netip.Addr
				src, dst netip.AddrPort // inner addresses of a datagram to B
			}
			var rws []warrior
			ca, cb := natConns(t, ike.MainMode, mode)
			if mode == esp.Tunnel {
				cb.Child.RemoteTS = netip.MustParsePrefix("10.0.0.0/8")
			}
			b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
			for i, rw := range []struct {
				private, public netip.Addr
				lan             netip.Prefix
			}{
				{privateA, natPub, lanA},
				{netip.MustParseAddr("192.168.2.10"), netip.MustParseAddr("198.51.100.9"), lanC},
			} {
				c := ca
				c.Local = rw.private
				name := string(rune('1' + i))
				src, dst := netip.AddrPortFrom(rw.lan.Addr().Next(), 1000+uint16(i)), hostB
				if mode == esp.Tunnel {
					c.Child.LocalTS = rw.lan
				} else {
					src, dst = netip.AddrPortFrom(rw.private, 1000+uint16(i)), netip.AddrPortFrom(publicB, 2000)
				}
				g := w.start("RW"+name, w.net.AddNAT(rw.public).AddHost("RW"+name, rw.private), nil, c)
				if err := g.stack.Initiate(ctx(t), "office"); err != nil {
					t.Fatalf("road warrior %s: %v", name, err)
				}
				rws = append(rws, warrior{g, rw.public, src, dst})
			}
			eventually(t, "B to hold a pair per road warrior", func() bool { return len(b.installed()) == 2 })
			if pols := b.stack.DataPlane().Policies(); len(pols) != 2 {
				t.Fatalf("B holds %d policies, want one per road warrior: %+v", len(pols), pols)
			}
			// In transport mode through a NAT, B sees each peer as its NAT's
			// address.
			back := func(rw warrior) netip.AddrPort {
				if mode == esp.Transport {
					return netip.AddrPortFrom(rw.nat, rw.src.Port())
				}
				return rw.src
			}
			for round := range 2 {
				for i, rw := range rws {
					sendThrough(t, rw.gw, b, rw.src, rw.dst, "to B from road warrior "+string(rune('1'+i)))
					sendThrough(t, b, rw.gw, rw.dst, back(rw), "from B to road warrior "+string(rune('1'+i))+" round "+string(rune('0'+round)))
				}
			}

			if err := rws[0].gw.stack.Terminate(ctx(t), "office"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "B to remove the first road warrior's pair and policy", func() bool {
				return len(b.installed()) == 1 && len(b.stack.DataPlane().Policies()) == 1
			})
			sendThrough(t, rws[1].gw, b, rws[1].src, rws[1].dst, "still there")
			sendThrough(t, b, rws[1].gw, rws[1].dst, back(rws[1]), "still reachable")
		})
	}
}

// TestFailedQuickModeEndsTheNegotiation: every QM3 from A is lost, so B's
// Quick Mode as responder fails once its QM2 retransmissions run out. The
// answer B held meanwhile stayed silent; after the failure, B's policy (a trap
// of its own) is no longer being negotiated, and B's next packet for A is an
// acquire of B's, which starts B's own negotiation.
func TestFailedQuickModeEndsTheNegotiation(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Acquire, events.Phase2Failed)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	cb.Role, cb.Child.Start = ike.Initiator, ike.StartTrap
	a, b := w.pair(ca, cb, nil)
	w.net.SetFilter(func(d *sim.Datagram) bool { return label(d) != "QM3" })
	if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
		t.Fatal(err)
	}
	sendThrough(t, a, b, hostA, hostB, "ahead of QM3")
	bdp := b.stack.DataPlane()
	b.host.TUN().Send(sim.UDPPacket(hostB, hostA, []byte("the answer")))
	eventually(t, "B to hold the answer", func() bool { return bdp.Stats().AcquireHeld == 1 })
	w.advanceUntil(t, "B's Quick Mode to fail", time.Second, 2*time.Minute, func() bool {
		return len(rec.find(events.Phase2Failed, "B", "")) > 0
	})
	if acq := rec.find(events.Acquire, "B", ""); len(acq) != 0 {
		t.Fatalf("B published an acquire while answering: %s", acq[0].Message)
	}
	b.host.TUN().Send(sim.UDPPacket(hostB, hostA, []byte("after the failure")))
	rec.waitFor(t, events.Acquire, "B", "")
}
