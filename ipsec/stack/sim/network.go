// Package sim is a simulated IPv4 network for unit tests of the IPsec stack,
// in the manner of wireguard-go's channel-based fakes: hosts with addresses,
// NAT boxes that rewrite source addresses and ports, UDP sockets and raw IP
// delivery made of channels, a TUN device the test can write inner packets
// to, and a manual clock. A Host is a stack.Host, so a whole ipseclab stack
// (IKE engine and esp data plane) runs on it without root or namespaces.
//
// Delivery is asynchronous and in order per socket; a full socket queue drops
// the datagram, like a full socket buffer. A filter sees every datagram as it
// is sent and may drop or change it: losses, duplicates and corruption in
// tests.
package sim

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Protocol numbers of the datagrams the network carries.
const (
	ProtoUDP = 17
	ProtoESP = 50
	ProtoAH  = 51
)

// DefaultQueue is how many datagrams a socket holds before it drops.
const DefaultQueue = 512

// Datagram is one packet on the simulated wire. For UDP, Data is the UDP
// payload (on port 4500 with the non-ESP marker or the ESP header in front);
// for ESP and AH it is the whole IPv4 packet.
type Datagram struct {
	Src, Dst netip.AddrPort
	Proto    uint8
	Data     []byte
}

// Network connects hosts and NAT boxes.
type Network struct {
	mu     sync.Mutex
	hosts  map[netip.Addr]*Host
	nats   map[netip.Addr]*NAT // by public address
	filter func(*Datagram) bool
	queue  int

	delivered, dropped atomic.Uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{hosts: map[netip.Addr]*Host{}, nats: map[netip.Addr]*NAT{}, queue: DefaultQueue}
}

// SetQueue sets the queue length of sockets bound from now on.
func (n *Network) SetQueue(size int) {
	n.mu.Lock()
	n.queue = size
	n.mu.Unlock()
}

// SetFilter installs f, which sees every datagram as its sender sends it,
// before any NAT: returning false drops it; f may change it in place. Nil
// removes the filter. f runs on the sender's goroutine and must not send.
func (n *Network) SetFilter(f func(d *Datagram) bool) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// Delivered and Dropped count datagrams handed to a socket and lost.
func (n *Network) Delivered() uint64 { return n.delivered.Load() }
func (n *Network) Dropped() uint64   { return n.dropped.Load() }

// AddHost attaches a host with a public address.
func (n *Network) AddHost(name string, addr netip.Addr) *Host {
	return n.addHost(name, addr, nil)
}

func (n *Network) addHost(name string, addr netip.Addr, nat *NAT) *Host {
	h := &Host{net: n, Name: name, Addr: addr, nat: nat, udp: map[uint16]*socket{}}
	n.mu.Lock()
	n.hosts[addr] = h
	n.mu.Unlock()
	return h
}

// Inject sends a datagram from anywhere, as a host with a forged source
// address would.
func (n *Network) Inject(d Datagram) { n.send(nil, d) }

// send carries a datagram from host from (nil: injected) to its destination.
func (n *Network) send(from *Host, d Datagram) {
	d.Data = append([]byte(nil), d.Data...)
	n.mu.Lock()
	if n.filter != nil && !n.filter(&d) {
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	if from != nil && from.nat != nil {
		if d.Proto != ProtoUDP {
			// ESP has no ports for the NAT to map (RFC 3948 §1): the
			// reason NAT traversal exists.
			n.mu.Unlock()
			n.dropped.Add(1)
			return
		}
		d.Src = from.nat.mapOut(d.Src)
	}
	if nat := n.nats[d.Dst.Addr()]; nat != nil {
		private, ok := nat.mapIn(d.Dst)
		if !ok || d.Proto != ProtoUDP {
			n.mu.Unlock()
			n.dropped.Add(1)
			return
		}
		d.Dst = private
	} else if h := n.hosts[d.Dst.Addr()]; h != nil && h.nat != nil && (from == nil || from.nat != h.nat) {
		// A private address is unreachable from outside its NAT.
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	h := n.hosts[d.Dst.Addr()]
	var ch chan Datagram
	if h != nil {
		if d.Proto == ProtoUDP {
			if s := h.udp[d.Dst.Port()]; s != nil {
				ch = s.ch
			}
		} else if h.raw != nil {
			ch = h.raw.ch
		}
	}
	n.mu.Unlock()
	if ch == nil {
		n.dropped.Add(1)
		return
	}
	select {
	case ch <- d:
		n.delivered.Add(1)
	default:
		n.dropped.Add(1)
	}
}

// NAT is a NAT box (network address and port translation): hosts behind it
// reach the network from its public address, each source address and port
// mapped to a port of its own, and only mapped ports can be reached from
// outside.
type NAT struct {
	net    *Network
	Public netip.Addr
	out    map[netip.AddrPort]uint16
	in     map[uint16]netip.AddrPort
	next   uint16
}

// AddNAT attaches a NAT box with a public address.
func (n *Network) AddNAT(public netip.Addr) *NAT {
	nat := &NAT{net: n, Public: public, out: map[netip.AddrPort]uint16{}, in: map[uint16]netip.AddrPort{}, next: 40000}
	n.mu.Lock()
	n.nats[public] = nat
	n.mu.Unlock()
	return nat
}

// AddHost attaches a host with a private address behind the NAT.
func (nat *NAT) AddHost(name string, private netip.Addr) *Host {
	return nat.net.addHost(name, private, nat)
}

// Reset forgets every mapping, as a NAT that rebooted or timed out does: the
// next packets from inside get new ports.
func (nat *NAT) Reset() {
	nat.net.mu.Lock()
	defer nat.net.mu.Unlock()
	nat.out, nat.in = map[netip.AddrPort]uint16{}, map[uint16]netip.AddrPort{}
}

// Mappings returns the current mappings, private to public.
func (nat *NAT) Mappings() map[netip.AddrPort]netip.AddrPort {
	nat.net.mu.Lock()
	defer nat.net.mu.Unlock()
	m := map[netip.AddrPort]netip.AddrPort{}
	for priv, port := range nat.out {
		m[priv] = netip.AddrPortFrom(nat.Public, port)
	}
	return m
}

func (nat *NAT) mapOut(src netip.AddrPort) netip.AddrPort {
	port, ok := nat.out[src]
	if !ok {
		port = nat.next
		nat.next++
		nat.out[src], nat.in[port] = port, src
	}
	return netip.AddrPortFrom(nat.Public, port)
}

func (nat *NAT) mapIn(dst netip.AddrPort) (netip.AddrPort, bool) {
	priv, ok := nat.in[dst.Port()]
	return priv, ok
}

// socket is a bound UDP port, or a host's raw IP receiver.
type socket struct {
	ch     chan Datagram
	closed chan struct{}
	once   sync.Once
}

func newSocket(size int) *socket {
	return &socket{ch: make(chan Datagram, size), closed: make(chan struct{})}
}

func (s *socket) close() { s.once.Do(func() { close(s.closed) }) }

var errClosed = net.ErrClosed

// receive waits for the next datagram.
func (s *socket) receive() (Datagram, error) {
	select {
	case d := <-s.ch:
		return d, nil
	case <-s.closed:
		return Datagram{}, errClosed
	}
}

var errInUse = errors.New("sim: address already in use")
