package impair

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// Frame is one Ethernet frame travelling through a direction of a link.
type Frame struct {
	// Data is the frame from the destination MAC address on.
	Data []byte

	vnet      vnet.Hdr  // offload metadata from the TAP device; zero for an ordinary frame
	segs      int       // packets on the wire this frame stands for (a GSO super-frame: several)
	wireBytes int       // their bytes on the wire
	largest   int       // the largest of them, when a super-frame; else 0
	due       time.Time // when the pipeline lets it leave
	seq       uint64    // arrival order, for tests and captures

	buf  []byte     // backing storage: vnet.Len bytes of room for the header, then Data
	pool *sync.Pool // where the frame goes back to, nil when not pooled
}

// Frame buffers come in two sizes: enough for any ordinary frame, and enough
// for a GSO super-frame (64 KiB of IP packet plus the link-layer header). A
// frame held for a delay is copied to a small buffer when it fits, so that a
// thousand delayed pings do not pin a thousand 64 KiB buffers.
const (
	smallFrame = 2048
	bigFrame   = 65536 + 256
)

var (
	smallPool = sync.Pool{New: func() any { return &Frame{buf: make([]byte, vnet.Len+smallFrame)} }}
	bigPool   = sync.Pool{New: func() any { return &Frame{buf: make([]byte, vnet.Len+bigFrame)} }}
)

// newFrame returns a pooled frame with room for n bytes of frame data; Data
// has length n.
func newFrame(n int) *Frame {
	pool := &smallPool
	if n > smallFrame {
		pool = &bigPool
	}
	if n > bigFrame {
		buf := make([]byte, vnet.Len+n)
		return &Frame{buf: buf, Data: buf[vnet.Len:]}
	}
	f := pool.Get().(*Frame)
	f.pool = pool
	f.Data = f.buf[vnet.Len : vnet.Len+n]
	return f
}

// copyFrame returns a pooled copy of f with its metadata.
func copyFrame(f *Frame) *Frame {
	g := newFrame(len(f.Data))
	copy(g.Data, f.Data)
	g.vnet, g.segs, g.wireBytes, g.largest, g.due, g.seq = f.vnet, f.segs, f.wireBytes, f.largest, f.due, f.seq
	return g
}

// release returns the frame to its pool. It must not be used afterwards.
func (f *Frame) release() {
	if pool := f.pool; pool != nil {
		*f = Frame{buf: f.buf}
		pool.Put(f)
	}
}

// wire returns how many packets and bytes the frame puts on the wire.
func (f *Frame) wire() (packets, bytes int) {
	if f.segs == 0 {
		return 1, len(f.Data)
	}
	return f.segs, f.wireBytes
}

// ipPacketLen is the length of the frame's largest IP packet on the wire.
func (f *Frame) ipPacketLen() int {
	n := len(f.Data)
	if f.largest > 0 {
		n = f.largest
	}
	return n - l2HeaderLen(f.Data)
}

// l2HeaderLen is the length of the frame's Ethernet header, with its 802.1Q
// tags: what an MTU does not count.
func l2HeaderLen(frame []byte) int {
	n := 14
	for len(frame) >= n {
		etype := binary.BigEndian.Uint16(frame[n-2 : n])
		if etype != 0x8100 && etype != 0x88a8 {
			return n
		}
		n += 4
	}
	return min(n, len(frame))
}
