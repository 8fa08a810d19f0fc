package conn

import (
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/internal/bufpool"
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

	rx   *msgBatch
	slab *[]byte // rawBatch slots of maxPacket bytes, borrowed while datagrams are there

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

// rawSlabs lends raw sockets their receive slots: 4 MiB a batch, which an
// idle socket does not hold.
var rawSlabs = bufpool.Of(rawBatch * maxPacket)

// receive reads up to len(pkts) whole IPv4 packets into borrowed buffers and
// points pkts[i] at them; a raw socket needs no sources. The buffers go back
// when the next call finds nothing to receive, before it waits.
func (r *rawSocket) receive(pkts [][]byte, _ []netip.AddrPort) (int, error) {
	n := min(len(pkts), rawBatch)
	for {
		if r.slab == nil {
			r.slab = rawSlabs.Get()
		}
		for i := range n {
			r.rx.setBuf(i, r.slot(i))
		}
		got, wouldBlock, err := r.s.tryRecvmmsg(r.rx.hdrs[:n])
		if err != nil {
			return 0, err
		}
		if wouldBlock {
			rawSlabs.Put(r.slab)
			r.slab = nil
			if err := r.s.waitReadable(); err != nil {
				return 0, err
			}
			continue
		}
		for i := range got {
			pkts[i] = r.slot(i)[:r.rx.hdrs[i].len]
		}
		return got, nil
	}
}

func (r *rawSocket) slot(i int) []byte {
	return (*r.slab)[i*maxPacket : (i+1)*maxPacket : (i+1)*maxPacket]
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
