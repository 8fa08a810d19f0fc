package isakmp

import "net/netip"

// NATD is the NAT-Discovery payload (RFC 3947 §3.2): HASH(CKY-I | CKY-R | IP |
// Port) of one end of the exchange. Draft selects the payload type 130 used
// with the draft-ietf-ipsec-nat-t-ike-02/03 vendor IDs instead of 20.
type NATD struct {
	received
	Draft bool
	Hash  []byte
}

func (p *NATD) Type() PayloadType {
	if p.Draft {
		return PayloadNATDDraft
	}
	return PayloadNATD
}
func (p *NATD) Body() []byte                        { return bodyOf(p) }
func (p *NATD) appendBody(b []byte) ([]byte, error) { return append(b, p.Hash...), nil }
func (p *NATD) decodeBody(body []byte, _ int) error { p.Hash = body; return nil }

// NATOA is the NAT Original Address payload (RFC 3947 §5.1), sent in Quick
// Mode for transport mode so that the peer can fix TCP/UDP checksums. Draft
// selects payload type 131 instead of 21. Addr is encoded as it is, so that a
// received payload encodes back to the same bytes: an IPv4-mapped IPv6
// address as ID_IPV6_ADDR. NewNATOA unmaps the address it is given.
type NATOA struct {
	received
	Draft bool
	Addr  netip.Addr
}

// NewNATOA returns a NAT-OA payload for a, as ID_IPV4_ADDR when a is IPv4 or
// IPv4-mapped.
func NewNATOA(draft bool, a netip.Addr) *NATOA { return &NATOA{Draft: draft, Addr: a.Unmap()} }

const natoaFixedLen = 4 // ID type, RESERVED, RESERVED2

func (p *NATOA) Type() PayloadType {
	if p.Draft {
		return PayloadNATOADraft
	}
	return PayloadNATOA
}
func (p *NATOA) Body() []byte { return bodyOf(p) }

func (p *NATOA) appendBody(b []byte) ([]byte, error) {
	switch {
	case p.Addr.Is4():
		b = append(b, byte(IDIPv4Addr), 0, 0, 0)
	case p.Addr.Is6():
		b = append(b, byte(IDIPv6Addr), 0, 0, 0)
	default:
		return nil, encodeError("NAT-OA without an address")
	}
	return append(b, p.Addr.AsSlice()...), nil
}

func (p *NATOA) decodeBody(body []byte, off int) error {
	if err := checkMin(p.Type(), body, natoaFixedLen, off); err != nil {
		return err
	}
	addr := body[natoaFixedLen:]
	switch t := IDType(body[0]); {
	case t == IDIPv4Addr && len(addr) == 4, t == IDIPv6Addr && len(addr) == 16:
		p.Addr, _ = netip.AddrFromSlice(addr)
		return nil
	default:
		return malformed(p.Type(), off, "%s with %d address bytes", t, len(addr))
	}
}
