package esp

import (
	"bytes"
	"net/netip"
	"os"
	"sync"
	"testing"
)

// ipv4Packet builds an IPv4 packet with a valid header checksum.
func ipv4Packet(src, dst string, proto byte, l4 []byte) []byte {
	p := make([]byte, 20+len(l4))
	writeIPv4Header(p, len(p), 0, true, 0x1234, proto, netip.MustParseAddr(src), netip.MustParseAddr(dst))
	copy(p[20:], l4)
	return p
}

// icmpEcho is an ICMP echo request whose payload carries n, for numbered streams.
func icmpEcho(src, dst string, n uint32, size int) []byte {
	l4 := make([]byte, 8+size)
	l4[0] = 8
	be.PutUint32(l4[4:], n)
	for i := 8; i < len(l4); i++ {
		l4[i] = byte(i)
	}
	be.PutUint16(l4[2:], ^onesSum(l4, 0))
	return ipv4Packet(src, dst, protoICMP, l4)
}

// chanDevice is a TUN device made of channels: the test writes packets to in
// for the data plane to read, and reads what the data plane wrote from out.
type chanDevice struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
}

func newChanDevice() *chanDevice {
	return &chanDevice{in: make(chan []byte, 1024), out: make(chan []byte, 4096), closed: make(chan struct{})}
}

func (c *chanDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case p := <-c.in:
		sizes[0] = copy(bufs[0][offset:], p)
		n := 1
		for n < len(bufs) {
			select {
			case p := <-c.in:
				sizes[n] = copy(bufs[n][offset:], p)
				n++
				continue
			default:
			}
			break
		}
		return n, nil
	case <-c.closed:
		return 0, os.ErrClosed
	}
}

func (c *chanDevice) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		select {
		case c.out <- bytes.Clone(b[offset:]):
		case <-c.closed:
			return 0, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (c *chanDevice) BatchSize() int { return 16 }
func (c *chanDevice) Close() error   { c.once.Do(func() { close(c.closed) }); return nil }

// memNet is one end of an in-memory wire between two data planes. Packets
// pass through intercept (when set) on their way, so tests can drop, reorder
// or tamper with them.
type memNet struct {
	local     netip.Addr
	peer      *memNet
	ip, udp   chan datagram
	closed    chan struct{}
	once      sync.Once
	intercept func(d datagram) []datagram
	mu        sync.Mutex
	sent      int
	udpDsts   []netip.AddrPort // where each UDP datagram was sent
}

type datagram struct {
	data []byte
	src  netip.AddrPort
	udp  bool
}

func newMemWire(a, b string) (*memNet, *memNet) {
	na := &memNet{local: netip.MustParseAddr(a), ip: make(chan datagram, 4096), udp: make(chan datagram, 4096), closed: make(chan struct{})}
	nb := &memNet{local: netip.MustParseAddr(b), ip: make(chan datagram, 4096), udp: make(chan datagram, 4096), closed: make(chan struct{})}
	na.peer, nb.peer = nb, na
	return na, nb
}

func (m *memNet) deliver(d datagram) {
	out := []datagram{d}
	m.mu.Lock()
	m.sent++
	if m.intercept != nil {
		out = m.intercept(d)
	}
	m.mu.Unlock()
	for _, d := range out {
		ch := m.peer.ip
		if d.udp {
			ch = m.peer.udp
		}
		select {
		case ch <- d:
		case <-m.peer.closed:
		}
	}
}

func (m *memNet) SendIP(pkts [][]byte) error {
	for _, p := range pkts {
		m.deliver(datagram{data: bytes.Clone(p)})
	}
	return nil
}

func (m *memNet) SendUDP(pkts [][]byte, dsts []netip.AddrPort) error {
	m.mu.Lock()
	m.udpDsts = append(m.udpDsts, dsts...)
	m.mu.Unlock()
	for _, p := range pkts {
		m.deliver(datagram{data: bytes.Clone(p), src: netip.AddrPortFrom(m.local, 4500), udp: true})
	}
	return nil
}

func (m *memNet) receiver(ch chan datagram, udp bool) Receiver {
	return Receiver{UDP: udp, Receive: func(pkts [][]byte, srcs []netip.AddrPort) (int, error) {
		select {
		case d := <-ch:
			pkts[0], srcs[0] = d.data, d.src
			return 1, nil
		case <-m.closed:
			return 0, os.ErrClosed
		}
	}}
}

func (m *memNet) Receivers() []Receiver {
	return []Receiver{m.receiver(m.ip, false), m.receiver(m.udp, true)}
}

// udpDestinations returns where the UDP datagrams sent so far went.
func (m *memNet) udpDestinations() []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]netip.AddrPort(nil), m.udpDsts...)
}

func (m *memNet) Close() error { m.once.Do(func() { close(m.closed) }); return nil }

// saPair returns matching outbound and inbound configurations for traffic from
// gateway a (10.1.0.0/24 behind it) to gateway b (10.2.0.0/24).
func saPair(t testing.TB, proto Protocol, mode Mode, enc EncAlg, integ IntegAlg, encap bool, spi uint32) (out, in SAConfig) {
	t.Helper()
	key := func(n int, seed byte) []byte {
		if n <= 0 {
			return nil
		}
		k := make([]byte, n)
		for i := range k {
			k[i] = seed + byte(i)
		}
		return k
	}
	c := SAConfig{
		Conn: "a-b", SPI: spi, Protocol: proto, Mode: mode,
		Enc: enc, EncKey: key(enc.KeySize(), 1), Salt: key(enc.SaltSize(), 100),
		Integ: integ, IntegKey: key(integ.KeySize(), 50),
		Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"),
		LocalTS:  mustTS(t, "10.1.0.0/24"),
		RemoteTS: mustTS(t, "10.2.0.0/24"),
	}
	if proto == ProtoAH {
		c.Enc, c.EncKey, c.Salt = 0, nil, nil
	}
	if mode == Transport {
		c.LocalTS, c.RemoteTS = TrafficSelector{}, TrafficSelector{}
	}
	if encap {
		c.Encap = &UDPEncap{LocalPort: 4500, RemotePort: 4500}
	}
	out, in = c, c
	out.Dir = Outbound
	in.Dir = Inbound
	in.Local, in.Remote = c.Remote, c.Local
	in.LocalTS, in.RemoteTS = c.RemoteTS, c.LocalTS
	return out, in
}

func mustTS(t testing.TB, s string) TrafficSelector {
	t.Helper()
	ts, err := ParseTrafficSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
