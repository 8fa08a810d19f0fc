package isakmp

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestAttributeForms(t *testing.T) {
	cases := []struct {
		attr Attribute
		wire string
		uint uint64
	}{
		{Basic(OakleyEncryptionAlgorithm, 7), "80010007", 7},
		{Number(OakleyLifeDuration, 28800), "800c7080", 28800},
		{Number(OakleyLifeDuration, 86400), "000c0004 00015180", 86400},
		{Number(IPsecSALifeDuration, 1<<40), "00020008 0000010000000000", 1 << 40},
		{Variable(CfgInternalIP4Address, nil), "00010000", 0},
	}
	for _, c := range cases {
		wire, err := appendAttribute(nil, c.attr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wire, unhex(t, c.wire)) {
			t.Errorf("%+v encodes as %x, want %s", c.attr, wire, c.wire)
		}
		back, err := decodeAttributes(wire, PayloadTransform, 0)
		if err != nil || len(back) != 1 || back[0].Type != c.attr.Type || back[0].TV != c.attr.TV || !bytes.Equal(back[0].Value, c.attr.Value) {
			t.Errorf("%x decodes to %+v, %v", wire, back, err)
		}
		v, ok := back[0].Uint()
		if c.attr.Value != nil && (!ok || v != c.uint) {
			t.Errorf("%+v Uint = %d, %v", c.attr, v, ok)
		}
	}
	if _, ok := Variable(1, nil).Uint(); ok {
		t.Errorf("empty value read as a number")
	}
	if _, ok := Variable(1, make([]byte, 9)).Uint(); !ok {
		t.Errorf("9 bytes with a leading zero not read as a number")
	}
	if _, ok := Variable(1, append([]byte{1}, make([]byte, 8)...)).Uint(); ok {
		t.Errorf("a 65-bit number read as a uint64")
	}
}

func TestPhase1AttributesRoundTrip(t *testing.T) {
	in := Phase1Attributes{
		Encryption: EncAESCBC, KeyLength: 256, Hash: HashSHA2_512, AuthMethod: AuthMethodRSASig,
		Group: GroupECP384, LifeSeconds: 3 * 86400, LifeKilobytes: 1000,
		Other: []Attribute{Basic(OakleyPRF, 1)},
	}
	out, err := ParsePhase1Attributes(in.Attributes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("%+v, want %+v", out, in)
	}
}

func TestPhase1AttributesErrors(t *testing.T) {
	base := Phase1Attributes{Encryption: Enc3DES, Hash: HashSHA1, AuthMethod: AuthMethodPSK, Group: GroupMODP2048}.Attributes()
	cases := map[string][]Attribute{
		"no group":               base[:3],
		"duplicate hash":         append(append([]Attribute(nil), base...), Basic(OakleyHashAlgorithm, 1)),
		"duration without type":  append(append([]Attribute(nil), base...), Number(OakleyLifeDuration, 5)),
		"unknown life type":      append(append([]Attribute(nil), base...), Basic(OakleyLifeType, 9), Number(OakleyLifeDuration, 5)),
		"hash value of 3 bytes":  append([]Attribute{Variable(OakleyHashAlgorithm, []byte{1, 0, 0})}, base[0], base[2], base[3]),
		"empty encryption value": append([]Attribute{Variable(OakleyEncryptionAlgorithm, nil)}, base[1:]...),
	}
	for name, attrs := range cases {
		_, err := ParsePhase1Attributes(attrs)
		var perr *Error
		if !errors.As(err, &perr) || perr.Notify != NotifyAttributesNotSupported {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIPsecAttributesRoundTrip(t *testing.T) {
	in := IPsecAttributes{Encapsulation: EncapUDPTunnel, AuthAlgorithm: AuthAlgHMACSHA256, KeyLength: 128,
		Group: GroupMODP2048, LifeSeconds: 3600, LifeKilobytes: 4608000, ESN: true,
		Other: []Attribute{Basic(IPsecECNTunnel, 1)}}
	out, err := ParseIPsecAttributes(in.Attributes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("%+v, want %+v", out, in)
	}
	if a, _ := ParseIPsecAttributes(nil); !reflect.DeepEqual(a, IPsecAttributes{}) {
		t.Errorf("empty list parsed as %+v", a)
	}
	for name, attrs := range map[string][]Attribute{
		"duplicate mode": {Basic(IPsecEncapsulationMode, 1), Basic(IPsecEncapsulationMode, 2)},
		"bad ESN value":  {Basic(IPsecExtendedSeqNum, 2)},
		"lone duration":  {Number(IPsecSALifeDuration, 60)},
	} {
		if _, err := ParseIPsecAttributes(attrs); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestResponderLifetimeAttributes(t *testing.T) {
	n, err := NewResponderLifetime(ProtocolESP, []byte{1, 2, 3, 4}, IPsecAttributes{LifeSeconds: 1200}.Attributes())
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := n.Attributes()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseIPsecAttributes(attrs)
	if err != nil || got.LifeSeconds != 1200 {
		t.Errorf("%+v %v", got, err)
	}
}

func TestEncapsulationModes(t *testing.T) {
	for _, c := range []struct {
		m           EncapsulationMode
		tunnel, udp bool
	}{
		{EncapTunnel, true, false}, {EncapTransport, false, false},
		{EncapUDPTunnel, true, true}, {EncapUDPTransport, false, true},
		{EncapUDPTunnelDraft, true, true}, {EncapUDPTransportDraft, false, true},
	} {
		if c.m.Tunnel() != c.tunnel || c.m.UDPEncapsulated() != c.udp {
			t.Errorf("%s: tunnel %v udp %v", c.m, c.m.Tunnel(), c.m.UDPEncapsulated())
		}
	}
}
