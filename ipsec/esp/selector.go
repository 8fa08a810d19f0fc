package esp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TrafficSelector is one side of an SA's or policy's selectors (RFC 4301
// §4.4.1.1): an address prefix, optionally narrowed to an IP protocol and a
// port. IKEv1 identities carry one port, not a range (RFC 2407 §4.6.2), so one
// port it is; zero means any.
type TrafficSelector struct {
	Prefix   netip.Prefix
	Protocol uint8  // 0: any
	Port     uint16 // 0: any; only with TCP, UDP or SCTP
}

// HostSelector is the selector of one address.
func HostSelector(a netip.Addr) TrafficSelector {
	return TrafficSelector{Prefix: netip.PrefixFrom(a, a.BitLen())}
}

// String uses strongSwan's notation: "10.1.0.0/24", "10.1.0.0/24[tcp/80]".
func (ts TrafficSelector) String() string {
	s := ts.Prefix.String()
	switch {
	case ts.Protocol != 0 && ts.Port != 0:
		s += fmt.Sprintf("[%s/%d]", strings.ToLower(protoName(ts.Protocol)), ts.Port)
	case ts.Protocol != 0:
		s += fmt.Sprintf("[%s]", strings.ToLower(protoName(ts.Protocol)))
	}
	return s
}

var selectorProtocols = map[string]uint8{"icmp": protoICMP, "tcp": protoTCP, "udp": protoUDP, "sctp": protoSCTP}

// ParseTrafficSelector reads strongSwan's notation: an address or prefix,
// optionally followed by "[proto]" or "[proto/port]".
func ParseTrafficSelector(s string) (TrafficSelector, error) {
	var ts TrafficSelector
	addr, rest, hasProto := strings.Cut(s, "[")
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, fmt.Errorf("traffic selector %q: %w", s, err)
		}
		ts.Prefix = p.Masked()
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return ts, fmt.Errorf("traffic selector %q: %w", s, err)
		}
		ts = HostSelector(a)
	}
	if !hasProto {
		return ts, nil
	}
	inner, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return ts, fmt.Errorf("traffic selector %q: missing ]", s)
	}
	proto, port, hasPort := strings.Cut(inner, "/")
	if p, ok := selectorProtocols[strings.ToLower(proto)]; ok {
		ts.Protocol = p
	} else if n, err := strconv.ParseUint(proto, 10, 8); err == nil {
		ts.Protocol = uint8(n)
	} else {
		return ts, fmt.Errorf("traffic selector %q: unknown protocol %q", s, proto)
	}
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return ts, fmt.Errorf("traffic selector %q: bad port %q", s, port)
		}
		ts.Port = uint16(n)
	}
	return ts, nil
}

// matches reports whether an address, with the packet's protocol and the port
// on this selector's side, falls inside the selector.
func (ts TrafficSelector) matches(a netip.Addr, f *flow, port uint16) bool {
	if !ts.Prefix.Contains(a) {
		return false
	}
	if ts.Protocol != 0 && ts.Protocol != f.proto {
		return false
	}
	if ts.Port != 0 && (!f.hasPorts || ts.Port != port) {
		return false
	}
	return true
}

// specificity orders policies: longer prefixes, then protocol and port, first.
func (ts TrafficSelector) specificity() int {
	s := ts.Prefix.Bits() * 4
	if ts.Protocol != 0 {
		s += 2
	}
	if ts.Port != 0 {
		s++
	}
	return s
}
