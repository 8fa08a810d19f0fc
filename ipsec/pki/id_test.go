package pki

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

func TestCertifiesID(t *testing.T) {
	ca := testCA(t, "CA")
	cred, err := ca.Issue(IssueRequest{
		RawSubject: mustDN(t, "C=CH, O=ipseclab lab demo, CN=gw-a"),
		DNSNames:   []string{"gw-a.lab", "VPN.Example.org"},
		Emails:     []string{"Admin@gw-a.lab"},
		IPs:        []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		KeyType:    ECDSAP256, NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
	}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := cred.Leaf()
	bare := makeCert(t, leafTemplate("bare"), ecKey(t, elliptic.P256()), ca.Cert, ca.Key)
	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate
		typ   isakmp.IDType
		data  []byte
		match bool
		text  []string // in the error, when it does not match
	}{
		{"DN, same bytes", cert, isakmp.IDDERASN1DN, mustDN(t, "C=CH, O=ipseclab lab demo, CN=gw-a"), true, nil},
		{"DN, other spelling", cert, isakmp.IDDERASN1DN, mustDN(t, "c = CH,o=IPSECLAB  lab demo ,cn=gw-a"), true, nil},
		{"DN, UTF8String encoding", cert, isakmp.IDDERASN1DN, marshalRDNs(t, rdn(oidC, tagUTF8String, "CH"), rdn(oidO, tagUTF8String, "ipseclab lab demo"), rdn(oidCN, tagUTF8String, "gw-a")), true, nil},
		{"DN, other CN", cert, isakmp.IDDERASN1DN, mustDN(t, "C=CH, O=ipseclab lab demo, CN=gw-b"), false,
			[]string{`ID "C=CH, O=ipseclab lab demo, CN=gw-b"`, `which is "C=CH, O=ipseclab lab demo, CN=gw-a"`}},
		{"DN, reordered", cert, isakmp.IDDERASN1DN, mustDN(t, "CN=gw-a, O=ipseclab lab demo, C=CH"), false, nil},
		{"DN, subset", cert, isakmp.IDDERASN1DN, mustDN(t, "CN=gw-a"), false, nil},
		{"DN, garbage", cert, isakmp.IDDERASN1DN, []byte("gw-a"), false, []string{"does not parse"}},
		{"FQDN", cert, isakmp.IDFQDN, []byte("gw-a.lab"), true, nil},
		{"FQDN, case and root dot", cert, isakmp.IDFQDN, []byte("vpn.example.ORG."), true, nil},
		{"FQDN, absent", cert, isakmp.IDFQDN, []byte("gw-b.lab"), false, []string{`"gw-b.lab" (FQDN)`, "DNS names", "gw-a.lab, VPN.Example.org"}},
		{"FQDN, CN is not a SAN", cert, isakmp.IDFQDN, []byte("gw-a"), false, nil},
		{"FQDN, no SANs", bare, isakmp.IDFQDN, []byte("bare"), false, []string{"none"}},
		{"USER_FQDN", cert, isakmp.IDUserFQDN, []byte("Admin@GW-A.lab"), true, nil},
		{"USER_FQDN, local part case", cert, isakmp.IDUserFQDN, []byte("admin@gw-a.lab"), false, []string{"email addresses", "Admin@gw-a.lab"}},
		{"USER_FQDN, absent", cert, isakmp.IDUserFQDN, []byte("bob@gw-a.lab"), false, nil},
		{"IPv4", cert, isakmp.IDIPv4Addr, []byte{192, 0, 2, 1}, true, nil},
		{"IPv4, absent", cert, isakmp.IDIPv4Addr, []byte{192, 0, 2, 2}, false, []string{`"192.0.2.2" (IPV4_ADDR)`, "192.0.2.1, 2001:db8::1"}},
		{"IPv4, short", cert, isakmp.IDIPv4Addr, []byte{192, 0, 2}, false, []string{"3 bytes, not 4"}},
		{"IPv6", cert, isakmp.IDIPv6Addr, net.ParseIP("2001:db8::1"), true, nil},
		{"IPv6, absent", cert, isakmp.IDIPv6Addr, net.ParseIP("2001:db8::2"), false, nil},
		{"KEY_ID", cert, isakmp.IDKeyID, []byte("gw-a"), false, []string{"cannot vouch for a KEY_ID"}},
		{"subnet", cert, isakmp.IDIPv4AddrSubnet, []byte{192, 0, 2, 0, 255, 255, 255, 0}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CertifiesID(tc.cert, tc.typ, tc.data)
			if tc.match {
				if err != nil {
					t.Fatalf("CertifiesID: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrIDNotInCertificate) {
				t.Fatalf("CertifiesID: %v, want ErrIDNotInCertificate", err)
			}
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
		})
	}
}
