package conn

import (
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// IPv4 header offsets (RFC 791 §3.1) that sending looks at.
const (
	ipv4Protocol = 9
	ipv4Dst      = 16
)

// maxPacket is the largest IPv4 packet, and so a raw socket's receive slot.
const maxPacket = 65535

// rawBatch is the most packets a raw socket receives or sends per syscall.
const rawBatch = 64

// rawSocket is a raw IPv4 socket of one IPsec protocol, ESP or AH, with
// IP_HDRINCL: the data plane writes the outer header itself, because AH's
// ICV covers it.
type rawSocket struct {
	s *socket

	rx     *msgBatch
	rxBufs [][]byte // made on the first receive: a socket that only sends needs none

	txMu sync.Mutex
	tx   *msgBatch
}

func openRaw(proto esp.Protocol, mark int) (*rawSocket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("raw %s socket: %w", proto, err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw %s socket: IP_HDRINCL: %w", proto, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw %s socket: SO_MARK: %w", proto, err)
	}
	setBuffers(fd)
	s, err := newSocket(fd, "raw-"+proto.String())
	if err != nil {
		return nil, err
	}
	return &rawSocket{s: s, rx: newMsgBatch(rawBatch), tx: newMsgBatch(rawBatch)}, nil
}

// receive reads up to len(pkts) whole IPv4 packets into the socket's
// buffers and points pkts[i] at them; a raw socket needs no sources.
func (r *rawSocket) receive(pkts [][]byte, _ []netip.AddrPort) (int, error) {
	if r.rxBufs == nil {
		r.rxBufs = make([][]byte, rawBatch)
		for i := range r.rxBufs {
			r.rxBufs[i] = make([]byte, maxPacket)
		}
	}
	n := min(len(pkts), rawBatch)
	for i := range n {
		r.rx.setBuf(i, r.rxBufs[i])
	}
	n, err := r.s.recvmmsg(r.rx.hdrs[:n])
	if err != nil {
		return 0, err
	}
	for i := range n {
		pkts[i] = r.rxBufs[i][:r.rx.hdrs[i].len]
	}
	return n, nil
}

// send writes whole IPv4 packets, each to the destination in its header.
func (r *rawSocket) send(pkts [][]byte) error {
	r.txMu.Lock()
	defer r.txMu.Unlock()
	var firstErr error
	for len(pkts) > 0 {
		n := min(len(pkts), rawBatch)
		for i := range n {
			r.tx.setBuf(i, pkts[i])
			putSockaddr(&r.tx.names[i], netip.AddrFrom4([4]byte(pkts[i][ipv4Dst:ipv4Dst+4])), 0)
		}
		refused, err := r.s.sendmmsg(r.tx.hdrs[:n])
		if err != nil {
			return err
		}
		if refused != 0 && firstErr == nil {
			firstErr = refused
		}
		pkts = pkts[n:]
	}
	return firstErr
}

func (r *rawSocket) close() error { return r.s.close() }
