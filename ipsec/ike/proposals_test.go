package ike

import (
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

func parse(t *testing.T, p proposal.Protocol, ss ...string) []proposal.Proposal {
	t.Helper()
	ps, err := proposal.ParseList(p, ss)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestPhase1RoundTrip: every IKE suite we offer reads back as itself from
// the wire, and the responder picks by its own preference among what was
// offered.
func TestPhase1RoundTrip(t *testing.T) {
	offer := parse(t, proposal.IKE, "3des-sha1-modp1024", "aes128-sha256-modp2048", "aes256-sha384-ecp384", "aes128-sha512-curve25519", "aes192-md5-modp1536")
	c := &Connection{Proposals: offer, Lifetime: DefaultIKELifetime}
	wire, err := (&isakmp.Message{Payloads: []isakmp.Payload{phase1Offer(c)}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := isakmp.Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	sa := isakmp.First[*isakmp.SA](m)
	if n := len(sa.Proposals[0].Transforms); n != len(offer) {
		t.Fatalf("%d transforms on the wire, want %d", n, len(offer))
	}
	ours := parse(t, proposal.IKE, "aes256-sha384-ecp384", "aes128-sha256-modp2048")
	choice, offered, ok := selectPhase1(sa, ours, isakmp.AuthMethodPSK)
	if !ok || choice.suite != ours[0] || offered.total != len(offer) {
		t.Fatalf("chose %s (ok %v) from %v; want our first preference", choice.suite, ok, offered)
	}
	for i, s := range offered.shown {
		if s != offer[i].String() {
			t.Errorf("offered[%d] reads %q, want %q", i, s, offer[i])
		}
	}
	if choice.attrs.LifeSeconds != uint64(DefaultIKELifetime.Seconds()) || choice.attrs.AuthMethod != isakmp.AuthMethodPSK {
		t.Errorf("attributes: %+v", choice.attrs)
	}
	reply := &isakmp.SA{DOI: sa.DOI, Situation: sa.Situation, Proposals: []isakmp.Proposal{choice.proposal}}
	if got, err := acceptPhase1Reply(reply, offer, isakmp.AuthMethodPSK); err != nil || got.suite != ours[0] {
		t.Errorf("the initiator rejects the choice: %v", err)
	}
	if _, err := acceptPhase1Reply(reply, parse(t, proposal.IKE, "aes128-sha256-modp2048"), isakmp.AuthMethodPSK); err == nil {
		t.Errorf("the initiator accepts a suite it did not offer")
	}
	if _, _, ok := selectPhase1(sa, parse(t, proposal.IKE, "aes256-sha512-modp4096"), isakmp.AuthMethodPSK); ok {
		t.Errorf("a responder without a common suite chose one")
	}
}

// TestChildRoundTrip: ESP and AH suites, with PFS, lifetimes and the
// encapsulation mode, survive the wire; the responder requires its mode.
func TestChildRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		proto proposal.Protocol
		suite string
		id    isakmp.TransformID
	}{
		{proposal.ESP, "aes128gcm16-modp2048", isakmp.ESPAESGCM16},
		{proposal.ESP, "aes256-sha512", isakmp.ESPAESCBC},
		{proposal.ESP, "3des-md5-ecp256", isakmp.ESP3DES},
		{proposal.ESP, "null-sha256", isakmp.ESPNull},
		{proposal.ESP, "aes192-sha1-esn", isakmp.ESPAESCBC},
		{proposal.AH, "sha256-curve25519", isakmp.AHSHA2_256},
		{proposal.AH, "sha1", isakmp.AHSHA1},
	} {
		ps := parse(t, tc.proto, tc.suite)
		ch := &Child{Proposals: ps, Lifetime: DefaultChildLifetime, LifeBytes: 5_000_000}
		sa := childOffer(ch, 0x12345678, isakmp.EncapUDPTunnel)
		wire, err := (&isakmp.Message{Payloads: []isakmp.Payload{sa}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, _ := isakmp.Decode(wire)
		got := isakmp.First[*isakmp.SA](m)
		if got.Proposals[0].Transforms[0].ID != tc.id {
			t.Errorf("%s: transform %s", tc.suite, isakmp.TransformName(got.Proposals[0].Protocol, got.Proposals[0].Transforms[0].ID))
		}
		choice, _, ok := selectChild(got, ps, func(m isakmp.EncapsulationMode) bool { return m == isakmp.EncapUDPTunnel })
		if !ok || choice.suite != ps[0] || choice.attrs.LifeKilobytes != 5000 || choice.attrs.LifeSeconds != 3600 {
			t.Errorf("%s: chose %s ok=%v attrs %+v", tc.suite, choice.suite, ok, choice.attrs)
		}
		if _, _, ok := selectChild(got, ps, func(m isakmp.EncapsulationMode) bool { return m == isakmp.EncapTransport }); ok {
			t.Errorf("%s: chosen in the wrong mode", tc.suite)
		}
		if _, _, err := espAlgorithms(ps[0]); err != nil {
			t.Errorf("%s: %v", tc.suite, err)
		}
	}
}

func TestEncapsulationMode(t *testing.T) {
	for _, tc := range []struct {
		mode       esp.Mode
		udp, draft bool
		want       isakmp.EncapsulationMode
	}{
		{esp.Tunnel, false, false, isakmp.EncapTunnel},
		{esp.Tunnel, true, false, isakmp.EncapUDPTunnel},
		{esp.Tunnel, true, true, isakmp.EncapUDPTunnelDraft},
		{esp.Transport, false, false, isakmp.EncapTransport},
		{esp.Transport, true, false, isakmp.EncapUDPTransport},
		{esp.Transport, true, true, isakmp.EncapUDPTransportDraft},
	} {
		if got := encapsulationMode(tc.mode, tc.udp, tc.draft); got != tc.want {
			t.Errorf("%s udp=%v draft=%v: %s, want %s", tc.mode, tc.udp, tc.draft, got, tc.want)
		}
	}
}

// TestSelectors: client IDs and traffic selectors convert both ways; ranges
// that are prefixes are accepted; within is containment.
func TestSelectors(t *testing.T) {
	for _, s := range []string{"10.1.0.0/24", "10.1.0.7/32", "0.0.0.0/0", "192.168.128.0/17"} {
		ts := esp.TrafficSelector{Prefix: netip.MustParsePrefix(s), Protocol: 17, Port: 53}
		id := selectorID(ts)
		back, err := idSelector(id)
		if err != nil || back != ts {
			t.Errorf("%s: %v → %v (%v)", s, id, back, err)
		}
		if ts.Prefix.IsSingleIP() != (id.IDType == isakmp.IDIPv4Addr) {
			t.Errorf("%s sent as %s", s, id.IDType)
		}
	}
	r := isakmp.NewIDRange(netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.0.255"))
	if ts, err := idSelector(r); err != nil || ts.Prefix != netip.MustParsePrefix("10.0.0.0/24") {
		t.Errorf("range as prefix: %v %v", ts, err)
	}
	if _, err := idSelector(isakmp.NewIDRange(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9"))); err == nil {
		t.Errorf("a range that is no prefix was accepted")
	}
	if _, err := idSelector(isakmp.NewIDFQDN("vpn.example.org")); err == nil {
		t.Errorf("an FQDN was accepted as a selector")
	}
	in := func(a, b string) bool {
		return within(esp.TrafficSelector{Prefix: netip.MustParsePrefix(a)}, esp.TrafficSelector{Prefix: netip.MustParsePrefix(b)})
	}
	if !in("10.1.0.0/25", "10.1.0.0/24") || !in("10.1.0.0/24", "10.1.0.0/24") || in("10.1.0.0/23", "10.1.0.0/24") || in("10.2.0.0/24", "10.1.0.0/16") {
		t.Errorf("within is wrong")
	}
}

func TestParseIdentity(t *testing.T) {
	def := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		in   string
		typ  isakmp.IDType
		data string
	}{
		{"", isakmp.IDIPv4Addr, "\xc0\x00\x02\x01"},
		{"198.51.100.7", isakmp.IDIPv4Addr, "\xc6\x33\x64\x07"},
		{"fqdn:vpn.example.org", isakmp.IDFQDN, "vpn.example.org"},
		{"vpn.example.org", isakmp.IDFQDN, "vpn.example.org"},
		{"email:alice@example.org", isakmp.IDUserFQDN, "alice@example.org"},
		{"alice@example.org", isakmp.IDUserFQDN, "alice@example.org"},
		{"keyid:opaque", isakmp.IDKeyID, "opaque"},
		{"keyid:#6b6579", isakmp.IDKeyID, "key"},
	} {
		id, err := ParseIdentity(tc.in, def)
		if err != nil || id.Type != tc.typ || string(id.Data) != tc.data {
			t.Errorf("%q: %v %q %v", tc.in, id.Type, id.Data, err)
		}
	}
	for _, bad := range []string{"fqdn:", "keyid:#zz", "mac:00:11", "2001:db8::1"} {
		if _, err := ParseIdentity(bad, def); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// An offer is the peer's, of any length: the choice finds our suite among
// thousands of transforms, even the last, and the summary names only the
// first few and counts them all.
func TestLargeOfferIsSummarised(t *testing.T) {
	des := isakmp.Phase1Attributes{Encryption: isakmp.EncDES, Hash: isakmp.HashMD5, AuthMethod: isakmp.AuthMethodPSK, Group: isakmp.GroupMODP768}
	ok := isakmp.Phase1Attributes{Encryption: isakmp.EncAESCBC, KeyLength: 128, Hash: isakmp.HashSHA2_256, AuthMethod: isakmp.AuthMethodPSK, Group: isakmp.GroupMODP2048}
	sa := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly}
	for p := range 10 {
		prop := isakmp.Proposal{Number: uint8(p + 1), Protocol: isakmp.ProtocolISAKMP}
		for i := range 240 {
			a := des
			if p == 9 && i == 239 {
				a = ok
			}
			prop.Transforms = append(prop.Transforms, isakmp.Transform{Number: uint8(i + 1), ID: isakmp.TransformKeyIKE, Attributes: a.Attributes()})
		}
		sa.Proposals = append(sa.Proposals, prop)
	}
	ours := parse(t, proposal.IKE, "aes128-sha256-modp2048")
	choice, offered, found := selectPhase1(sa, ours, isakmp.AuthMethodPSK)
	if !found || choice.suite != ours[0] || len(choice.proposal.Transforms) != 1 {
		t.Fatalf("chose %v (found %v) with %d transforms; want our suite, the last transform, alone", choice.suite, found, len(choice.proposal.Transforms))
	}
	if offered.total != 2400 || len(offered.shown) != maxOfferShown {
		t.Errorf("summary names %d of %d transforms; want %d of 2400", len(offered.shown), offered.total, maxOfferShown)
	}
	if _, offered, found := selectPhase1(sa, parse(t, proposal.IKE, "aes256-sha512-modp4096"), isakmp.AuthMethodPSK); found || offered.total != 2400 || len(offered.shown) != maxOfferShown {
		t.Errorf("no match: found %v, summary of %d naming %d", found, offered.total, len(offered.shown))
	}
}
