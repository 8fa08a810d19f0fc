package ike

import (
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// suiteDifferences names each attribute in which an offered suite differs
// from ours, an AEAD cipher against a cipher with an HMAC as one difference.
func TestSuiteDifferences(t *testing.T) {
	for _, tc := range []struct {
		proto         proposal.Protocol
		offered, ours string
		want          []string
	}{
		{proposal.IKE, "aes128-sha256-modp2048", "aes128-sha256-ecp256", []string{"the Diffie-Hellman group differs (modp2048 offered, ecp256 configured)"}},
		{proposal.IKE, "aes128-sha1-modp2048", "aes256-sha256-modp2048", []string{"the cipher differs (aes128 offered, aes256 configured)", "the hash differs (sha1 offered, sha256 configured)"}},
		{proposal.ESP, "aes128gcm16", "aes128-sha256", []string{"the cipher differs (aes128gcm16 offered, aes128-sha256 configured; AES-GCM carries its own integrity check)"}},
		{proposal.ESP, "aes128-sha1", "aes128-sha256", []string{"the integrity algorithm differs (sha1 offered, sha256 configured)"}},
		{proposal.ESP, "aes128gcm16", "aes128gcm16-modp2048", []string{"PFS on this side only: the offer has no DH group, this side requires PFS with modp2048"}},
		{proposal.ESP, "aes128gcm16-ecp256", "aes128gcm16", []string{"PFS on the peer's side only: it asks for PFS with ecp256, this side has no PFS configured"}},
		{proposal.ESP, "aes128gcm16-ecp256", "aes128gcm16-curve25519", []string{"the PFS group differs (ecp256 offered, curve25519 configured)"}},
		{proposal.ESP, "aes128-sha256-esn", "aes128-sha256", []string{"extended sequence numbers differ (on offered, off configured)"}},
		{proposal.ESP, "aes128-sha256", "aes128-sha256", nil},
	} {
		o, ours := parse(t, tc.proto, tc.offered)[0], parse(t, tc.proto, tc.ours)[0]
		got := suiteDifferences(o, ours)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s against %s:\n got %q\nwant %q", tc.offered, tc.ours, got, tc.want)
		}
		if d := suiteDistance(o, ours); (d == 0) != (len(tc.want) == 0) {
			t.Errorf("%s against %s: distance %d", tc.offered, tc.ours, d)
		}
	}
}

// A responder that finds nothing names the offered suite nearest to one of
// its own, whatever the order of the offer, and a transform with another
// authentication method counts that as a difference.
func TestNearestOffer(t *testing.T) {
	c := &Connection{Proposals: parse(t, proposal.IKE, "3des-md5-modp1024", "aes256-sha384-ecp384", "aes128-sha256-modp2048"), Lifetime: DefaultIKELifetime}
	ours := parse(t, proposal.IKE, "aes128-sha256-ecp256")
	_, offered, ok := selectPhase1(phase1Offer(c), ours, isakmp.AuthMethodPSK)
	if ok || offered.near == nil || offered.near.offered.String() != "aes128-sha256-modp2048" {
		t.Fatalf("nearest %+v (ok %v), want aes128-sha256-modp2048", offered.near, ok)
	}
	if m := offered.mismatch(); m != "The nearest pair: aes128-sha256-modp2048 offered, aes128-sha256-ecp256 configured" {
		t.Errorf("mismatch: %q", m)
	}
	// The same suite, signed instead of a pre-shared key.
	_, offered, _ = selectPhase1(phase1Offer(c), parse(t, proposal.IKE, "aes128-sha256-modp2048"), isakmp.AuthMethodRSASig)
	if d := offered.near.diffs(); len(d) != 1 || !strings.HasPrefix(d[0], "the authentication method differs") {
		t.Errorf("differences %q, want the authentication method alone", d)
	}
}

// A notify about our Quick Mode names the SPI we offered, or SPI 0 (charon,
// refusing before it chose a proposal): then it answers our one waiting
// Quick Mode, and none when several wait.
func TestRefusedQuickMode(t *testing.T) {
	waiting := func(spis ...uint32) *isakmpSA {
		sa := &isakmpSA{quick: map[uint32]*quickMode{}}
		for i, spi := range spis {
			sa.quick[uint32(i+1)] = &quickMode{initiator: true, state: qmI1Sent, spiIn: spi}
		}
		return sa
	}
	notify := func(spi []byte) *isakmp.Notify {
		return &isakmp.Notify{NotifyType: isakmp.NotifyNoProposalChosen, Protocol: isakmp.ProtocolESP, SPI: spi}
	}
	if qm := waiting(0x1234).refusedQuickMode(notify([]byte{0, 0, 0x12, 0x34})); qm == nil || qm.spiIn != 0x1234 {
		t.Errorf("the named SPI does not find its Quick Mode")
	}
	if qm := waiting(0x1234).refusedQuickMode(notify([]byte{0, 0, 0x99, 0x99})); qm != nil {
		t.Errorf("another SPI finds our Quick Mode")
	}
	if qm := waiting(0x1234).refusedQuickMode(notify([]byte{0, 0, 0, 0})); qm == nil {
		t.Errorf("SPI 0 does not find our one waiting Quick Mode")
	}
	if qm := waiting(0x1234).refusedQuickMode(notify(nil)); qm == nil {
		t.Errorf("no SPI does not find our one waiting Quick Mode")
	}
	if qm := waiting(0x1234, 0x5678).refusedQuickMode(notify([]byte{0, 0, 0, 0})); qm != nil {
		t.Errorf("SPI 0 picks one of two waiting Quick Modes")
	}
	if qm := waiting(0x1234, 0x5678).refusedQuickMode(notify([]byte{0, 0, 0x56, 0x78})); qm == nil || qm.spiIn != 0x5678 {
		t.Errorf("the named SPI does not find its Quick Mode among two")
	}
}

// BenchmarkSelectPhase1LargeOffer: a responder reading a 2,400-transform
// offer of which it accepts nothing (the flood benchmark's large offer),
// looking for the nearest suite to name on the way.
func BenchmarkSelectPhase1LargeOffer(b *testing.B) {
	var props []isakmp.Proposal
	for p := range 10 {
		prop := isakmp.Proposal{Number: uint8(p + 1), Protocol: isakmp.ProtocolISAKMP}
		for i := range 240 {
			prop.Transforms = append(prop.Transforms, isakmp.Transform{Number: uint8(i + 1), ID: isakmp.TransformKeyIKE,
				Attributes: isakmp.Phase1Attributes{Encryption: isakmp.EncDES, Hash: isakmp.HashMD5, AuthMethod: isakmp.AuthMethodPSK, Group: isakmp.GroupMODP768}.Attributes()})
		}
		props = append(props, prop)
	}
	offer := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: props}
	ours, err := proposal.ParseList(proposal.IKE, []string{"aes128-sha256-modp2048", "aes256-sha384-ecp384"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := selectPhase1(offer, ours, isakmp.AuthMethodPSK); ok {
			b.Fatal("accepted")
		}
	}
}
