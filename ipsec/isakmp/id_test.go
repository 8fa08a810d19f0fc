package isakmp

import (
	"bytes"
	"crypto/md5"
	"net/netip"
	"testing"
)

func TestIDAccessors(t *testing.T) {
	cases := []struct {
		id     *ID
		prefix string // "" when the ID has no prefix
		str    string
	}{
		{NewIDAddr(netip.MustParseAddr("192.0.2.7")), "192.0.2.7/32", "192.0.2.7"},
		{NewIDAddr(netip.MustParseAddr("::ffff:192.0.2.7")), "192.0.2.7/32", "192.0.2.7"},
		{NewIDAddr(netip.MustParseAddr("2001:db8::7")), "2001:db8::7/128", "2001:db8::7"},
		{NewIDPrefix(netip.MustParsePrefix("10.1.0.77/24")), "10.1.0.0/24", "10.1.0.0/24"},
		{NewIDPrefix(netip.MustParsePrefix("0.0.0.0/0")), "0.0.0.0/0", "0.0.0.0/0"},
		{NewIDPrefix(netip.MustParsePrefix("2001:db8::/33")), "2001:db8::/33", "2001:db8::/33"},
		{NewIDRange(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")), "", "10.0.0.1-10.0.0.9"},
		{NewIDFQDN("vpn.example.org"), "", "vpn.example.org"},
		{NewIDUserFQDN("alice@example.org"), "", "alice@example.org"},
		{NewIDKeyID([]byte("key")), "", "keyid:6b6579"},
		{&ID{IDType: IDDERASN1DN, Data: []byte{0x30}}, "", "DER_ASN1_DN:30"},
	}
	for _, c := range cases {
		p, err := c.id.Prefix()
		if c.prefix == "" && err == nil || c.prefix != "" && (err != nil || p.String() != c.prefix) {
			t.Errorf("%s: Prefix = %v, %v; want %q", c.str, p, err, c.prefix)
		}
		if s := c.id.String(); s != c.str {
			t.Errorf("String = %q, want %q", s, c.str)
		}
	}
	// The IPv4 subnet ID of 10.1.0.0/24 is address then mask (RFC 2407 §4.6.2.5).
	if d := NewIDPrefix(netip.MustParsePrefix("10.1.0.0/24")).Data; !bytes.Equal(d, []byte{10, 1, 0, 0, 255, 255, 255, 0}) {
		t.Errorf("subnet data %x", d)
	}
	holey := &ID{IDType: IDIPv4AddrSubnet, Data: []byte{10, 0, 0, 0, 255, 0, 255, 0}}
	if _, err := holey.Prefix(); err == nil {
		t.Errorf("non-contiguous mask accepted")
	}
	first, last, err := NewIDRange(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::9")).Range()
	if err != nil || first.String() != "2001:db8::1" || last.String() != "2001:db8::9" {
		t.Errorf("Range = %v %v %v", first, last, err)
	}
	if _, err := NewIDFQDN("x").Addr(); err != ErrIDType {
		t.Errorf("Addr of an FQDN: %v", err)
	}
	if _, _, err := NewIDFQDN("x").Range(); err != ErrIDType {
		t.Errorf("Range of an FQDN: %v", err)
	}
}

// The vendor IDs are MD5 hashes of well-known strings (RFC 3947 §3.1,
// draft-ietf-ipsec-nat-t-ike-02/03 §3.1, and the strings strongSwan documents
// for the others); checking them against MD5 guards the table against typos.
func TestVendorIDsAreTheDocumentedHashes(t *testing.T) {
	sum := func(s string) []byte { h := md5.Sum([]byte(s)); return h[:] }
	cases := []struct {
		k    KnownVendor
		want []byte
	}{
		{VendorNATTRFC3947, sum("RFC 3947")},
		{VendorNATTDraft02, sum("draft-ietf-ipsec-nat-t-ike-02")},
		{VendorNATTDraft02N, sum("draft-ietf-ipsec-nat-t-ike-02\n")},
		{VendorNATTDraft03, sum("draft-ietf-ipsec-nat-t-ike-03")},
		{VendorNATTDraft08, sum("draft-ietf-ipsec-nat-t-ike-08")},
		{VendorStrongSwan, sum("strongSwan")},
		{VendorXAuth, sum("draft-ietf-ipsra-isakmp-xauth-06.txt")[:8]},
		{VendorFragmentation, append(sum("FRAGMENTATION"), 0x80, 0, 0, 0)},
		{VendorCiscoUnity, append(sum("CISCO-UNITY")[:14], 1, 0)},
	}
	for _, c := range cases {
		if got := c.k.Bytes(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: %x, want %x", c.k, got, c.want)
		}
		if k := NewVendorID(c.k).Known(); k != c.k {
			t.Errorf("%s recognised as %s", c.k, k)
		}
	}
	// The DPD vendor ID of RFC 3706 §4 is given literally.
	if !bytes.Equal(VendorDPD.Bytes(), unhex(t, "afcad71368a1f1c96b8696fc77570100")) {
		t.Errorf("DPD vendor ID %x", VendorDPD.Bytes())
	}
}

func TestVendorIDRecognition(t *testing.T) {
	cases := []struct {
		data string
		want KnownVendor
	}{
		{"4a131c81070358455c5728f20e95452f", VendorNATTRFC3947},
		{"882fe56d6fd20dbc2251613b2ebe5beb", VendorStrongSwan},
		{"882fe56d6fd20dbc2251613b2ebe5beb352e392e38", VendorStrongSwan}, // with a version suffix
		{"4048b7d56ebce88525e7de7f00d6c2d3", VendorFragmentation},        // Windows, without capabilities
		{"12f5f28c457168a9702d9fe274cc0200", VendorCiscoUnity},           // another Unity version
		{"1e2b516905991c7d7c96fcbfb587e46100000009", VendorMSNT5},
		{"f4ed19e0c114eb516faaac0ee37daf2807b4381f000000010000138d459becd70000000018000000", VendorCheckPoint}, // ike-scan check-decode
		{"4865617274426561745f4e6f74696679386b0100", VendorHeartbeatNotify},                                    // ike-scan check-decode
		{"afcad71368a1f1c96b8696fc775701", VendorUnknown},                                                      // DPD, truncated
		{"cd60464335df21f87cfdb2fc68b6a4", VendorUnknown},
		{"", VendorUnknown},
	}
	for _, c := range cases {
		if got := (&VendorID{Data: unhex(t, c.data)}).Known(); got != c.want {
			t.Errorf("%s: %s, want %s", c.data, got, c.want)
		}
	}
	for k, draft := range map[KnownVendor]bool{VendorNATTRFC3947: false, VendorNATTDraft02: true, VendorNATTDraft02N: true, VendorNATTDraft03: true} {
		if ok, d := k.NATT(); !ok || d != draft {
			t.Errorf("%s: NATT %v %v", k, ok, d)
		}
	}
	if ok, _ := VendorNATTDraft08.NATT(); ok {
		t.Errorf("draft-08 claimed as supported")
	}
}

func TestNamesAsWiresharkPrintsThem(t *testing.T) {
	for got, want := range map[string]string{
		ExchangeMainMode.String():                  "Identity Protection (Main Mode)",
		ExchangeQuickMode.String():                 "Quick Mode",
		ExchangeTransaction.String():               "Transaction (Config Mode)",
		PayloadNATD.String():                       "NAT-D (RFC 3947)",
		PayloadNATDDraft.String():                  "NAT-D (draft-ietf-ipsec-nat-t-ike-01 to 03)",
		PayloadAttributes.String():                 "Attributes",
		NotifyInvalidPayloadType.String():          "INVALID-PAYLOAD-TYPE",
		NotifyNoProposalChosen.String():            "NO-PROPOSAL-CHOSEN",
		NotifyAuthenticationFailed.String():        "AUTHENTICATION-FAILED",
		NotifyPayloadMalformed.String():            "PAYLOAD-MALFORMED",
		NotifyInvalidCookie.String():               "INVALID-COOKIE",
		NotifyResponderLifetime.String():           "RESPONDER-LIFETIME",
		NotifyInitialContact.String():              "INITIAL-CONTACT",
		NotifyRUThere.String():                     "R-U-THERE",
		NotifyRUThereAck.String():                  "R-U-THERE-ACK",
		NotifyType(9101).String():                  "Private Use (9101)",
		ProtocolESP.String():                       "IPSEC_ESP",
		AuthMethodXAuthInitPSK.String():            "XAUTHInitPreShared",
		GroupMODP2048.String():                     "2048 bit MODP group",
		EncapUDPTunnelDraft.String():               "UDP-Encapsulated-Tunnel (draft)",
		TransformName(ProtocolESP, ESPAESGCM16):    "ESP_AES_GCM_16",
		TransformName(ProtocolAH, AHSHA2_256):      "AH_SHA2_256",
		IDIPv4AddrSubnet.String():                  "IPV4_ADDR_SUBNET",
		(FlagEncryption | FlagCommit).String():     "E|C",
		OakleyAttributeName(OakleyLifeDuration):    "Life-Duration",
		IPsecAttributeName(IPsecEncapsulationMode): "Encapsulation-Mode",
		ConfigAttributeName(XAuthUserPassword):     "XAUTH_USER_PASSWORD",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if !NotifyAuthenticationFailed.IsError() || NotifyInitialContact.IsError() {
		t.Errorf("IsError wrong")
	}
}

// An ID payload whose body is ciphertext (RFC 2409 §5.2, §5.3) may read as
// an address type of the wrong length: Decode refuses it, DecodeSealed keeps
// the body for the exchange to decrypt, and ParseID checks what it decrypts
// to as Decode would.
func TestSealedIDs(t *testing.T) {
	cipherBody := append([]byte{byte(IDIPv4Addr)}, bytes.Repeat([]byte{0xa5}, 255)...) // 256 bytes, as RSA-2048 makes
	msg := &Message{Header: Header{InitiatorCookie: Cookie{1}, ResponderCookie: Cookie{2}, Exchange: ExchangeMainMode},
		Payloads: []Payload{&KE{Data: []byte{1, 2, 3, 4}}, &ID{IDType: IDIPv4Addr, Data: cipherBody[4:]}, &Nonce{Data: []byte("sealed nonce")}}}
	// Encode writes the type, protocol and port as the first four bytes,
	// which is cipherBody's start with protocol and port zero; fix them.
	copy(cipherBody[1:4], []byte{0, 0, 0})
	b, err := msg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); NotifyFor(err) != NotifyInvalidIDInformation {
		t.Fatalf("Decode: %v, want INVALID-ID-INFORMATION", err)
	}
	m, err := DecodeSealed(b)
	if err != nil {
		t.Fatalf("DecodeSealed: %v", err)
	}
	id := First[*ID](m)
	if id == nil || !bytes.Equal(id.Body(), cipherBody) || len(m.Payloads) != 3 {
		t.Fatalf("DecodeSealed kept %v, ID body %x", m.PayloadNames(), id.Body())
	}

	// ParseID: what a body decrypts to.
	plain := NewIDFQDN("gw-a.lab.example")
	got, err := ParseID(plain.Body())
	if err != nil || got.String() != "gw-a.lab.example" || !bytes.Equal(got.Body(), plain.Body()) {
		t.Errorf("ParseID = %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0}, {byte(IDIPv4Addr), 0, 0, 0, 1, 2, 3, 4, 5}} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%x) succeeded", bad)
		}
	}
}
