package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// ErrIDNotInCertificate is the peer's identification not being one the
// certificate vouches for. A signature only proves possession of the key;
// without this check a peer with any certificate from the CA could claim
// any identity (RFC 4945 §3.1). Phase 1 answers INVALID-ID-INFORMATION.
var ErrIDNotInCertificate = errors.New("pki: ID not in certificate")

// CertifiesID checks an ID payload's type and data against cert, following
// RFC 4945 §3.1: ID_DER_ASN1_DN against the subject, compared as a name
// (EqualDN), because peers re-encode DNs and differ in string types; ID_FQDN
// against dNSName SANs; ID_USER_FQDN against rfc822Name SANs; ID_IPV4_ADDR and
// ID_IPV6_ADDR against iPAddress SANs. The subject's CN is deliberately not
// searched for an FQDN: RFC 4945 §3.1.2 puts the FQDN in the dNSName SAN,
// and a CN that merely looks like a host name vouches for nothing.
func CertifiesID(cert *x509.Certificate, t isakmp.IDType, data []byte) error {
	switch t {
	case isakmp.IDDERASN1DN:
		if _, err := parseRDNs(data); err != nil {
			return fmt.Errorf("%w: the DER_ASN1_DN ID does not parse: %v", ErrIDNotInCertificate, err)
		}
		if EqualDN(data, cert.RawSubject) {
			return nil
		}
		id, _ := FormatDN(data)
		subject, _ := FormatDN(cert.RawSubject)
		return fmt.Errorf("%w: ID %q (DER_ASN1_DN) is not the subject of the certificate, which is %q",
			ErrIDNotInCertificate, id, subject)

	case isakmp.IDFQDN:
		name := strings.TrimSuffix(string(data), ".")
		for _, n := range cert.DNSNames {
			// DNS names compare case-insensitively (RFC 4343).
			if strings.EqualFold(strings.TrimSuffix(n, "."), name) {
				return nil
			}
		}
		return notInCert(cert, string(data), t, "DNS names", cert.DNSNames)

	case isakmp.IDUserFQDN:
		for _, e := range cert.EmailAddresses {
			if equalEmail(e, string(data)) {
				return nil
			}
		}
		return notInCert(cert, string(data), t, "email addresses", cert.EmailAddresses)

	case isakmp.IDIPv4Addr, isakmp.IDIPv6Addr:
		if want := map[isakmp.IDType]int{isakmp.IDIPv4Addr: 4, isakmp.IDIPv6Addr: 16}[t]; len(data) != want {
			return fmt.Errorf("%w: a %s ID holds %d bytes, not %d", ErrIDNotInCertificate, t, len(data), want)
		}
		ip := net.IP(data)
		var have []string
		for _, a := range cert.IPAddresses {
			if a.Equal(ip) {
				return nil
			}
			have = append(have, a.String())
		}
		return notInCert(cert, ip.String(), t, "IP addresses", have)
	}
	return fmt.Errorf("%w: a certificate cannot vouch for a %s ID; use a DN, FQDN, USER_FQDN or address ID",
		ErrIDNotInCertificate, t)
}

func notInCert(cert *x509.Certificate, id string, t isakmp.IDType, kind string, have []string) error {
	holds := "none"
	if len(have) > 0 {
		holds = strings.Join(have, ", ")
	}
	return fmt.Errorf("%w: ID %q (%s) is not among the %s of certificate %s: %s",
		ErrIDNotInCertificate, id, t, kind, certName(cert), holds)
}

// equalEmail compares mailboxes: the domain ignores case, the local part
// does not (RFC 5280 §7.5).
func equalEmail(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ia < 0 || ib < 0 {
		return a == b
	}
	return a[:ia] == b[:ib] && strings.EqualFold(a[ia:], b[ib:])
}
