package pki

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"testing"
)

// rdn builds one single-valued RDN's DER by hand, independently of ParseDN.
func rdn(oid asn1.ObjectIdentifier, tag int, value string) rdnSET {
	return rdnSET{{Type: oid, Value: asn1.RawValue{Tag: tag, Bytes: []byte(value)}}}
}

func marshalRDNs(t *testing.T, rdns ...rdnSET) []byte {
	t.Helper()
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidE  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

func TestParseDNEncoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []rdnSET
	}{
		{"CN=gw-a, O=Lab", []rdnSET{rdn(oidCN, tagPrintableString, "gw-a"), rdn(oidO, tagPrintableString, "Lab")}},
		// strongSwan's order is the encoded order, and the string type is
		// PrintableString when it fits, UTF8String when not, IA5 for email.
		{"C=CH, O=Lab, CN=moon", []rdnSET{rdn(oidC, tagPrintableString, "CH"), rdn(oidO, tagPrintableString, "Lab"), rdn(oidCN, tagPrintableString, "moon")}},
		{"CN=Zürich", []rdnSET{rdn(oidCN, tagUTF8String, "Zürich")}},
		{"CN=a_b", []rdnSET{rdn(oidCN, tagUTF8String, "a_b")}},
		{"E=alice@lab.example", []rdnSET{rdn(oidE, tagIA5String, "alice@lab.example")}},
		{"emailAddress=alice@lab.example", []rdnSET{rdn(oidE, tagIA5String, "alice@lab.example")}},
		{"DC=lab", []rdnSET{rdn(oidDC, tagPrintableString, "lab")}},
		{"  cn = gw-a ,  o=  Lab Two  ", []rdnSET{rdn(oidCN, tagPrintableString, "gw-a"), rdn(oidO, tagPrintableString, "Lab Two")}},
		{"/C=CH/O=Lab/CN=moon", []rdnSET{rdn(oidC, tagPrintableString, "CH"), rdn(oidO, tagPrintableString, "Lab"), rdn(oidCN, tagPrintableString, "moon")}},
		{`O=a\, b, CN=c\\d`, []rdnSET{rdn(oidO, tagPrintableString, "a, b"), rdn(oidCN, tagUTF8String, `c\d`)}},
		{`CN=\ padded\ `, []rdnSET{rdn(oidCN, tagPrintableString, " padded ")}},
		{"CN=a+b=c", []rdnSET{rdn(oidCN, tagPrintableString, "a+b=c")}},
		{"2.5.4.3=gw-a", []rdnSET{rdn(oidCN, tagPrintableString, "gw-a")}},
		{"1.2.3.4=#0c0278c3", []rdnSET{{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: asn1.RawValue{Tag: tagUTF8String, Bytes: []byte("x\xc3")}}}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDN(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := marshalRDNs(t, tc.want...); !bytes.Equal(got, want) {
				t.Fatalf("ParseDN = %x\nwant       %x", got, want)
			}
		})
	}
}

// The bytes charon 5.9 builds for "C=CH, O=strongSwan, CN=moon.strongswan.org"
// (each value a PrintableString, in written order), and what Go's pkix
// encoding of the same name gives: the same, so a certificate made with
// either matches an ID made with ParseDN byte for byte.
func TestParseDNMatchesPKIX(t *testing.T) {
	der := mustDN(t, "C=CH, O=strongSwan, CN=moon.strongswan.org")
	want, err := asn1.Marshal(pkix.Name{Country: []string{"CH"}, Organization: []string{"strongSwan"}, CommonName: "moon.strongswan.org"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(der, want) {
		t.Fatalf("ParseDN = %x\npkix     %x", der, want)
	}
}

func TestFormatDN(t *testing.T) {
	for _, tc := range []struct {
		name string
		der  []byte
		want string
	}{
		{"strongSwan order", marshalRDNs(t, rdn(oidC, tagPrintableString, "CH"), rdn(oidCN, tagPrintableString, "moon")), "C=CH, CN=moon"},
		{"UTF8", marshalRDNs(t, rdn(oidCN, tagUTF8String, "Zürich")), "CN=Zürich"},
		{"email", marshalRDNs(t, rdn(oidE, tagIA5String, "a@b")), "E=a@b"},
		{"BMPString", marshalRDNs(t, rdn(oidCN, tagBMPString, "\x00g\x00w")), "CN=gw"},
		{"T61String as Latin-1", marshalRDNs(t, rdn(oidCN, tagT61String, "Z\xfcrich")), "CN=Zürich"},
		{"unknown OID", marshalRDNs(t, rdn(asn1.ObjectIdentifier{1, 2, 3, 4}, tagUTF8String, "x")), "1.2.3.4=x"},
		{"non-string value", marshalRDNs(t, rdnSET{{Type: oidCN, Value: asn1.RawValue{Tag: asn1.TagInteger, Bytes: []byte{5}}}}), "CN=#020105"},
		{"invalid UTF8", marshalRDNs(t, rdn(oidCN, tagUTF8String, "\xff")), "CN=#0c01ff"},
		{"empty value", marshalRDNs(t, rdn(oidCN, tagUTF8String, "")), "CN=#0c00"},
		{"escapes", marshalRDNs(t, rdn(oidO, tagUTF8String, `a,b\c`), rdn(oidCN, tagUTF8String, "#1 "), rdn(oidCN, tagUTF8String, " x")), `O=a\,b\\c, CN=\#1\ , CN=\ x`},
		{"multi-valued", marshalRDNs(t, rdnSET{
			{Type: oidCN, Value: asn1.RawValue{Tag: tagUTF8String, Bytes: []byte("a")}},
			{Type: oidO, Value: asn1.RawValue{Tag: tagUTF8String, Bytes: []byte("b")}},
		}), "CN=a + O=b"},
		{"empty sequence", []byte{0x30, 0x00}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FormatDN(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("FormatDN = %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "30", "3003020100", "300031", "3000ff"} {
		der, _ := hex.DecodeString(bad)
		if s, err := FormatDN(der); err == nil {
			t.Errorf("FormatDN(%s) = %q, want an error", bad, s)
		}
	}
}

// Round trips: a string in canonical form comes back unchanged, and
// any DN ParseDN makes survives FormatDN and ParseDN byte for byte.
func TestDNRoundTrip(t *testing.T) {
	for _, s := range []string{
		"CN=gw-a",
		"C=CH, O=strongSwan, CN=moon.strongswan.org",
		"CN=Zürich, O=Lab",
		"E=alice@lab.example, CN=alice",
		"DC=example, DC=lab, CN=gw-b",
		"serialNumber=1234, ST=Vaud, L=Lausanne, STREET=Rue 1, OU=Net, T=Admin, UID=jdoe, postalCode=1000",
		`O=a\,b, CN=c\\d`,
		`CN=\ lead, O=trail\ , OU=\#x`,
		"CN=a+b",
		"1.2.3.4=#020105",
		"1.2.3.4=text",
	} {
		der, err := ParseDN(s)
		if err != nil {
			t.Errorf("ParseDN(%q): %v", s, err)
			continue
		}
		back, err := FormatDN(der)
		if err != nil || back != s {
			t.Errorf("FormatDN(ParseDN(%q)) = %q, %v", s, back, err)
			continue
		}
		again, err := ParseDN(back)
		if err != nil || !bytes.Equal(again, der) {
			t.Errorf("ParseDN(FormatDN(ParseDN(%q))) = %x, %v; want %x", s, again, err, der)
		}
	}
	// Other spellings of the same DN print in the canonical one.
	for in, want := range map[string]string{
		" cn = gw-a ,o=Lab ":          "CN=gw-a, O=Lab",
		"/CN=gw-a/O=Lab":              "CN=gw-a, O=Lab",
		"Email=a@b":                   "E=a@b",
		"emailaddress=a@b, 2.5.4.3=x": "E=a@b, CN=x",
	} {
		der, err := ParseDN(in)
		if err != nil {
			t.Errorf("ParseDN(%q): %v", in, err)
			continue
		}
		if got, _ := FormatDN(der); got != want {
			t.Errorf("FormatDN(ParseDN(%q)) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDNErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // each must appear in the message
	}{
		{"", []string{"empty DN"}},
		{"   ", []string{"empty DN"}},
		{"CN=gw-a, X=1", []string{`attribute 2 "X=1"`, `unknown attribute type "X"`, "CN", "emailAddress"}},
		{"SN=Smith", []string{`unknown attribute type "SN"`}},
		{"CN=gw-a, O Lab", []string{`attribute 2 "O Lab"`, `no "="`}},
		{"CN=gw-a,,O=Lab", []string{"attribute 2", "empty attribute"}},
		{"CN=gw-a,", []string{"attribute 2", "empty attribute"}},
		{"=gw-a", []string{"no attribute type"}},
		{"CN=", []string{"CN has an empty value"}},
		{"CN=gw-a, O=  ", []string{"O has an empty value"}},
		{"E=zoë@lab", []string{"must be ASCII"}},
		{"CN=\xff", []string{"not valid UTF-8"}},
		{`CN=gw-a\`, []string{`lone "\"`}},
		{"CN=#zz", []string{"bad hex"}},
		{"CN=#0c05ab", []string{"not a DER value"}},
		{"CN=#0c01ab00", []string{"1 bytes after"}},
		{"3.1=x", []string{"3.1 is not a valid OID"}},
		{"1.99=x", []string{"not a valid OID"}},
		{"1..2=x", []string{"not a valid OID"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			der, err := ParseDN(tc.in)
			if err == nil {
				t.Fatalf("ParseDN = %x, want an error", der)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEqualDN(t *testing.T) {
	base := mustDN(t, "C=CH, O=Lab, CN=gw-a")
	for _, tc := range []struct {
		name  string
		other []byte
		equal bool
	}{
		{"same bytes", base, true},
		{"other spelling", mustDN(t, " c=CH ,o =  Lab,   cn=gw-a "), true},
		{"case", mustDN(t, "C=ch, O=LAB, CN=GW-A"), true},
		{"inner white space", marshalRDNs(t, rdn(oidC, tagPrintableString, "CH"), rdn(oidO, tagUTF8String, " Lab "), rdn(oidCN, tagUTF8String, "gw-a")), true},
		{"UTF8String instead of PrintableString", marshalRDNs(t, rdn(oidC, tagUTF8String, "CH"), rdn(oidO, tagUTF8String, "Lab"), rdn(oidCN, tagUTF8String, "gw-a")), true},
		{"BMPString", marshalRDNs(t, rdn(oidC, tagPrintableString, "CH"), rdn(oidO, tagBMPString, "\x00L\x00a\x00b"), rdn(oidCN, tagPrintableString, "gw-a")), true},
		{"other value", mustDN(t, "C=CH, O=Lab, CN=gw-b"), false},
		{"other order", mustDN(t, "CN=gw-a, O=Lab, C=CH"), false},
		{"one RDN fewer", mustDN(t, "C=CH, O=Lab"), false},
		{"one RDN more", mustDN(t, "C=CH, O=Lab, CN=gw-a, OU=x"), false},
		{"other type", mustDN(t, "C=CH, OU=Lab, CN=gw-a"), false},
		{"garbage", []byte{0x30, 0x03, 1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EqualDN(base, tc.other); got != tc.equal {
				t.Errorf("EqualDN = %v, want %v", got, tc.equal)
			}
			if got := EqualDN(tc.other, base); got != tc.equal {
				t.Errorf("EqualDN reversed = %v, want %v", got, tc.equal)
			}
		})
	}
	multi := func(a, b atv) []byte { return marshalRDNs(t, rdnSET{a, b}) }
	x := atv{Type: oidCN, Value: asn1.RawValue{Tag: tagUTF8String, Bytes: []byte("x")}}
	y := atv{Type: oidO, Value: asn1.RawValue{Tag: tagUTF8String, Bytes: []byte("y")}}
	if !EqualDN(multi(x, y), multi(y, x)) {
		t.Error("a multi-valued RDN's attributes are a set; order must not matter")
	}
	if EqualDN(multi(x, x), multi(x, y)) {
		t.Error("multi-valued RDN {x, x} equals {x, y}")
	}
	if EqualDN([]byte{1}, []byte{1}) {
		t.Error("identical garbage compares equal")
	}
}
