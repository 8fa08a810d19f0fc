package ike

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// Identity is a phase 1 identity (RFC 2407 §4.6.2): what an ID payload says
// a peer is. With pre-shared keys in Main Mode it cannot choose the key (the
// key is needed to decrypt it), so it is checked after the fact; in
// Aggressive Mode it travels in the clear and can.
type Identity struct {
	Type isakmp.IDType
	Data []byte
}

// ParseIdentity reads an identity in strongSwan's notation: an IPv4 address,
// "dn:CN=gw-a, O=Lab" (a certificate's subject), "fqdn:vpn.example.org", "email:alice@example.org", "keyid:opaque" or
// "keyid:#6b6579" (hex). An empty string is the address def.
func ParseIdentity(s string, def netip.Addr) (Identity, error) {
	if s == "" {
		if !def.IsValid() {
			return Identity{}, fmt.Errorf("no identity and no address to default to")
		}
		return identityOf(isakmp.NewIDAddr(def)), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return Identity{}, fmt.Errorf("identity %q: only IPv4 addresses are supported", s)
		}
		return identityOf(isakmp.NewIDAddr(a)), nil
	}
	kind, value, typed := strings.Cut(s, ":")
	if !typed {
		// strongSwan's heuristics for untyped strings.
		if strings.Contains(s, "@") {
			return Identity{Type: isakmp.IDUserFQDN, Data: []byte(s)}, nil
		}
		return Identity{Type: isakmp.IDFQDN, Data: []byte(s)}, nil
	}
	if value == "" {
		return Identity{}, fmt.Errorf("identity %q is empty after the prefix", s)
	}
	switch kind {
	case "fqdn":
		return Identity{Type: isakmp.IDFQDN, Data: []byte(value)}, nil
	case "email", "userfqdn":
		return Identity{Type: isakmp.IDUserFQDN, Data: []byte(value)}, nil
	case "dn", "asn1dn":
		der, err := pki.ParseDN(value)
		if err != nil {
			return Identity{}, fmt.Errorf("identity %q: %v", s, err)
		}
		return Identity{Type: isakmp.IDDERASN1DN, Data: der}, nil
	case "keyid":
		if h, ok := strings.CutPrefix(value, "#"); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				return Identity{}, fmt.Errorf("identity %q: bad hex: %v", s, err)
			}
			return Identity{Type: isakmp.IDKeyID, Data: b}, nil
		}
		return Identity{Type: isakmp.IDKeyID, Data: []byte(value)}, nil
	case "ipv4":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is4() {
			return Identity{}, fmt.Errorf("identity %q: not an IPv4 address", s)
		}
		return identityOf(isakmp.NewIDAddr(a)), nil
	}
	return Identity{}, fmt.Errorf("identity %q: unknown type %q (use an address, dn:, fqdn:, email: or keyid:)", s, kind)
}

func identityOf(p *isakmp.ID) Identity {
	return Identity{Type: p.IDType, Data: bytes.Clone(p.Data)}
}

// Payload returns the identity as a phase 1 ID payload. RFC 2407 §4.6.2 lets
// phase 1 IDs carry protocol and port; like strongSwan we leave them zero.
func (id Identity) Payload() *isakmp.ID {
	return &isakmp.ID{IDType: id.Type, Data: bytes.Clone(id.Data)}
}

// Equal reports whether two identities are the same. Two DNs are the same
// name however each was encoded (PrintableString or UTF8String, say), as
// RFC 4945 §3.1.5 asks of a comparison with a certificate's subject.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	if id.Type == isakmp.IDDERASN1DN {
		return pki.EqualDN(id.Data, o.Data)
	}
	return bytes.Equal(id.Data, o.Data)
}

func (id Identity) String() string { return id.Payload().String() }
