package topology

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// ParseID reads a phase 1 identity as a lab file writes it, in strongSwan's
// notation, into the type and data of its ID payload (RFC 2407 §4.6.2): an
// address, "dn:CN=gw-a, O=Lab" (DER_ASN1_DN), "fqdn:vpn.example.org",
// "email:alice@example.org", "keyid:opaque" or "keyid:#6b6579" (hex), or
// "ipv4:192.0.2.1". Untyped text is an email address when it holds '@', else
// an FQDN, as strongSwan reads it. The empty identity is the address def.
func ParseID(s string, def netip.Addr) (isakmp.IDType, []byte, error) {
	if s == "" {
		if !def.IsValid() {
			return 0, nil, fmt.Errorf("no identity and no address to default to")
		}
		return addrID(def)
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return addrID(a)
	}
	kind, value, typed := strings.Cut(s, ":")
	if !typed {
		if strings.Contains(s, "@") {
			return isakmp.IDUserFQDN, []byte(s), nil
		}
		return isakmp.IDFQDN, []byte(s), nil
	}
	if value == "" {
		return 0, nil, fmt.Errorf("identity %q has an empty value", s)
	}
	switch kind {
	case "fqdn":
		return isakmp.IDFQDN, []byte(value), nil
	case "email", "userfqdn":
		return isakmp.IDUserFQDN, []byte(value), nil
	case "keyid":
		if h, ok := strings.CutPrefix(value, "#"); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				return 0, nil, fmt.Errorf("identity %q: bad hex after keyid:#: %v", s, err)
			}
			return isakmp.IDKeyID, b, nil
		}
		return isakmp.IDKeyID, []byte(value), nil
	case "ipv4":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is4() {
			return 0, nil, fmt.Errorf("identity %q: %q is not an IPv4 address", s, value)
		}
		return addrID(a)
	case "dn", "asn1dn":
		der, err := pki.ParseDN(value)
		if err != nil {
			return 0, nil, fmt.Errorf("identity %q: %v", s, err)
		}
		return isakmp.IDDERASN1DN, der, nil
	}
	return 0, nil, fmt.Errorf("identity %q has the unknown type %q (use an address, dn:, fqdn:, email: or keyid:)", s, kind)
}

func addrID(a netip.Addr) (isakmp.IDType, []byte, error) {
	p := isakmp.NewIDAddr(a)
	return p.IDType, p.Data, nil
}

// idInCertificate says how an identity of this type goes into a certificate
// of the lab PKI, or why it cannot.
func idInCertificate(t isakmp.IDType) error {
	switch t {
	case isakmp.IDIPv4Addr, isakmp.IDIPv6Addr, isakmp.IDFQDN, isakmp.IDUserFQDN, isakmp.IDDERASN1DN:
		return nil
	}
	what := t.String()
	if t == isakmp.IDKeyID {
		what = "keyid:"
	}
	return fmt.Errorf("a %s identity cannot be in a certificate (RFC 4945 §3.1 matches addresses, dn:, fqdn: and email: against one)", what)
}
