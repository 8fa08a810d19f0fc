package esp

import (
	"errors"
	"net/netip"

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/csum"
)

// NATTPort is the UDP port 4500 as IKE sees it (RFC 3948). The data plane owns
// the one socket, because ESP arrives on it too after NAT traversal was
// negotiated; IKE sends and receives its messages through this interface.
// Unit tests of IKE can fake it.
type NATTPort interface {
	// SendIKE sends an IKE message to dst from port 4500, with the 4-byte
	// non-ESP marker in front of it (RFC 3948 §2.2).
	SendIKE(dst netip.AddrPort, msg []byte) error
	// SendKeepalive sends a NAT-keepalive, the single byte 0xFF (RFC 3948 §2.3).
	SendKeepalive(dst netip.AddrPort) error
	// HandleIKE registers the receiver of IKE messages that arrive on the
	// port, marker stripped. h runs on the receive goroutine, so it must hand
	// the message off rather than process it; msg is the handler's to keep.
	HandleIKE(h func(src netip.AddrPort, msg []byte))
}

var _ NATTPort = (*DataPlane)(nil)

// nonESPMarker precedes IKE messages on the NAT-T port: where ESP would have
// its SPI, which is never zero.
var nonESPMarker = [4]byte{}

type nattKind uint8

const (
	nattESP nattKind = iota
	nattIKE
	nattKeepalive
	nattMalformed
)

// classifyNATT demultiplexes a UDP payload received on port 4500 (RFC 3948 §2).
func classifyNATT(p []byte) nattKind {
	switch {
	case len(p) == 1 && p[0] == 0xff:
		return nattKeepalive
	case len(p) >= 4 && p[0]|p[1]|p[2]|p[3] == 0:
		return nattIKE
	case len(p) < espHeaderLen:
		return nattMalformed
	}
	return nattESP
}

func (d *DataPlane) deliverIKE(src netip.AddrPort, msg []byte) {
	h := d.ike.Load()
	if h == nil {
		d.st.ikeDropped.Add(1)
		return
	}
	d.st.ikeReceived.Add(1)
	(*h)(src, append([]byte(nil), msg...))
}

// HandleIKE implements NATTPort.
func (d *DataPlane) HandleIKE(h func(src netip.AddrPort, msg []byte)) {
	if h == nil {
		d.ike.Store(nil)
		return
	}
	d.ike.Store(&h)
}

var errNoNetwork = errors.New("the data plane has no network attached")

// SendIKE implements NATTPort.
func (d *DataPlane) SendIKE(dst netip.AddrPort, msg []byte) error {
	if d.net == nil {
		return errNoNetwork
	}
	b := make([]byte, len(nonESPMarker)+len(msg))
	copy(b[len(nonESPMarker):], msg)
	return d.net.SendUDP([][]byte{b}, []netip.AddrPort{dst})
}

// SendKeepalive implements NATTPort.
func (d *DataPlane) SendKeepalive(dst netip.AddrPort) error {
	if d.net == nil {
		return errNoNetwork
	}
	return d.net.SendUDP([][]byte{{0xff}}, []netip.AddrPort{dst})
}

// fixTransportChecksum makes the TCP or UDP checksum of a transport-mode
// packet that arrived UDP-encapsulated right for the IP header it has now
// (RFC 3948 §3.1.2, the second of its three choices: recompute the field).
// The sender computed the checksum over the addresses as it sees them; with
// a NAT between the peers, at least one of them differs from the header that
// decapsulation rebuilt from the SA's endpoints, and the receiving stack would
// drop every segment. ESP has authenticated the payload, so recomputing hides
// no corruption. The first choice, an incremental update from the NAT-OA
// payloads, gives the same result when both peers report their addresses
// correctly, and relies on it.
// The header, rebuilt, is never a fragment's.
func fixTransportChecksum(pkt []byte, ihl int) {
	proto := pkt[ipv4Protocol]
	var field int
	switch {
	case proto == protoTCP && len(pkt) >= ihl+20:
		field = ihl + 16
	case proto == protoUDP && len(pkt) >= ihl+8 && be.Uint16(pkt[ihl+6:]) != 0:
		field = ihl + 6 // zero would mean the sender sent none: leave it so
	default:
		return
	}
	pkt[field], pkt[field+1] = 0, 0
	sum := csum.Bytes(pkt[ihl:]).Add(csum.PseudoHeaderIPv4(pkt[ipv4Src:ipv4Src+4], pkt[ipv4Dst:ipv4Dst+4], proto, len(pkt)-ihl))
	c := ^sum.Fold()
	if c == 0 && proto == protoUDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	be.PutUint16(pkt[field:], c)
}
