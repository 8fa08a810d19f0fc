package isakmp

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ID is the Identification payload with the IPsec DOI's fields (RFC 2408
// §3.8, RFC 2407 §4.6.2). In phase 1 it names a peer (IDii, IDir); in Quick
// Mode the two client IDs (IDci, IDcr) are the traffic selectors, and Protocol
// and Port restrict them (0 means any).
type ID struct {
	received
	IDType   IDType
	Protocol uint8  // IP protocol number, 0 for any
	Port     uint16 // 0 for any
	Data     []byte
}

const idFixedLen = 4

func (*ID) Type() PayloadType { return PayloadID }
func (p *ID) Body() []byte    { return bodyOf(p) }

func (p *ID) appendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.IDType), p.Protocol)
	b = binary.BigEndian.AppendUint16(b, p.Port)
	return append(b, p.Data...), nil
}

// idDataLen is the exact data length of the address ID types.
var idDataLen = map[IDType]int{
	IDIPv4Addr: 4, IDIPv4AddrSubnet: 8, IDIPv4AddrRange: 8,
	IDIPv6Addr: 16, IDIPv6AddrSubnet: 32, IDIPv6AddrRange: 32,
}

func (p *ID) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadID, body, idFixedLen, off); err != nil {
		return err
	}
	p.IDType, p.Protocol, p.Port = IDType(body[0]), body[1], binary.BigEndian.Uint16(body[2:])
	p.Data = body[idFixedLen:]
	if n, ok := idDataLen[p.IDType]; ok && len(p.Data) != n {
		return newError(NotifyInvalidIDInformation, PayloadID, off, "%s identification holds %d bytes, not %d", p.IDType, len(p.Data), n)
	}
	return nil
}

// ParseID decodes the body of an ID payload, with the checks Decode makes:
// for a body that travelled encrypted (RFC 2409 §5.2, §5.3), once it is
// decrypted. The ID aliases body, and remembers it as its received body.
func ParseID(body []byte) (*ID, error) {
	p := &ID{}
	if err := p.decodeBody(body, 0); err != nil {
		return nil, err
	}
	p.setReceived(body)
	return p, nil
}

// NewIDAddr returns an ID_IPV4_ADDR or ID_IPV6_ADDR identification.
func NewIDAddr(a netip.Addr) *ID {
	a = a.Unmap()
	if a.Is4() {
		return &ID{IDType: IDIPv4Addr, Data: a.AsSlice()}
	}
	return &ID{IDType: IDIPv6Addr, Data: a.AsSlice()}
}

// NewIDPrefix returns an ID_IPV4_ADDR_SUBNET or ID_IPV6_ADDR_SUBNET
// identification: the masked address followed by the mask (RFC 2407 §4.6.2.5).
func NewIDPrefix(p netip.Prefix) *ID {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	n := p.Addr().BitLen() / 8
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	t := IDIPv4AddrSubnet
	if n == 16 {
		t = IDIPv6AddrSubnet
	}
	return &ID{IDType: t, Data: append(p.Addr().AsSlice(), mask...)}
}

// NewIDRange returns an ID_IPV4_ADDR_RANGE or ID_IPV6_ADDR_RANGE
// identification from first to last, both included.
func NewIDRange(first, last netip.Addr) *ID {
	first, last = first.Unmap(), last.Unmap()
	t := IDIPv4AddrRange
	if first.Is6() {
		t = IDIPv6AddrRange
	}
	return &ID{IDType: t, Data: append(first.AsSlice(), last.AsSlice()...)}
}

// NewIDFQDN returns an ID_FQDN identification ("vpn.example.org").
func NewIDFQDN(name string) *ID { return &ID{IDType: IDFQDN, Data: []byte(name)} }

// NewIDUserFQDN returns an ID_USER_FQDN identification ("alice@example.org").
func NewIDUserFQDN(name string) *ID { return &ID{IDType: IDUserFQDN, Data: []byte(name)} }

// NewIDKeyID returns an ID_KEY_ID identification (opaque bytes).
func NewIDKeyID(key []byte) *ID { return &ID{IDType: IDKeyID, Data: key} }

// ErrIDType is returned by the ID accessors for an identification of another
// type.
var ErrIDType = errors.New("isakmp: identification is of another type")

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR identification.
func (p *ID) Addr() (netip.Addr, error) {
	switch {
	case p.IDType == IDIPv4Addr && len(p.Data) == 4, p.IDType == IDIPv6Addr && len(p.Data) == 16:
		a, _ := netip.AddrFromSlice(p.Data)
		return a, nil
	}
	return netip.Addr{}, ErrIDType
}

// Prefix returns the traffic selector of a subnet or single-address
// identification. A subnet whose mask is not contiguous is an error: IPsec
// policies cannot express it.
func (p *ID) Prefix() (netip.Prefix, error) {
	if a, err := p.Addr(); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	var n int
	switch {
	case p.IDType == IDIPv4AddrSubnet && len(p.Data) == 8:
		n = 4
	case p.IDType == IDIPv6AddrSubnet && len(p.Data) == 32:
		n = 16
	default:
		return netip.Prefix{}, ErrIDType
	}
	a, _ := netip.AddrFromSlice(p.Data[:n])
	bits, ok := maskBits(p.Data[n:])
	if !ok {
		return netip.Prefix{}, fmt.Errorf("isakmp: subnet mask %x is not contiguous", p.Data[n:])
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

func maskBits(mask []byte) (int, bool) {
	bits, ended := 0, false
	for _, c := range mask {
		for i := 7; i >= 0; i-- {
			set := c&(1<<i) != 0
			switch {
			case set && ended:
				return 0, false
			case set:
				bits++
			default:
				ended = true
			}
		}
	}
	return bits, true
}

// Range returns the first and last address of a range identification.
func (p *ID) Range() (first, last netip.Addr, err error) {
	var n int
	switch {
	case p.IDType == IDIPv4AddrRange && len(p.Data) == 8:
		n = 4
	case p.IDType == IDIPv6AddrRange && len(p.Data) == 32:
		n = 16
	default:
		return first, last, ErrIDType
	}
	first, _ = netip.AddrFromSlice(p.Data[:n])
	last, _ = netip.AddrFromSlice(p.Data[n:])
	return first, last, nil
}

// String renders the identification the way strongSwan logs one:
// "192.0.2.1", "10.1.0.0/24", "10.0.0.1-10.0.0.9", "vpn.example.org",
// "alice@example.org", "keyid:6b6579", followed by "[protocol/port]" when
// Quick Mode restricts it.
func (p *ID) String() string {
	var s string
	switch p.IDType {
	case IDIPv4Addr, IDIPv6Addr, IDIPv4AddrSubnet, IDIPv6AddrSubnet:
		if pr, err := p.Prefix(); err == nil {
			if pr.IsSingleIP() && (p.IDType == IDIPv4Addr || p.IDType == IDIPv6Addr) {
				s = pr.Addr().String()
			} else {
				s = pr.String()
			}
		}
	case IDIPv4AddrRange, IDIPv6AddrRange:
		if a, b, err := p.Range(); err == nil {
			s = a.String() + "-" + b.String()
		}
	case IDFQDN, IDUserFQDN:
		s = string(p.Data)
	case IDKeyID:
		s = fmt.Sprintf("keyid:%x", p.Data)
	case IDDERASN1DN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(p.Data, &rdn); err == nil && len(rest) == 0 {
			// In the order of the sequence, as strongSwan writes a DN
			// ("O=Lab, CN=gw-a"); pkix prints it the other way round.
			parts := make([]string, len(rdn))
			for i := range rdn {
				parts[i] = rdn[i : i+1].String()
			}
			s = "dn:" + strings.Join(parts, ", ")
		}
	}
	if s == "" {
		s = fmt.Sprintf("%s:%x", p.IDType, p.Data)
	}
	if p.Protocol != 0 || p.Port != 0 {
		s += fmt.Sprintf("[%d/%d]", p.Protocol, p.Port)
	}
	return s
}
