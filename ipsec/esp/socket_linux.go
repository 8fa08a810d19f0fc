package esp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2) on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// mmsgBatch is the scratch state of one batched syscall: headers, one iovec
// each, and addresses, allocated once so that the data path does not allocate.
type mmsgBatch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	n     int
	sent  int
	errno syscall.Errno
}

func newMmsgBatch(n int) *mmsgBatch {
	b := &mmsgBatch{hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet4, n)}
	for i := range b.hdrs {
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	return b
}

func (b *mmsgBatch) setAddr(i int, a netip.Addr, port uint16) {
	b.names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	p := (*[2]byte)(unsafe.Pointer(&b.names[i].Port))
	p[0], p[1] = byte(port>>8), byte(port)
}

func (b *mmsgBatch) addr(i int) netip.AddrPort {
	p := (*[2]byte)(unsafe.Pointer(&b.names[i].Port))
	return netip.AddrPortFrom(netip.AddrFrom4(b.names[i].Addr), uint16(p[0])<<8|uint16(p[1]))
}

// batchSocket is a non-blocking socket driven by Go's netpoller with batched
// receives and sends. One goroutine receives; sends are serialised.
type batchSocket struct {
	f  *os.File
	rc syscall.RawConn

	rx     *mmsgBatch
	rxBufs [][]byte              // made on the first receive: a socket that only sends needs none
	rxFunc func(fd uintptr) bool // method values made once: no allocation per call

	txMu   sync.Mutex
	tx     *mmsgBatch
	txFunc func(fd uintptr) bool
}

const socketBatch = 64

func newBatchSocket(fd int, name string) (*batchSocket, error) {
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &batchSocket{f: f, rc: rc, rx: newMmsgBatch(socketBatch), tx: newMmsgBatch(socketBatch)}
	s.rxFunc = s.doRecv
	s.txFunc = s.doSend
	return s, nil
}

func (s *batchSocket) doRecv(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rx.hdrs[0])), uintptr(s.rx.n), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.rx.n, s.rx.errno = int(r), e
	return true
}

func (s *batchSocket) doSend(fd uintptr) bool {
	for s.tx.sent < s.tx.n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.tx.hdrs[s.tx.sent])), uintptr(s.tx.n-s.tx.sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
			continue
		case e != 0:
			// One datagram was refused (EMSGSIZE, unreachable...): skip it
			// and send the rest.
			s.tx.errno = e
			s.tx.sent++
			continue
		}
		s.tx.sent += int(r)
	}
	return true
}

// receive reads up to len(pkts) datagrams into the socket's buffers and
// points pkts[i] at them.
func (s *batchSocket) receive(pkts [][]byte, srcs []netip.AddrPort) (int, error) {
	if s.rxBufs == nil {
		s.rxBufs = make([][]byte, len(s.rx.hdrs))
		for i := range s.rxBufs {
			s.rxBufs[i] = make([]byte, maxPacket)
		}
	}
	n := min(len(pkts), len(s.rx.hdrs))
	for i := range n {
		s.rx.iovs[i].Base = &s.rxBufs[i][0]
		s.rx.iovs[i].SetLen(len(s.rxBufs[i]))
		s.rx.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	s.rx.n = n
	if err := s.rc.Read(s.rxFunc); err != nil {
		return 0, err
	}
	if s.rx.errno != 0 {
		return 0, s.rx.errno
	}
	for i := range s.rx.n {
		pkts[i] = s.rxBufs[i][:s.rx.hdrs[i].len]
		if srcs != nil {
			srcs[i] = s.rx.addr(i)
		}
	}
	return s.rx.n, nil
}

// send writes pkts in batches, pkts[i] to dsts[i], or with dsts nil to the
// destination in the packet's own IPv4 header (raw sockets with IP_HDRINCL).
func (s *batchSocket) send(pkts [][]byte, dsts []netip.AddrPort) error {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	var firstErr error
	for len(pkts) > 0 {
		n := min(len(pkts), len(s.tx.hdrs))
		for i := range n {
			s.tx.iovs[i].Base = &pkts[i][0]
			s.tx.iovs[i].SetLen(len(pkts[i]))
			if dsts == nil {
				s.tx.setAddr(i, ipv4Addr(pkts[i][ipv4Dst:]), 0)
			} else {
				s.tx.setAddr(i, dsts[i].Addr(), dsts[i].Port())
			}
		}
		s.tx.n, s.tx.sent, s.tx.errno = n, 0, 0
		if err := s.rc.Write(s.txFunc); err != nil {
			return err
		}
		if s.tx.errno != 0 && firstErr == nil {
			firstErr = s.tx.errno
		}
		pkts = pkts[n:]
		if dsts != nil {
			dsts = dsts[n:]
		}
	}
	return firstErr
}

func (s *batchSocket) close() error { return s.f.Close() }

// rawSocket opens a raw IPv4 socket for an IPsec protocol with IP_HDRINCL: the
// data plane writes the outer header itself, because AH's ICV covers it.
func rawSocket(proto Protocol) (*batchSocket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("raw %s socket: %w", proto, err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw %s socket: IP_HDRINCL: %w", proto, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, BypassMark); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw %s socket: SO_MARK: %w", proto, err)
	}
	setBuffers(fd)
	return newBatchSocket(fd, "raw-"+proto.String())
}

// setBuffers makes the socket buffers large enough to absorb a burst the
// size of a TUN batch (the lab process runs as root, so it may force them).
func setBuffers(fd int) {
	const size = 4 << 20
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
	}
}

// socketNetwork is the Network of a namespace: raw ESP and AH sockets and
// the NAT-T UDP socket.
type socketNetwork struct {
	esp, ah *batchSocket
	udp     *udpPort
}

func (n *socketNetwork) SendIP(pkts [][]byte) error {
	// Each run of one protocol goes through that protocol's socket: the
	// socket's protocol is what policy routing sees (routes_linux.go).
	var errs []error
	for len(pkts) > 0 {
		proto := Protocol(pkts[0][ipv4Protocol])
		j := 1
		for j < len(pkts) && Protocol(pkts[j][ipv4Protocol]) == proto {
			j++
		}
		sock := n.esp
		if proto == ProtoAH {
			sock = n.ah
		}
		if err := sock.send(pkts[:j], nil); err != nil {
			errs = append(errs, err)
		}
		pkts = pkts[j:]
	}
	return errors.Join(errs...)
}

func (n *socketNetwork) SendUDP(pkts [][]byte, dsts []netip.AddrPort) error {
	return n.udp.send(pkts, dsts)
}

func (n *socketNetwork) Receivers() []Receiver {
	raw := func(s *batchSocket) func([][]byte, []netip.AddrPort) (int, error) {
		return func(pkts [][]byte, _ []netip.AddrPort) (int, error) {
			return s.receive(pkts, nil)
		}
	}
	return []Receiver{
		{Batch: socketBatch, Receive: raw(n.esp)},
		{Batch: socketBatch, Receive: raw(n.ah)},
		{UDP: true, Batch: udpReceiveBatch, Receive: n.udp.receive},
	}
}

func (n *socketNetwork) Close() error {
	return errors.Join(n.esp.close(), n.ah.close(), n.udp.close())
}
