package sim

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// Host is one node of the network: a stack.Host with its UDP ports, raw IP
// receiver and TUN device.
type Host struct {
	net  *Network
	Name string
	Addr netip.Addr
	nat  *NAT

	udp map[uint16]*socket // guarded by net.mu
	raw *socket            // guarded by net.mu

	tunMu      sync.Mutex
	virtualIPs map[netip.Prefix]bool // lent by Mode Config (SetVirtualIP)
	tun        *TUN
}

func (h *Host) bind(port uint16) (*socket, error) {
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	if h.udp[port] != nil {
		return nil, fmt.Errorf("%w: %s:%d", errInUse, h.Addr, port)
	}
	s := newSocket(h.net.queue)
	h.udp[port] = s
	return s, nil
}

func (h *Host) unbind(port uint16, s *socket) {
	h.net.mu.Lock()
	if h.udp[port] == s {
		delete(h.udp, port)
	}
	h.net.mu.Unlock()
	s.close()
}

// ListenIKE binds a UDP port of the host (the address must be the host's).
func (h *Host) ListenIKE(local netip.AddrPort) (net.PacketConn, error) {
	if local.Addr() != h.Addr {
		return nil, fmt.Errorf("sim: %s has no address %s", h.Name, local.Addr())
	}
	s, err := h.bind(local.Port())
	if err != nil {
		return nil, err
	}
	return &packetConn{h: h, port: local.Port(), s: s}, nil
}

// OpenDataPlane starts an esp data plane on the host: its NAT-T port 4500,
// raw ESP and AH, and a fresh TUN device (see TUN).
func (h *Host) OpenDataPlane(cfg esp.Config) (*esp.DataPlane, error) {
	s, err := h.bind(4500)
	if err != nil {
		return nil, err
	}
	h.net.mu.Lock()
	raw := newSocket(h.net.queue)
	h.raw = raw
	h.net.mu.Unlock()
	tun := newTUN()
	h.tunMu.Lock()
	h.tun = tun
	h.tunMu.Unlock()
	dp := esp.New(cfg)
	dp.Start(tun, &hostNetwork{h: h, natt: s, raw: raw}, nil)
	return dp, nil
}

// TUN returns the TUN device of the data plane opened last.
func (h *Host) TUN() *TUN {
	h.tunMu.Lock()
	defer h.tunMu.Unlock()
	return h.tun
}

// packetConn is a bound UDP port as a net.PacketConn.
type packetConn struct {
	h    *Host
	port uint16
	s    *socket
}

func (c *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	d, err := c.s.receive()
	if err != nil {
		return 0, nil, err
	}
	return copy(b, d.Data), net.UDPAddrFromAddrPort(d.Src), nil
}

func (c *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.s.closed:
		return 0, errClosed
	default:
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("sim: not a UDP address: %v", addr)
	}
	dst := ua.AddrPort()
	c.h.net.send(c.h, Datagram{Src: netip.AddrPortFrom(c.h.Addr, c.port), Dst: netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()), Proto: ProtoUDP, Data: b})
	return len(b), nil
}

func (c *packetConn) Close() error {
	c.h.unbind(c.port, c.s)
	return nil
}

func (c *packetConn) LocalAddr() net.Addr {
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.h.Addr, c.port))
}
func (c *packetConn) SetDeadline(time.Time) error      { return nil }
func (c *packetConn) SetReadDeadline(time.Time) error  { return nil }
func (c *packetConn) SetWriteDeadline(time.Time) error { return nil }

// hostNetwork is the esp.Network of a host: UDP 4500 and raw ESP/AH.
type hostNetwork struct {
	h    *Host
	natt *socket
	raw  *socket
}

func (n *hostNetwork) SendIP(pkts [][]byte) error {
	for _, p := range pkts {
		if len(p) < 20 {
			continue
		}
		dst, _ := netip.AddrFromSlice(p[16:20])
		n.h.net.send(n.h, Datagram{Src: netip.AddrPortFrom(n.h.Addr, 0), Dst: netip.AddrPortFrom(dst, 0), Proto: p[9], Data: p})
	}
	return nil
}

func (n *hostNetwork) SendUDP(pkts [][]byte, dsts []netip.AddrPort) error {
	for i, p := range pkts {
		n.h.net.send(n.h, Datagram{Src: netip.AddrPortFrom(n.h.Addr, 4500), Dst: dsts[i], Proto: ProtoUDP, Data: p})
	}
	return nil
}

func (n *hostNetwork) Receivers() []esp.Receiver {
	recv := func(s *socket, udp bool) esp.Receiver {
		return esp.Receiver{UDP: udp, Batch: 1, Receive: func(pkts [][]byte, srcs []netip.AddrPort) (int, error) {
			d, err := s.receive()
			if err != nil {
				return 0, err
			}
			pkts[0], srcs[0] = d.Data, d.Src // the network delivers a copy of its own
			return 1, nil
		}}
	}
	return []esp.Receiver{recv(n.raw, false), recv(n.natt, true)}
}

func (n *hostNetwork) Close() error {
	n.h.unbind(4500, n.natt)
	n.h.net.mu.Lock()
	if n.h.raw == n.raw {
		n.h.raw = nil
	}
	n.h.net.mu.Unlock()
	n.raw.close()
	return nil
}

// TUN is the inner side of a host's data plane: the test writes the packets
// the host's applications send (Write), and reads those the data plane
// delivers to them (Read).
type TUN struct {
	in, out chan []byte
	closed  chan struct{}
	once    sync.Once
}

func newTUN() *TUN {
	return &TUN{in: make(chan []byte, 1024), out: make(chan []byte, 1024), closed: make(chan struct{})}
}

// Send hands an IPv4 packet to the data plane as if an application on the
// host sent it into the tunnel.
func (t *TUN) Send(pkt []byte) {
	select {
	case t.in <- append([]byte(nil), pkt...):
	case <-t.closed:
	}
}

// Delivered receives the packets the data plane decapsulated for the host.
func (t *TUN) Delivered() <-chan []byte { return t.out }

// Read implements esp.Device.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case p := <-t.in:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	case <-t.closed:
		return 0, os.ErrClosed
	}
}

// Write implements esp.Device. A full queue drops.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		select {
		case t.out <- append([]byte(nil), b[offset:]...):
		case <-t.closed:
			return 0, os.ErrClosed
		default:
		}
	}
	return len(bufs), nil
}

// BatchSize implements esp.Device.
func (t *TUN) BatchSize() int { return 1 }

// Close implements esp.Device.
func (t *TUN) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// UDPPacket builds an IPv4/UDP packet, for a test to send through a tunnel.
func UDPPacket(src, dst netip.AddrPort, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, ProtoUDP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], src.Addr().AsSlice())
	copy(p[16:20], dst.Addr().AsSlice())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], src.Port())
	binary.BigEndian.PutUint16(p[22:], dst.Port())
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// SetVirtualIP records the addresses Mode Config lent the host.
func (h *Host) SetVirtualIP(addr netip.Prefix, add bool) error {
	h.tunMu.Lock()
	defer h.tunMu.Unlock()
	if h.virtualIPs == nil {
		h.virtualIPs = map[netip.Prefix]bool{}
	}
	if add {
		h.virtualIPs[addr] = true
	} else {
		delete(h.virtualIPs, addr)
	}
	return nil
}

// VirtualIPs are the addresses Mode Config lent the host, now.
func (h *Host) VirtualIPs() []netip.Prefix {
	h.tunMu.Lock()
	defer h.tunMu.Unlock()
	var out []netip.Prefix
	for a := range h.virtualIPs {
		out = append(out, a)
	}
	return out
}
