package web

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/events"
)

// decodeESP builds the tree of an ESP or AH packet from what its
// esp-packet event carries: the outer IPv4 header (from the wire, or from
// the SA's addresses when the UDP socket wrote it), UDP when the SA is
// encapsulated, the ESP header with its IV and ICV (or AH's header), and
// the inner packet decrypted with its transport header.
func decodeESP(e *events.Event) ([]*Layer, string) {
	pk := e.Packet
	sa := e.SA
	if sa == nil {
		sa = &events.SAInfo{}
	}
	kind := "esp"
	if sa.Type == "ah" || strings.HasPrefix(pk.Outer, "AH") || strings.Contains(pk.Outer, " AH ") {
		kind = "ah"
	}
	inbound := sa.SPIIn != ""
	src, dst := sa.Local, sa.Remote
	if inbound {
		src, dst = dst, src
	}
	var layers []*Layer
	wire := pk.Wire
	if !sa.Encap && len(wire) >= 20 && wire[0]>>4 == 4 {
		ihl := int(wire[0]&0x0f) * 4
		l, _ := ipv4Layer("IPv4 (outer)", wire)
		layers = append(layers, l)
		if ihl <= len(wire) {
			wire = wire[ihl:]
		} else {
			wire = nil
		}
	} else {
		l := newLayer("IPv4 (outer)")
		l.add("Source", "%s", src)
		l.add("Destination", "%s", dst)
		if sa.Encap {
			l.add("Protocol", "UDP (17)")
		} else {
			l.add("Protocol", "%s", strings.ToUpper(kind))
		}
		layers = append(layers, l)
	}
	if sa.Encap {
		u := newLayer("UDP (encapsulation, RFC 3948)")
		sp, dp := encapPorts(pk.Outer)
		u.add("Source port", "%s", sp)
		u.add("Destination port", "%s", dp)
		u.add("Why", "ESP in UDP passes NAT boxes, which cannot map ESP: they have no ports to rewrite")
		layers = append(layers, u)
	}
	icvLen := cmp.Or(pk.ICVLen, len(pk.ICV))
	if kind == "ah" {
		l := newLayer("AH (RFC 4302)")
		if len(wire) >= 12 {
			l.add("Next header", "%s", ipProto(wire[0]))
			l.add("Payload length", "%d (%d bytes)", wire[1], (int(wire[1])+2)*4)
			l.add("SPI", "0x%08x", binary.BigEndian.Uint32(wire[4:]))
			l.add("Sequence number", "%d", binary.BigEndian.Uint32(wire[8:]))
			l.add("ICV", "%s", hexOf(wire[12:]))
		} else {
			l.add("SPI", "0x%s", pk.SPI)
			l.add("Sequence number", "%d", pk.Seq)
		}
		l.add("Protects", "the whole packet, outer IP header's fixed fields included; nothing is encrypted")
		layers = append(layers, l)
	} else {
		l := newLayer("ESP (RFC 4303)")
		if len(wire) >= 8 {
			l.add("SPI", "0x%08x", binary.BigEndian.Uint32(wire))
			l.add("Sequence number", "%d", binary.BigEndian.Uint32(wire[4:]))
			if len(wire) > 8 {
				l.add("IV", "%s", hexOf(wire[8:]))
			} else {
				l.add("IV", "(none: %s)", sa.Proposal)
			}
		} else {
			l.add("SPI", "0x%s", pk.SPI)
			l.add("Sequence number", "%d", pk.Seq)
		}
		if pk.Len > 0 {
			l.add("Encrypted payload", "%d bytes, with padding, pad length and next header", max(0, pk.Len-len(pk.Wire)-icvLen))
		}
		switch {
		case len(pk.ICV) > 0:
			l.add("ICV", "%s", hexOf(pk.ICV))
		case icvLen > 0:
			l.add("ICV", "%d bytes (computed as the packet left)", icvLen)
		}
		if sa.Proposal != "" {
			l.add("Algorithms", "%s", sa.Proposal)
		}
		layers = append(layers, l)
	}
	if len(pk.Plain) > 0 {
		title := "IPv4 (inner, decrypted)"
		if kind == "ah" {
			title = "IPv4 (inner)"
		}
		if sa.Mode == "transport" {
			title = "Payload (transport mode, decrypted)"
			if kind == "ah" {
				title = "Payload (transport mode)"
			}
		}
		l, transport := ipv4Layer(title, pk.Plain)
		layers = append(layers, l)
		if transport != nil {
			layers = append(layers, transport)
		}
	}
	return layers, kind
}

// espTitle is "ESP SPI c0ffee01 seq 1 (inbound)".
func espTitle(e *events.Event, kind string) string {
	dir := "outbound"
	if e.SA != nil && e.SA.SPIIn != "" {
		dir = "inbound"
	}
	return fmt.Sprintf("%s SPI %s seq %d (%s)", strings.ToUpper(kind), e.Packet.SPI, e.Packet.Seq, dir)
}

// encapPorts reads "UDP 4500/4500 ESP ..." (local/peer) from a packet's
// outer description.
func encapPorts(outer string) (string, string) {
	var a, b int
	if _, err := fmt.Sscanf(outer, "UDP %d/%d", &a, &b); err == nil {
		return fmt.Sprint(a), fmt.Sprint(b)
	}
	return "4500", "4500"
}

// ipProto names an IP protocol number, in an IP header or ESP's next
// header, and in an ID payload, where 0 is the wildcard.
func ipProto(p byte) string {
	switch p {
	case 0:
		return "any (0)"
	case 1:
		return "ICMP (1)"
	case 4:
		return "IPv4 (4)"
	case 6:
		return "TCP (6)"
	case 17:
		return "UDP (17)"
	case 50:
		return "ESP (50)"
	case 51:
		return "AH (51)"
	}
	return fmt.Sprint(p)
}

// ipv4Layer decodes an IPv4 header, and the ICMP, UDP or TCP header after
// it when the bytes hold it.
func ipv4Layer(title string, b []byte) (*Layer, *Layer) {
	l := newLayer(title)
	if len(b) < 20 || b[0]>>4 != 4 {
		l.add("Bytes", "%s", hexOf(b))
		return l, nil
	}
	ihl := int(b[0]&0x0f) * 4
	l.add("Version", "4")
	l.add("Header length", "%d bytes", ihl)
	l.add("DSCP/ECN", "0x%02x", b[1])
	l.add("Total length", "%d", binary.BigEndian.Uint16(b[2:]))
	l.add("Identification", "0x%04x", binary.BigEndian.Uint16(b[4:]))
	ff := binary.BigEndian.Uint16(b[6:])
	var flags []string
	if ff&0x4000 != 0 {
		flags = append(flags, "DF")
	}
	if ff&0x2000 != 0 {
		flags = append(flags, "MF")
	}
	l.add("Flags", "%s", strings.Join(append(flags, ""), " ")+fmt.Sprintf("offset %d", ff&0x1fff*8))
	l.add("TTL", "%d", b[8])
	l.add("Protocol", "%s", ipProto(b[9]))
	l.add("Checksum", "0x%04x", binary.BigEndian.Uint16(b[10:]))
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	l.add("Source", "%s", src)
	l.add("Destination", "%s", dst)
	if ihl < 20 || ihl > len(b) || ff&0x1fff != 0 {
		return l, nil
	}
	p := b[ihl:]
	switch b[9] {
	case 1:
		if len(p) < 4 {
			return l, nil
		}
		t := newLayer("ICMP")
		t.add("Type", "%s", icmpType(p[0]))
		t.add("Code", "%d", p[1])
		t.add("Checksum", "0x%04x", binary.BigEndian.Uint16(p[2:]))
		if (p[0] == 0 || p[0] == 8) && len(p) >= 8 {
			t.add("Identifier", "%d", binary.BigEndian.Uint16(p[4:]))
			t.add("Sequence number", "%d", binary.BigEndian.Uint16(p[6:]))
		}
		return l, t
	case 17:
		if len(p) < 8 {
			return l, nil
		}
		t := newLayer("UDP")
		t.add("Source port", "%d", binary.BigEndian.Uint16(p))
		t.add("Destination port", "%d", binary.BigEndian.Uint16(p[2:]))
		t.add("Length", "%d", binary.BigEndian.Uint16(p[4:]))
		t.add("Checksum", "0x%04x", binary.BigEndian.Uint16(p[6:]))
		return l, t
	case 6:
		if len(p) < 20 {
			return l, nil
		}
		t := newLayer("TCP")
		t.add("Source port", "%d", binary.BigEndian.Uint16(p))
		t.add("Destination port", "%d", binary.BigEndian.Uint16(p[2:]))
		t.add("Sequence number", "%d", binary.BigEndian.Uint32(p[4:]))
		t.add("Acknowledgment number", "%d", binary.BigEndian.Uint32(p[8:]))
		t.add("Header length", "%d bytes", int(p[12]>>4)*4)
		t.add("Flags", "%s", tcpFlags(p[13]))
		t.add("Window", "%d", binary.BigEndian.Uint16(p[14:]))
		return l, t
	}
	return l, nil
}

func icmpType(t byte) string {
	switch t {
	case 0:
		return "0 (echo reply)"
	case 3:
		return "3 (destination unreachable)"
	case 8:
		return "8 (echo request)"
	case 11:
		return "11 (time exceeded)"
	}
	return fmt.Sprint(t)
}

func tcpFlags(f byte) string {
	var out []string
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"} {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
