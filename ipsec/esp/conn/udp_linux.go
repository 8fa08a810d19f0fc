package conn

import (
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/bufpool"
)

// udpPort is the NAT-T socket with UDP segmentation offload both ways, the
// way wireguard-go's conn package drives its socket:
//
//   - Sending (UDP_SEGMENT): a run of ESP packets to the same peer, all the
//     same size but the last, leaves in one sendmsg as one 64 KiB super-packet;
//     it crosses the kernel and a veth as one buffer.
//   - Receiving (UDP_GRO): such a super-packet arrives whole, with the segment
//     size in a control message, and is cut back into packets here.
//
// Without it, every ESP packet costs a trip through the IP stack on both
// gateways, which is most of the data plane's time.
type udpPort struct {
	s *socket

	// receive side: one goroutine
	rx       *msgBatch
	rxCtrl   [][]byte
	slab     *[]byte      // groMessages buffers of groBufferSize, borrowed while datagrams are there
	pending  []udpSegment // segments received but not yet handed out
	nextPend int

	// send side: a message carries a run of segments, one iovec each
	txMu   sync.Mutex
	txHdrs []mmsghdr
	txIovs []unix.Iovec
	txName []unix.RawSockaddrInet4
	txCtrl [][]byte
}

type udpSegment struct {
	data []byte
	src  netip.AddrPort
	// end is the index in pending past the last segment of the datagram
	// this one was cut from; first marks the datagram's first segment.
	end   int
	first bool
}

const (
	groMessages    = 8         // super-packets per recvmmsg
	groBufferSize  = 1<<16 + 1 // the largest coalesced datagram, plus one to detect truncation
	gsoMaxSegments = 64        // UDP_MAX_SEGMENTS on older kernels
	gsoMaxBytes    = 65000     // a UDP payload must stay under 65507 bytes
	udpSendMsgs    = 64
	// udpReceiveBatch holds two whole datagrams coalesced from as many
	// segments as a sender may put in one (UDP_MAX_SEGMENTS).
	udpReceiveBatch = 2 * gsoMaxSegments
)

var cmsgSegmentSpace = unix.CmsgSpace(2)

func openUDP(port uint16, mark int) (*udpPort, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("UDP socket: %w", err)
	}
	fail := func(what string, err error) (*udpPort, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("UDP port %d: %s: %w", port, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
		return fail("SO_MARK", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1); err != nil {
		return fail("UDP_GRO", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)}); err != nil {
		return fail("bind", err)
	}
	setBuffers(fd)
	s, err := newSocket(fd, fmt.Sprintf("udp-%d", port))
	if err != nil {
		return nil, err
	}
	u := &udpPort{s: s, rx: newMsgBatch(groMessages)}
	for i := range groMessages {
		u.rxCtrl = append(u.rxCtrl, make([]byte, 64))
		u.rx.hdrs[i].hdr.Control = &u.rxCtrl[i][0]
	}
	u.txHdrs = make([]mmsghdr, udpSendMsgs)
	u.txName = make([]unix.RawSockaddrInet4, udpSendMsgs)
	for range udpSendMsgs {
		u.txCtrl = append(u.txCtrl, make([]byte, cmsgSegmentSpace))
	}
	return u, nil
}

// segmentSize reads the UDP_GRO control message: the size of the segments a
// coalesced datagram is made of, or 0 if it was not coalesced.
func segmentSize(ctrl []byte) int {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(ctrl) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && int(h.Len) >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)])))
		}
		ctrl = ctrl[unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)):]
	}
	return 0
}

// receive hands out datagrams, cutting coalesced ones apart: pkts[i] is a
// segment where it lies in the receive buffer. A call hands out whole
// coalesced datagrams only, unless one alone has more segments than pkts:
// their segments are consecutive packets of a flow (the peer's sender made
// them from one TCP super-packet), and a batch that ends in the middle of them
// would make the TUN's GRO write two partial super-packets instead of one.
func (u *udpPort) receive(pkts [][]byte, srcs []netip.AddrPort) (int, error) {
	if u.nextPend == len(u.pending) {
		if err := u.fill(); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(pkts) && u.nextPend < len(u.pending) {
		s := u.pending[u.nextPend]
		if n > 0 && s.first && s.end-u.nextPend > len(pkts)-n {
			break // the next datagram does not fit whole: the next call starts with it
		}
		u.nextPend++
		pkts[n], srcs[n] = s.data, s.src
		n++
	}
	return n, nil
}

// udpSlabs lends NAT-T ports their receive buffers: 512 KiB a batch, which
// an idle port does not hold.
var udpSlabs = bufpool.Of(groMessages * groBufferSize)

// fill receives a batch of datagrams into borrowed buffers; every segment of
// the last batch was handed out, and the caller is done with them, so they go
// back when there is nothing to receive, before it waits.
func (u *udpPort) fill() error {
	var n int
	for {
		if u.slab == nil {
			u.slab = udpSlabs.Get()
		}
		for i := range groMessages {
			u.rx.setBuf(i, u.buf(i))
			u.rx.hdrs[i].hdr.SetControllen(len(u.rxCtrl[i]))
		}
		got, wouldBlock, err := u.s.tryRecvmmsg(u.rx.hdrs)
		if err != nil {
			return err
		}
		if !wouldBlock {
			n = got
			break
		}
		udpSlabs.Put(u.slab)
		u.slab = nil
		if err := u.s.waitReadable(); err != nil {
			return err
		}
	}
	u.pending, u.nextPend = u.pending[:0], 0
	for i := range n {
		h := &u.rx.hdrs[i]
		data := u.buf(i)[:h.len]
		if h.hdr.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		src := sockaddrAddrPort(&u.rx.names[i])
		seg := segmentSize(u.rxCtrl[i][:h.hdr.Controllen])
		if seg <= 0 {
			seg = len(data)
		}
		start := len(u.pending)
		for len(data) > 0 {
			k := min(seg, len(data))
			u.pending = append(u.pending, udpSegment{data: data[:k:k], src: src, first: len(u.pending) == start})
			data = data[k:]
		}
		for j := start; j < len(u.pending); j++ {
			u.pending[j].end = len(u.pending)
		}
	}
	return nil
}

func (u *udpPort) buf(i int) []byte {
	return (*u.slab)[i*groBufferSize : (i+1)*groBufferSize : (i+1)*groBufferSize]
}

// send groups consecutive packets to the same destination, of one size but
// the last, into GSO super-packets.
func (u *udpPort) send(pkts [][]byte, dsts []netip.AddrPort) error {
	u.txMu.Lock()
	defer u.txMu.Unlock()
	// One iovec a packet: sized to the largest batch sent so far, not to
	// the most a full set of messages could carry (64 KiB).
	if len(u.txIovs) < len(pkts) {
		u.txIovs = make([]unix.Iovec, len(pkts))
	}
	msgs, iov := 0, 0
	var firstErr error
	flush := func() error {
		refused, err := u.s.sendmmsg(u.txHdrs[:msgs])
		if err != nil {
			return err
		}
		if refused != 0 && firstErr == nil {
			firstErr = refused
		}
		msgs, iov = 0, 0
		return nil
	}
	for i := 0; i < len(pkts); {
		size, total, j := len(pkts[i]), len(pkts[i]), i+1
		for j < len(pkts) && j-i < gsoMaxSegments && dsts[j] == dsts[i] &&
			len(pkts[j-1]) == size && len(pkts[j]) <= size && total+len(pkts[j]) <= gsoMaxBytes {
			total += len(pkts[j])
			j++
		}
		if msgs == len(u.txHdrs) || iov+(j-i) > len(u.txIovs) {
			if err := flush(); err != nil {
				return err
			}
		}
		m := &u.txHdrs[msgs]
		for k := i; k < j; k++ {
			u.txIovs[iov+k-i].Base = &pkts[k][0]
			u.txIovs[iov+k-i].SetLen(len(pkts[k]))
		}
		*m = mmsghdr{}
		m.hdr.Iov = &u.txIovs[iov]
		m.hdr.SetIovlen(j - i)
		putSockaddr(&u.txName[msgs], dsts[i].Addr(), dsts[i].Port())
		m.hdr.Name = (*byte)(unsafe.Pointer(&u.txName[msgs]))
		m.hdr.Namelen = unix.SizeofSockaddrInet4
		if j-i > 1 {
			c := u.txCtrl[msgs]
			h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
			h.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(size)
			m.hdr.Control = &c[0]
			m.hdr.SetControllen(cmsgSegmentSpace)
		}
		iov += j - i
		msgs++
		i = j
	}
	if msgs > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return firstErr
}

func (u *udpPort) close() error { return u.s.close() }
