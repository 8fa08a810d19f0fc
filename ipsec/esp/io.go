package esp

import "net/netip"

// Device is the inner side of the data plane: a TUN device carrying plain IPv4
// packets in batches, the interface wireguard-go's tun package has: packet i
// is bufs[i][offset:offset+sizes[i]] on Read and bufs[i][offset:] on Write;
// the offset bytes in front are the device's to use (a virtio-net header when
// the TUN does segmentation offload). bufs[0] holds a packet of up to 64 KiB,
// the others one of the path MTU.
type Device interface {
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	Close() error
}

// A TryDevice is a Device that can read without waiting and wait without
// buffers (package tun's): the outbound path then holds its buffers only
// while packets are there, and a lab's idle gateways hold none.
type TryDevice interface {
	// TryRead is Read, but returns wouldBlock at once when there is
	// nothing to read.
	TryRead(bufs [][]byte, sizes []int, offset int) (n int, wouldBlock bool, err error)
	// WaitReadable waits until there is something to read.
	WaitReadable() error
}

// Network is the outer side: the sockets of a node's namespace, ESP and AH
// over IP and ESP in UDP.
type Network interface {
	// SendIP sends whole IPv4 packets carrying ESP or AH, headers as given.
	SendIP(pkts [][]byte) error
	// SendUDP sends datagrams from the NAT-T port, pkts[i] to dsts[i].
	SendUDP(pkts [][]byte, dsts []netip.AddrPort) error
	// Receivers are the receive functions, each run on its own goroutine
	// until it returns an error.
	Receivers() []Receiver
	Close() error
}

// Receiver reads a batch of datagrams and points pkts[i] at the i-th, in
// memory of its own that stays valid, and may be modified, until the next
// call: a segment of a coalesced UDP datagram is handed over where it lies,
// and the data plane decrypts it from there into a buffer of its own. From a
// raw socket (UDP false) a datagram is a whole IPv4 packet; from the NAT-T
// port (UDP true) it is the UDP payload, and srcs[i] is its sender.
type Receiver struct {
	UDP     bool
	Batch   int // the most datagrams one call returns; at least 1
	Receive func(pkts [][]byte, srcs []netip.AddrPort) (n int, err error)
}

// Routes is the kernel's routing as the data plane drives it: each policy's
// remote selector routed into the Device, the route carrying the inner MTU of
// the policy's current outbound SA, and the MTU of the path toward a peer.
// Its methods are called off the packet path.
type Routes interface {
	// AddRoute routes the policy's remote selector into the Device; policies
	// that share a remote prefix share its route.
	AddRoute(p Policy) error
	// DeleteRoute drops the policy's claim on its route.
	DeleteRoute(p Policy) error
	// SetRouteMTU records mtu, the inner MTU of the policy's new outbound
	// SA, and returns the MTU of the policy's route, the smallest of the
	// policies that share it; changed reports whether the route changed.
	SetRouteMTU(p Policy, mtu int) (routeMTU int, changed bool, err error)
	// PathMTU is the MTU of the path toward peer, as the data plane's own
	// packets go there.
	PathMTU(peer netip.Addr) (int, error)
	// MaxPathMTU is the largest path MTU the data plane uses: it sizes its
	// packet buffers for it, and takes a larger path as this size.
	MaxPathMTU() int
	// Close undoes what the routes set up; DataPlane.Close calls it.
	Close() error
}

// Headroom and Tailroom are the bytes a buffer holding an inner packet needs in
// front of and behind it, so that encapsulation happens in place: an outer IPv4
// header, UDP header, ESP header and IV in front (with room for a virtio-net
// header), and the worst-case padding, trailer and ICV behind.
const (
	Headroom = 96
	Tailroom = 64
)

// MaxOverhead is the most any SA adds to an inner packet: outer IPv4 header,
// UDP header, ESP header, a 16-byte IV, 15 bytes of padding, the trailer and a
// 32-byte ICV (HMAC-SHA512-256).
const MaxOverhead = ipv4MinHeader + 8 + espHeaderLen + 16 + 15 + 2 + 32
