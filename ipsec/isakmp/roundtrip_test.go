package isakmp

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

// stripReceived clears what decoding remembers so that a decoded payload can
// be compared field by field with the one it was encoded from.
func stripReceived(p Payload) Payload {
	p.setReceived(nil)
	return p
}

// samplePayloads is one payload of every type IKEv1 uses, filled the way the
// exchanges fill them.
func samplePayloads() []Payload {
	ckyI, ckyR := Cookie{1, 2, 3, 4, 5, 6, 7, 8}, Cookie{9, 10, 11, 12, 13, 14, 15, 16}
	life, _ := NewResponderLifetime(ProtocolESP, []byte{0xc0, 0, 0, 1}, IPsecAttributes{LifeSeconds: 3600, LifeKilobytes: 1 << 20}.Attributes())
	return []Payload{
		&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
			{Number: 1, Protocol: ProtocolISAKMP, Transforms: []Transform{
				{Number: 1, ID: TransformKeyIKE, Attributes: Phase1Attributes{Encryption: EncAESCBC, KeyLength: 256, Hash: HashSHA2_256, AuthMethod: AuthMethodPSK, Group: GroupMODP2048, LifeSeconds: 86400}.Attributes()},
				{Number: 2, ID: TransformKeyIKE, Attributes: Phase1Attributes{Encryption: Enc3DES, Hash: HashSHA1, AuthMethod: AuthMethodXAuthInitPSK, Group: GroupCurve25519, LifeSeconds: 100000}.Attributes()},
			}},
		}},
		&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{
			{Number: 1, Protocol: ProtocolAH, SPI: []byte{0xaa, 0xbb, 0xcc, 0xdd}, Transforms: []Transform{
				{Number: 1, ID: AHSHA2_256, Attributes: IPsecAttributes{Encapsulation: EncapTunnel, AuthAlgorithm: AuthAlgHMACSHA256, LifeSeconds: 3600}.Attributes()},
			}},
			{Number: 1, Protocol: ProtocolESP, SPI: []byte{0x11, 0x22, 0x33, 0x44}, Transforms: []Transform{
				{Number: 1, ID: ESPAESGCM16, Attributes: IPsecAttributes{Encapsulation: EncapUDPTunnel, KeyLength: 128, Group: GroupECP256, ESN: true}.Attributes()},
				{Number: 2, ID: ESPAESCBC, Attributes: IPsecAttributes{Encapsulation: EncapUDPTransportDraft, AuthAlgorithm: AuthAlgHMACSHA1, KeyLength: 256, LifeKilobytes: 4608000}.Attributes()},
			}},
			{Number: 2, Protocol: ProtocolIPComp, SPI: []byte{0x12, 0x34}, Transforms: []Transform{{Number: 1, ID: IPCompDeflate}}},
		}},
		&KE{Data: bytes.Repeat([]byte{0x5a}, 256)},
		NewIDAddr(netip.MustParseAddr("192.0.2.1")),
		NewIDAddr(netip.MustParseAddr("2001:db8::1")),
		NewIDFQDN("vpn.example.org"),
		NewIDUserFQDN("alice@example.org"),
		NewIDKeyID([]byte("lab-key")),
		func() Payload {
			p := NewIDPrefix(netip.MustParsePrefix("10.1.0.0/24"))
			p.Protocol, p.Port = 17, 500
			return p
		}(),
		NewIDPrefix(netip.MustParsePrefix("2001:db8:1::/48")),
		NewIDRange(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")),
		NewIDRange(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ff")),
		&ID{IDType: IDDERASN1DN, Data: []byte{0x30, 0x00}},
		&Cert{Encoding: CertX509Signature, Data: []byte{0x30, 0x82, 0x01, 0x00}},
		&CertRequest{Encoding: CertX509Signature, Authority: []byte{0x30, 0x10}},
		&CertRequest{Encoding: CertX509Signature},
		&Hash{Data: bytes.Repeat([]byte{1}, 20)},
		&Signature{Data: bytes.Repeat([]byte{2}, 256)},
		&Nonce{Data: bytes.Repeat([]byte{3}, 32)},
		&Notify{DOI: DOIIPsec, Protocol: ProtocolESP, NotifyType: NotifyInvalidSPI, SPI: []byte{1, 2, 3, 4}},
		&Notify{DOI: DOIISAKMP, Protocol: ProtocolISAKMP, NotifyType: NotifyNoProposalChosen},
		NewDPD(NotifyRUThere, ckyI, ckyR, 0x01020304),
		NewInitialContact(ckyI, ckyR),
		life,
		&Delete{DOI: DOIIPsec, Protocol: ProtocolISAKMP, SPISize: 16, SPIs: [][]byte{ISAKMPSPI(ckyI, ckyR)}},
		&Delete{DOI: DOIIPsec, Protocol: ProtocolESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}},
		NewVendorID(VendorNATTRFC3947),
		NewVendorID(VendorFragmentation),
		&ConfigAttributes{CfgType: CfgRequest, Identifier: 0x1234, Attributes: []Attribute{
			Variable(CfgInternalIP4Address, nil), Variable(CfgInternalIP4DNS, nil), Basic(XAuthType, 0),
		}},
		&ConfigAttributes{CfgType: CfgReply, Identifier: 0x1234, Attributes: []Attribute{
			Variable(CfgInternalIP4Address, []byte{10, 9, 0, 1}), Variable(XAuthUserName, []byte("bob")), Basic(XAuthStatus, 1),
		}},
		&NATD{Hash: bytes.Repeat([]byte{4}, 32)},
		&NATD{Draft: true, Hash: bytes.Repeat([]byte{5}, 20)},
		&NATOA{Addr: netip.MustParseAddr("192.168.1.10")},
		&NATOA{Draft: true, Addr: netip.MustParseAddr("fd00::10")},
		// A peer may send an IPv4-mapped address as ID_IPV6_ADDR; it stays
		// one (a fuzz finding: it used to re-encode as ID_IPV4_ADDR).
		&NATOA{Addr: netip.MustParseAddr("::ffff:192.0.2.7")},
		&Fragment{ID: 7, Number: 1, Data: []byte("first")},
		&Fragment{ID: 7, Number: 2, Last: true, Data: []byte("last")},
		&Unknown{Kind: PayloadSAK, Data: []byte("gdoi")},
		&Unknown{Kind: 200, Data: nil},
	}
}

// NewNATOA sends an IPv4-mapped address as what it is, ID_IPV4_ADDR.
func TestNewNATOAUnmaps(t *testing.T) {
	b, err := NewNATOA(false, netip.MustParseAddr("::ffff:192.0.2.7")).appendBody(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{byte(IDIPv4Addr), 0, 0, 0, 192, 0, 2, 7}; !bytes.Equal(b, want) {
		t.Fatalf("body %x, want %x", b, want)
	}
}

func TestEveryPayloadRoundTrips(t *testing.T) {
	for _, p := range samplePayloads() {
		t.Run(p.Type().Abbrev(), func(t *testing.T) {
			m := &Message{Header: Header{InitiatorCookie: Cookie{1}, ResponderCookie: Cookie{2}, Exchange: ExchangeInformational}, Payloads: []Payload{p}}
			wire, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decode(wire)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Payloads) != 1 {
				t.Fatalf("%d payloads back", len(d.Payloads))
			}
			got := d.Payloads[0]
			if got.Type() != p.Type() {
				t.Fatalf("type %v, want %v", got.Type(), p.Type())
			}
			if !bytes.Equal(got.Body(), p.Body()) {
				t.Errorf("received body %x differs from sent body %x", got.Body(), p.Body())
			}
			if !bytes.Equal(got.Body(), wire[HeaderLen+genericHeaderLen:]) {
				t.Errorf("Body is not the received bytes")
			}
			if !reflect.DeepEqual(normalize(stripReceived(got)), normalize(p)) {
				t.Errorf("decoded\n %#v\nwant\n %#v", got, p)
			}
		})
	}
}

// normalize maps nil and empty byte slices to the same thing for comparison.
func normalize(p Payload) Payload {
	b, _ := p.appendBody(nil)
	q := newPayload(p.Type())
	if q == nil {
		return p
	}
	if err := q.decodeBody(b, 0); err != nil {
		return p
	}
	return q
}

func TestMessageOfManyPayloads(t *testing.T) {
	payloads := samplePayloads()
	m := &Message{Header: Header{InitiatorCookie: Cookie{1}, Exchange: ExchangeAggressive}, Payloads: payloads}
	wire, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.NextPayload != payloads[0].Type() || int(m.Header.Length) != len(wire) {
		t.Errorf("header not filled: %+v", m.Header)
	}
	d, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.PayloadNames(), m.PayloadNames()) {
		t.Errorf("names %v, want %v", d.PayloadNames(), m.PayloadNames())
	}
	for i := range payloads {
		got, err := d.PayloadBytes(i)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.PayloadBytes(i)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("PayloadBytes(%d) received %x, built %x", i, got, want)
		}
	}
	if rest, _ := d.PayloadBytes(len(payloads)); len(rest) != 0 {
		t.Errorf("PayloadBytes past the end = %x", rest)
	}
	if _, err := d.PayloadBytes(len(payloads) + 1); err == nil {
		t.Errorf("PayloadBytes out of range accepted")
	}
}

func TestEmptyMessage(t *testing.T) {
	m := &Message{Header: Header{Exchange: ExchangeInformational}}
	wire, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) != HeaderLen || m.Header.NextPayload != PayloadNone {
		t.Fatalf("%x", wire)
	}
	d, err := Decode(wire)
	if err != nil || len(d.Payloads) != 0 {
		t.Fatalf("%v %v", d, err)
	}
}

func TestEncodeRejectsUnencodable(t *testing.T) {
	cases := map[string]Payload{
		"TV attribute of 3 bytes":      &SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 1, TV: true, Value: []byte{1, 2, 3}}}}}}}},
		"attribute type with AF bit":   &ConfigAttributes{Attributes: []Attribute{{Type: 0x8001, TV: true, Value: []byte{0, 1}}}},
		"TLV of 70000 bytes":           &ConfigAttributes{Attributes: []Attribute{Variable(1, make([]byte, 70000))}},
		"payload over 64 KiB":          &KE{Data: make([]byte, 70000)},
		"SPI of 300 bytes":             &Notify{SPI: make([]byte, 300)},
		"mixed delete SPI sizes":       &Delete{SPISize: 4, SPIs: [][]byte{{1, 2, 3}}},
		"NAT-OA without address":       &NATOA{},
		"proposal with 256 transforms": &SA{Proposals: []Proposal{{Transforms: make([]Transform, 256)}}},
	}
	for name, p := range cases {
		if _, err := (&Message{Payloads: []Payload{p}}).Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
		// A body over 64 KiB is a valid body; only its generic header
		// cannot hold the length.
		if _, tooLong := p.(*KE); !tooLong && p.Body() != nil {
			t.Errorf("%s: Body returned an encoding", name)
		}
	}
	if _, err := (&Message{Header: Header{Flags: FlagEncryption}}).Encode(); err == nil {
		t.Errorf("Encode accepted the E flag")
	}
}

func TestSAOffersGroupProposalNumbers(t *testing.T) {
	sa := samplePayloads()[1].(*SA)
	offers := sa.Offers()
	if len(offers) != 2 || len(offers[0]) != 2 || len(offers[1]) != 1 {
		t.Fatalf("offers %+v", offers)
	}
	if offers[0][0].Protocol != ProtocolAH || offers[0][1].Protocol != ProtocolESP || offers[1][0].Protocol != ProtocolIPComp {
		t.Errorf("offers in the wrong order")
	}
}
