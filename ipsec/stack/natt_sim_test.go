package stack_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// The NAT lab: A (192.168.1.10) behind a NAT whose public address is
// 198.51.100.1, B (203.0.113.2) on the public side and ready for any peer.
var (
	privateA = netip.MustParseAddr("192.168.1.10")
	natPub   = netip.MustParseAddr("198.51.100.1")
	publicB  = netip.MustParseAddr("203.0.113.2")
)

func natConns(t *testing.T, mode ike.Mode, childMode esp.Mode) (a, b ike.Connection) {
	a = ike.Connection{
		Name: "office", Role: ike.Initiator, Local: privateA, Remote: publicB, PSK: psk, Mode: mode,
		Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child:     ike.Child{LocalTS: lanA, RemoteTS: lanB, Proposals: espProposals(t, "aes128gcm16"), Mode: childMode},
	}
	b = ike.Connection{
		Name: "roadwarriors", Role: ike.Responder, Local: publicB, PSK: psk, Mode: mode,
		Proposals: a.Proposals,
		Child:     ike.Child{LocalTS: lanB, RemoteTS: lanA, Proposals: a.Child.Proposals, Mode: childMode},
	}
	if childMode == esp.Transport {
		a.Child.LocalTS, a.Child.RemoteTS, b.Child.LocalTS, b.Child.RemoteTS = netip.Prefix{}, netip.Prefix{}, netip.Prefix{}, netip.Prefix{}
	}
	return a, b
}

// TestNATTraversal: a NAT rewrites A's address and port. NAT-D shows it to
// both sides, IKE floats to 4500, Quick Mode negotiates UDP-encapsulated
// tunnel mode, ESP crosses the NAT in UDP both ways, and A, behind the NAT,
// sends keepalives.
func TestNATTraversal(t *testing.T) {
	for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.NATDetected, events.NATFloat, events.IKEMessage)
			nat := w.net.AddNAT(natPub)
			ca, cb := natConns(t, mode, esp.Tunnel)
			a := w.start("A", nat.AddHost("A", privateA), nil, ca)
			b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
			if err := a.stack.Initiate(ctx(t), "office"); err != nil {
				t.Fatal(err)
			}
			x, y := checkPairMirrors(t, a, b)
			if !x.UDPEncap || !y.UDPEncap {
				t.Fatalf("ESP is not UDP-encapsulated: %+v / %+v", x, y)
			}
			pa, pb := a.stack.SAs().ISAKMP[0], b.stack.SAs().ISAKMP[0]
			if !pa.NATLocal || pa.NATRemote || !pb.NATRemote || pb.NATLocal || !pa.NATT || !pb.NATT {
				t.Errorf("NAT detection: A local=%v remote=%v 4500=%v, B local=%v remote=%v 4500=%v",
					pa.NATLocal, pa.NATRemote, pa.NATT, pb.NATLocal, pb.NATRemote, pb.NATT)
			}
			// B sees A as the NAT's mapping of A's port 4500.
			mapped := nat.Mappings()[netip.AddrPortFrom(privateA, 4500)]
			if pb.Remote != mapped.String() || !strings.HasPrefix(pb.Remote, natPub.String()+":") {
				t.Errorf("B's ISAKMP SA talks to %s, the NAT maps A's 4500 to %s", pb.Remote, mapped)
			}
			sendThrough(t, a, b, hostA, hostB, "out through the NAT")
			sendThrough(t, b, a, hostB, hostA, "back in through the NAT")

			// The third message of Main Mode, or the second of Aggressive Mode,
			// is the last on port 500.
			for _, e := range rec.find(events.IKEMessage, "A", "sent") {
				last500 := 3
				if mode == ike.AggressiveMode {
					last500 = 1
				}
				onNATT := strings.HasSuffix(e.IKE.Local, ":4500")
				if e.IKE.Exchange == mode.String() && onNATT != (e.IKE.MsgNum > last500) {
					t.Errorf("A sent %s %d from %s", e.IKE.Exchange, e.IKE.MsgNum, e.IKE.Local)
				}
			}
			if len(rec.find(events.NATDetected, "A", "behind a NAT")) == 0 || len(rec.find(events.NATFloat, "A", "")) == 0 || len(rec.find(events.NATFloat, "B", "")) == 0 {
				t.Errorf("NAT events: %v", rec.all())
			}
			keepalives := b.stack.DataPlane().Stats().Keepalives
			w.run(45 * time.Second)
			if got := b.stack.DataPlane().Stats().Keepalives - keepalives; got < 2 {
				t.Errorf("B received %d NAT-T keepalives in 45 s, want 2", got)
			}
			if a.stack.Stats().IKE.Keepalives < 2 || b.stack.Stats().IKE.Keepalives != 0 {
				t.Errorf("keepalives sent: A %d, B %d; only the side behind the NAT sends them", a.stack.Stats().IKE.Keepalives, b.stack.Stats().IKE.Keepalives)
			}
		})
	}
}

// TestNATTransportMode: transport mode through the NAT sends NAT-OA with the
// original addresses, each side shows what the other reported, and the
// selectors become the addresses seen.
func TestNATTransportMode(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.IKEMessage, events.Phase2Up)
	nat := w.net.AddNAT(natPub)
	ca, cb := natConns(t, ike.MainMode, esp.Transport)
	a := w.start("A", nat.AddHost("A", privateA), nil, ca)
	b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
	if err := a.stack.Initiate(ctx(t), "office"); err != nil {
		t.Fatal(err)
	}
	x, y := checkPairMirrors(t, a, b)
	if x.Mode != "transport" || !x.UDPEncap || y.RemoteTS != natPub.String()+"/32" || x.LocalTS != privateA.String()+"/32" {
		t.Errorf("transport pair: A %s === %s, B %s === %s", x.LocalTS, x.RemoteTS, y.LocalTS, y.RemoteTS)
	}
	for _, n := range []int{1, 2} {
		var found bool
		for _, e := range rec.find(events.IKEMessage, "A", "Quick Mode") {
			if e.IKE.MsgNum == n && strings.Count(strings.Join(e.IKE.Payloads, ","), "NAT-OA") == 2 {
				found = true
			}
		}
		if !found {
			t.Errorf("Quick Mode %d/3 without two NAT-OA payloads", n)
		}
	}
	// RFC 3947 §5.2: the initiator reports itself and the responder as it
	// sees them; the responder reports the initiator as it sees it (the NAT)
	// and itself.
	for node, want := range map[string]string{
		"B": fmt.Sprintf("NAT-OA payloads say %s (initiator) and %s (responder)", privateA, publicB),
		"A": fmt.Sprintf("NAT-OA payloads say %s (initiator) and %s (responder)", natPub, publicB),
	} {
		if len(rec.find(events.Phase2Up, node, want)) == 0 {
			t.Errorf("no phase2-up on %s saying %q", node, want)
		}
	}
	sendThrough(t, a, b, netip.AddrPortFrom(privateA, 1000), netip.AddrPortFrom(publicB, 2000), "transport mode across a NAT")
}

// TestForcedEncapsulation: without a NAT, ForceEncap fakes one, as
// strongSwan's encap=yes and kernel-libipsec do, and ESP goes in UDP.
func TestForcedEncapsulation(t *testing.T) {
	w := newWorld(t)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128-sha1")
	ca.ForceEncap = true
	a, b := w.pair(ca, cb, nil)
	x, _ := up(t, a, b)
	pa, pb := a.stack.SAs().ISAKMP[0], b.stack.SAs().ISAKMP[0]
	if !x.UDPEncap || !pa.NATFake || pa.NATLocal || !pb.NATRemote || !pa.NATT || !pb.NATT {
		t.Errorf("forced encapsulation: pair encap=%v, A %+v, B %+v", x.UDPEncap, pa, pb)
	}
	sendThrough(t, a, b, hostA, hostB, "in UDP without a NAT")
}

// TestNATMappingChange: when the NAT forgets its mapping, the next
// authenticated IKE message from A arrives from a new port and B's ISAKMP SA
// follows it, with the UDP encapsulation of the IPsec SAs: B's ESP reaches A
// through the new mapping at once, not only after the next rekey, and the
// SAs keep their sequence numbers.
func TestNATMappingChange(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.NATMapChanged, events.DPDAck)
	nat := w.net.AddNAT(natPub)
	ca, cb := natConns(t, ike.MainMode, esp.Tunnel)
	ca.DPD = ike.DPD{Delay: 10 * time.Second}
	a := w.start("A", nat.AddHost("A", privateA), nil, ca)
	b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
	if err := a.stack.Initiate(ctx(t), "office"); err != nil {
		t.Fatal(err)
	}
	_, y := checkPairMirrors(t, a, b)
	spiIn, spiOut := y.SPIIn, y.SPIOut
	sendThrough(t, b, a, hostB, hostA, "through the first mapping")
	before := b.stack.SAs().ISAKMP[0].Remote
	nat.Reset()
	w.advanceUntil(t, "an R-U-THERE-ACK through the new mapping", time.Second, 30*time.Second, func() bool {
		return len(rec.find(events.DPDAck, "A", "")) > 0
	})
	after := b.stack.SAs().ISAKMP[0].Remote
	changes := rec.find(events.NATMapChanged, "B", before+" → "+after+", shown by an authenticated IKE message")
	if after == before || len(changes) != 1 || changes[0].Fields["ipsec_sas_moved"] != 1 || changes[0].Fields["isakmp_sas_moved"] != 1 {
		t.Errorf("B's ISAKMP SA moved from %s to %s; mapping events %v", before, after, rec.all())
	}
	pair := b.installed()[0]
	if pair.Remote != after || pair.SPIIn != spiIn || pair.SPIOut != spiOut {
		t.Errorf("B's IPsec SAs %s/%s talk to %s, the ISAKMP SA to %s", pair.SPIIn, pair.SPIOut, pair.Remote, after)
	}
	for _, s := range b.stack.DataPlane().SAs() {
		if s.Remote != after {
			t.Errorf("B's data plane sends %s SA %s to %s, the NAT now maps A to %s", s.Dir, s.SPI, s.Remote, after)
		}
	}
	sendThrough(t, b, a, hostB, hostA, "through the new mapping")
	sendThrough(t, a, b, hostA, hostB, "and back")
}

// TestNATMappingFollowsESP: the NAT forgets its mappings while the tunnel
// carries traffic. A's next ESP packet arrives from a new port; it passed
// its ICV and is the newest, so B's data plane sends its very next packet
// there, and IKE moves the ISAKMP SA with it, reporting the change once.
// Without that, everything B sends would go to the dead mapping.
func TestNATMappingFollowsESP(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.NATMapChanged)
	nat := w.net.AddNAT(natPub)
	ca, cb := natConns(t, ike.MainMode, esp.Tunnel)
	a := w.start("A", nat.AddHost("A", privateA), nil, ca)
	b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
	if err := a.stack.Initiate(ctx(t), "office"); err != nil {
		t.Fatal(err)
	}
	checkPairMirrors(t, a, b)
	sendThrough(t, a, b, hostA, hostB, "before the reboot")
	sendThrough(t, b, a, hostB, hostA, "reply before the reboot")
	before := b.stack.SAs().ISAKMP[0].Remote
	nat.Reset()
	sendThrough(t, a, b, hostA, hostB, "after the reboot: a new mapping")
	sendThrough(t, b, a, hostB, hostA, "the reply finds it at once")
	after := netip.AddrPortFrom(natPub, nat.Mappings()[netip.AddrPortFrom(privateA, 4500)].Port()).String()
	if after == before {
		t.Fatalf("the NAT gave the same port %s again", after)
	}
	ev := rec.waitFor(t, events.NATMapChanged, "B", before+" → "+after+", shown by ESP packet #2 of SA ")
	if ev.Fields["isakmp_sas_moved"] != 1 || ev.Fields["ipsec_sas_moved"] != 1 || ev.Explain == "" {
		t.Errorf("mapping event %+v", ev)
	}
	eventually(t, "B's ISAKMP SA at the new mapping", func() bool { return b.stack.SAs().ISAKMP[0].Remote == after })
	if got := b.stack.DataPlane().Stats().MappingChanges; got != 1 {
		t.Errorf("B's data plane followed %d mapping changes, want 1", got)
	}
	if n := len(rec.find(events.NATMapChanged, "A", "")); n != 0 {
		t.Errorf("A, behind the NAT, followed %d mapping changes of its peer", n)
	}
}

// TestNATKeepaliveInterval: the connection's keepalive interval, or none.
func TestNATKeepaliveInterval(t *testing.T) {
	for _, c := range []struct {
		every time.Duration
		want  uint64 // in 61 s
	}{{5 * time.Second, 12}, {ike.KeepaliveOff, 0}, {0, 3}} {
		t.Run(fmt.Sprint(c.every), func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.NATKeepalive)
			nat := w.net.AddNAT(natPub)
			ca, cb := natConns(t, ike.MainMode, esp.Tunnel)
			ca.Keepalive = c.every
			a := w.start("A", nat.AddHost("A", privateA), nil, ca)
			b := w.start("B", w.net.AddHost("B", publicB), nil, cb)
			if err := a.stack.Initiate(ctx(t), "office"); err != nil {
				t.Fatal(err)
			}
			checkPairMirrors(t, a, b)
			before := b.stack.DataPlane().Stats().Keepalives
			w.run(61 * time.Second)
			sent := a.stack.Stats().IKE.Keepalives
			if got := b.stack.DataPlane().Stats().Keepalives - before; sent != c.want || got != c.want {
				t.Errorf("A sent %d keepalives in 61 s, B received %d, want %d", sent, got, c.want)
			}
			if c.want > 0 {
				every := c.every
				if every == 0 {
					every = ike.DefaultKeepalive
				}
				if e := rec.find(events.NATKeepalive, "A", "")[0]; e.Fields["interval_s"] != every.Seconds() {
					t.Errorf("keepalive event says every %v s, want %v", e.Fields["interval_s"], every)
				}
			}
		})
	}
}
