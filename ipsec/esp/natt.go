package esp

import (
	"errors"
	"net/netip"
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
