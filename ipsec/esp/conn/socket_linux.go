package conn

import (
	"net/netip"
	"os"
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

// socket is a non-blocking socket driven by Go's netpoller, read and written
// in batches: one recvmmsg or sendmmsg for many datagrams. Both the raw
// sockets and the NAT-T port go through it. One goroutine receives; the
// owner serialises sends.
type socket struct {
	f  *os.File
	rc syscall.RawConn
	rx mmsgCall
	tx mmsgCall

	// waitReadable: a receiver holds borrowed buffers only while
	// datagrams are there (see bufpool), and waits without them.
	pollFD   [1]unix.PollFd
	asked    bool // isReadable asked the kernel in this wait
	readable func(fd uintptr) bool
}

// mmsgCall is one batched syscall: its messages, its outcome, and the
// function the poller runs, made once so that a call allocates nothing.
type mmsgCall struct {
	hdrs  []mmsghdr
	n     int // datagrams received, or sent so far
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newSocket(fd int, name string) (*socket, error) {
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &socket{f: f, rc: rc}
	s.rx.fn = s.doRecv
	s.tx.fn = s.doSend
	s.readable = s.isReadable
	return s, nil
}

// tryRecvmmsg receives up to len(hdrs) datagrams in one system call if there
// are any, without waiting: wouldBlock says there were none.
func (s *socket) tryRecvmmsg(hdrs []mmsghdr) (n int, wouldBlock bool, err error) {
	s.rx.hdrs = hdrs
	if err := s.rc.Read(s.rx.fn); err != nil {
		return 0, false, err
	}
	switch s.rx.errno {
	case 0:
		return s.rx.n, false, nil
	case unix.EAGAIN:
		return 0, true, nil
	}
	return 0, false, s.rx.errno
}

func (s *socket) doRecv(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rx.hdrs[0])), uintptr(len(s.rx.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EINTR {
			s.rx.n, s.rx.errno = int(r), e
			return true
		}
	}
}

// waitReadable waits in the poller until the socket has something to
// receive (or an error to report).
func (s *socket) waitReadable() error {
	s.asked = false
	return s.rc.Read(s.readable)
}

// isReadable asks the kernel, without waiting, whether the socket is
// readable, once: the poller's own readiness was reset as the wait began,
// and data that arrived before it would otherwise wait for the next
// datagram. Once the poller wakes the wait, it is taken as readable (a rare
// spurious wake costs one receive that finds nothing).
func (s *socket) isReadable(fd uintptr) bool {
	if s.asked {
		return true
	}
	s.asked = true
	s.pollFD[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	n, err := unix.Poll(s.pollFD[:], 0)
	return err == nil && n > 0
}

// sendmmsg sends every message of hdrs, waiting in the poller while the
// socket's buffer is full. A message the kernel refuses (EMSGSIZE, an
// unreachable destination...) is skipped so that the rest still leave:
// refused is the first such error. err is the socket's own failure (closed),
// after which nothing more was sent.
func (s *socket) sendmmsg(hdrs []mmsghdr) (refused syscall.Errno, err error) {
	s.tx.hdrs, s.tx.n, s.tx.errno = hdrs, 0, 0
	if err := s.rc.Write(s.tx.fn); err != nil {
		return 0, err
	}
	return s.tx.errno, nil
}

func (s *socket) doSend(fd uintptr) bool {
	for s.tx.n < len(s.tx.hdrs) {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.tx.hdrs[s.tx.n])), uintptr(len(s.tx.hdrs)-s.tx.n), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
			continue
		case e != 0:
			if s.tx.errno == 0 {
				s.tx.errno = e
			}
			s.tx.n++
			continue
		}
		s.tx.n += int(r)
	}
	return true
}

func (s *socket) close() error { return s.f.Close() }

// msgBatch is a batch of messages of one iovec and one IPv4 address each,
// allocated once so that the data path does not allocate.
type msgBatch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
}

func newMsgBatch(n int) *msgBatch {
	b := &msgBatch{hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet4, n)}
	for i := range b.hdrs {
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	return b
}

// setBuf points message i at buf, and makes room for the sender's address.
func (b *msgBatch) setBuf(i int, buf []byte) {
	b.iovs[i].Base = &buf[0]
	b.iovs[i].SetLen(len(buf))
	b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
}

func putSockaddr(sa *unix.RawSockaddrInet4, a netip.Addr, port uint16) {
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
}

func sockaddrAddrPort(sa *unix.RawSockaddrInet4) netip.AddrPort {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
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
