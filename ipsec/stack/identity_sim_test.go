package stack_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// TestIdentities: FQDN, user FQDN and key ID identities in both modes; each
// side sees the other's identity in its ISAKMP SA.
func TestIdentities(t *testing.T) {
	for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
		for _, ids := range [][2]string{
			{"fqdn:a.example.org", "fqdn:b.example.org"},
			{"email:alice@example.org", "email:bob@example.org"},
			{"keyid:gateway-a", "keyid:#0b0b"},
		} {
			t.Run(mode.String()+"/"+strings.SplitN(ids[0], ":", 2)[0], func(t *testing.T) {
				w := newWorld(t)
				ca, cb := connPair(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
				ca.LocalID, ca.RemoteID = ids[0], ids[1]
				cb.LocalID, cb.RemoteID = ids[1], ids[0]
				a, b := w.pair(ca, cb, nil)
				up(t, a, b)
				pa, pb := a.stack.SAs().ISAKMP[0], b.stack.SAs().ISAKMP[0]
				wantA, _ := ike.ParseIdentity(ids[0], addrA)
				wantB, _ := ike.ParseIdentity(ids[1], addrB)
				if pa.LocalID != wantA.String() || pa.RemoteID != wantB.String() || pb.RemoteID != wantA.String() {
					t.Errorf("identities: A %s ↔ %s, B sees %s", pa.LocalID, pa.RemoteID, pb.RemoteID)
				}
			})
		}
	}
}

// TestRemoteIDMismatch: the right key but the wrong identity fails
// authentication on the side that checks it.
func TestRemoteIDMismatch(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.AuthFailed)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.LocalID = "fqdn:mallory.example.org"
	cb.RemoteID = "fqdn:a.example.org"
	a, _ := w.pair(ca, cb, nil)
	if err := a.stack.Initiate(ctx(t), "lab"); err == nil {
		t.Fatal("negotiated with an unexpected identity")
	}
	e := rec.waitFor(t, events.AuthFailed, "B", "")
	if !strings.Contains(e.Message, "mallory.example.org") || !strings.Contains(e.Message, "a.example.org") {
		t.Errorf("B's event should name both identities: %s", e.Message)
	}
}

// TestAggressiveModeChoosesConnectionByIdentity: in Aggressive Mode the
// identity arrives in the clear and selects the responder's connection, and
// with it the pre-shared key, among connections for any address.
func TestAggressiveModeChoosesConnectionByIdentity(t *testing.T) {
	w := newWorld(t)
	ca, cb := connPair(t, ike.AggressiveMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.LocalID = "email:bob@example.org"
	alice, bob := cb, cb
	alice.Name, alice.RemoteID, alice.PSK, alice.Remote = "alice", "email:alice@example.org", "alice's key", netip.Addr{}
	bob.Name, bob.RemoteID, bob.Remote = "bob", "email:bob@example.org", netip.Addr{}
	a := w.start("A", w.net.AddHost("A", addrA), nil, ca)
	b := w.start("B", w.net.AddHost("B", addrB), nil, alice, bob)
	if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's SAs", func() bool { return len(b.installed()) == 1 })
	if c := b.stack.SAs().ISAKMP[0].Conn; c != "bob" {
		t.Errorf("B used connection %q, want bob", c)
	}
}

// TestAHAndTransportModes: AH in tunnel and transport mode, and ESP in
// transport mode, host to host.
func TestAHAndTransportModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto proposal.Protocol
		suite string
		mode  esp.Mode
	}{
		{"ah-tunnel", proposal.AH, "sha256-modp2048", esp.Tunnel},
		{"ah-transport", proposal.AH, "sha1", esp.Transport},
		{"esp-transport", proposal.ESP, "aes256gcm16-ecp256", esp.Transport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			ps, err := proposal.ParseList(tc.proto, []string{tc.suite})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []*ike.Connection{&ca, &cb} {
				c.Child.Proposals, c.Child.Mode = ps, tc.mode
				if tc.mode == esp.Transport {
					c.Child.LocalTS, c.Child.RemoteTS = netip.Prefix{}, netip.Prefix{}
				}
			}
			a, b := w.pair(ca, cb, nil)
			x, _ := up(t, a, b)
			if x.Protocol != strings.ToLower(tc.proto.String()) || x.Mode != tc.mode.String() || x.Proposal != ps[0].String() {
				t.Errorf("pair: %s %s %s", x.Protocol, x.Mode, x.Proposal)
			}
			src, dst := hostA, hostB
			if tc.mode == esp.Transport {
				src, dst = netip.AddrPortFrom(addrA, 1000), netip.AddrPortFrom(addrB, 2000)
			}
			sendThrough(t, a, b, src, dst, "protected by "+tc.name)
			sendThrough(t, b, a, dst, src, "and back")
		})
	}
}
