package esp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

var be = binary.BigEndian

// IPv4 header offsets (RFC 791 §3.1).
const (
	ipv4MinHeader = 20
	ipv4TOS       = 1
	ipv4TotalLen  = 2
	ipv4ID        = 4
	ipv4FlagsFrag = 6
	ipv4TTL       = 8
	ipv4Protocol  = 9
	ipv4Checksum  = 10
	ipv4Src       = 12
	ipv4Dst       = 16

	ipv4DF         = 0x4000
	ipv4MF         = 0x2000
	ipv4FragOffset = 0x1fff

	protoICMP   = 1
	protoIPv4   = 4 // IP-in-IP: the next header of a tunnel-mode IPv4 inner packet
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoNoNext = 59 // RFC 4303 §2.6: a dummy packet, to be discarded
	protoSCTP   = 132

	defaultTTL = 64
)

var (
	errShort     = errors.New("packet too short")
	errNotIPv4   = errors.New("not an IPv4 packet")
	errBadHeader = errors.New("malformed IPv4 header")
)

// ipv4Header checks the fixed part of an IPv4 header and returns its length and
// the packet's total length. The packet may be followed by bytes that are not
// part of it (a TUN read never is, a raw socket read never is, but be strict).
func ipv4Header(p []byte) (ihl, total int, err error) {
	if len(p) < ipv4MinHeader {
		return 0, 0, errShort
	}
	if p[0]>>4 != 4 {
		return 0, 0, errNotIPv4
	}
	ihl = int(p[0]&0x0f) * 4
	total = int(be.Uint16(p[ipv4TotalLen:]))
	if ihl < ipv4MinHeader || total < ihl || total > len(p) {
		return 0, 0, errBadHeader
	}
	return ihl, total, nil
}

func ipv4Addr(p []byte) netip.Addr { return netip.AddrFrom4([4]byte(p[:4])) }

// ipv4Checksum sets the header checksum of h (RFC 791, RFC 1071).
func setIPv4Checksum(h []byte) {
	h[ipv4Checksum], h[ipv4Checksum+1] = 0, 0
	be.PutUint16(h[ipv4Checksum:], ^onesSum(h, 0))
}

// onesSum is the 16-bit one's complement sum of b, folded, added to initial.
func onesSum(b []byte, initial uint32) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// writeIPv4Header writes a 20-byte header for a packet of total bytes, the
// outer header of tunnel mode (RFC 4301 §5.1.2.1): TOS and DF copied from the
// inner header (RFC 6040 normal mode for ECN), a fresh TTL and identification.
func writeIPv4Header(h []byte, total int, tos byte, df bool, id uint16, proto byte, src, dst netip.Addr) {
	h[0] = 0x45
	h[ipv4TOS] = tos
	be.PutUint16(h[ipv4TotalLen:], uint16(total))
	be.PutUint16(h[ipv4ID:], id)
	var ff uint16
	if df {
		ff = ipv4DF
	}
	be.PutUint16(h[ipv4FlagsFrag:], ff)
	h[ipv4TTL] = defaultTTL
	h[ipv4Protocol] = proto
	s, d := src.As4(), dst.As4()
	copy(h[ipv4Src:], s[:])
	copy(h[ipv4Dst:], d[:])
	setIPv4Checksum(h[:ipv4MinHeader])
}

// flow is what a policy looks at in a packet: RFC 4301 §4.4.1.1 selectors.
type flow struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	hasPorts     bool // false for non-initial fragments and for protocols without ports
	icmpType     uint8
	icmpCode     uint8
}

// parseFlow reads the selectors of an IPv4 packet whose header was checked.
func parseFlow(p []byte, ihl int) flow {
	f := flow{
		src:   ipv4Addr(p[ipv4Src:]),
		dst:   ipv4Addr(p[ipv4Dst:]),
		proto: p[ipv4Protocol],
	}
	if be.Uint16(p[ipv4FlagsFrag:])&ipv4FragOffset != 0 {
		return f // a non-initial fragment carries no ports (RFC 4301 §7)
	}
	l4 := p[ihl:]
	switch f.proto {
	case protoTCP, protoUDP, protoSCTP:
		if len(l4) >= 4 {
			f.sport, f.dport, f.hasPorts = be.Uint16(l4), be.Uint16(l4[2:]), true
		}
	case protoICMP:
		if len(l4) >= 2 {
			f.icmpType, f.icmpCode = l4[0], l4[1]
		}
	}
	return f
}

var protoNames = map[uint8]string{protoICMP: "ICMP", protoIPv4: "IPIP", protoTCP: "TCP", protoUDP: "UDP", 50: "ESP", 51: "AH", protoSCTP: "SCTP", protoIPv6: "IPv6"}

func protoName(p uint8) string {
	if s, ok := protoNames[p]; ok {
		return s
	}
	return fmt.Sprintf("proto %d", p)
}

// describeIPv4 renders a packet as one line for an event, the way a capture tool
// would: "ICMP 10.1.0.10 → 10.2.0.10 echo request". Only used for the first few
// packets of an SA and for drops, never on the steady-state path.
func describeIPv4(p []byte) string {
	ihl, total, err := ipv4Header(p)
	if err != nil {
		return fmt.Sprintf("%d bytes (%v)", len(p), err)
	}
	f := parseFlow(p[:total], ihl)
	s := fmt.Sprintf("%s %s → %s", protoName(f.proto), f.src, f.dst)
	switch {
	case f.proto == protoICMP && f.icmpType == 8:
		s += " echo request"
	case f.proto == protoICMP && f.icmpType == 0:
		s += " echo reply"
	case f.proto == protoICMP:
		s += fmt.Sprintf(" type %d code %d", f.icmpType, f.icmpCode)
	case f.hasPorts:
		s = fmt.Sprintf("%s %s:%d → %s:%d", protoName(f.proto), f.src, f.sport, f.dst, f.dport)
	}
	return fmt.Sprintf("%s (%d bytes)", s, total)
}
