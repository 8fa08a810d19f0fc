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

// Network is the outer side: the sockets of a node's namespace.
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

// Headroom and Tailroom are the bytes a buffer holding an inner packet needs in
// front of and behind it, so that encapsulation happens in place: an outer IPv4
// header, UDP header, ESP header and IV in front (with room for a virtio-net
// header), and the worst-case padding, trailer and ICV behind.
const (
	Headroom = 96
	Tailroom = 64
)
