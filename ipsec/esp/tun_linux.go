package esp

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// tunDevice is a TUN device, read and written through Go's poller. With
// offload it carries a virtio-net header (IFF_VNET_HDR) and takes TCP/IPv4
// segmentation offload (TSO): see tunoffload.go for the splitting and
// coalescing, which cost one TUN syscall per super-packet instead of one per
// segment.
type tunDevice struct {
	f       io.ReadWriteCloser // the TUN's file; a fake in tests
	offload bool

	rbuf  []byte // a super-packet that did not fit one Read's buffers
	split superPacket
	gro   coalescer
}

// openTUN creates a TUN device in the calling thread's network namespace (run
// it inside namespace.RunHandle).
func openTUN(name string, offload bool) (*tunDevice, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TUN %s: %w", name, err)
	}
	if offload {
		// Checksum offload and TSO for IPv4: IPv6 and UDP the kernel segments
		// itself before the TUN sees them.
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("TUN %s: segmentation offload: %w", name, err)
		}
	}
	// A non-blocking descriptor makes os.File use the poller: a blocked Read
	// returns os.ErrClosed when the device is closed.
	return &tunDevice{f: os.NewFile(uintptr(fd), "/dev/net/tun"), offload: offload}, nil
}

func (t *tunDevice) BatchSize() int {
	if t.offload {
		return maxBatch
	}
	return 1
}

func (t *tunDevice) Close() error { return t.f.Close() }

// Read reads one packet, or the segments of one super-packet, into bufs at
// offset; a super-packet with more segments than bufs is finished by the
// next calls.
func (t *tunDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if !t.offload {
		n, err := t.f.Read(bufs[0][offset:])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		return 1, nil
	}
	if t.split.pending() {
		return t.emit(bufs, sizes, offset), nil
	}
	// Read straight into the first buffer: most packets are not split, and a
	// super-packet's first segment stays where it is.
	b := bufs[0][offset-vnet.Len:]
	n, err := t.f.Read(b)
	if err != nil {
		return 0, err
	}
	if n < vnet.Len {
		return 0, errVnetShort
	}
	var h vnet.Hdr
	h.Decode(b)
	pkt := b[vnet.Len:n]
	if h.GSOType == vnet.GSONone {
		if h.Flags&vnet.NeedsCsum != 0 {
			if err := completeChecksum(pkt, &h); err != nil {
				return 0, err
			}
		}
		sizes[0] = len(pkt)
		return 1, nil
	}
	if err := t.split.load(pkt, &h); err != nil {
		return 0, err
	}
	// bufs[0] holds a whole super-packet; the others a segment of the path
	// MTU, which no segment of the TUN (whose MTU is the path's) exceeds.
	for i := 1; i < min(t.split.segments, len(bufs)); i++ {
		if t.split.hdr+t.split.mss > len(bufs[i])-offset {
			t.split.next = t.split.segments // dropped whole
			return 0, errVnetSegment
		}
	}
	if t.split.segments > len(bufs) {
		// Rare (a small MSS): keep the super-packet aside and hand it out
		// over several calls.
		if t.rbuf == nil {
			t.rbuf = make([]byte, maxPacket)
		}
		t.split.pkt = t.rbuf[:copy(t.rbuf, pkt)]
		return t.emit(bufs, sizes, offset), nil
	}
	// Segments 1… first, from the headers still intact in segment 0.
	for i := 1; i < t.split.segments; i++ {
		sizes[i] = t.split.emit(i, bufs[i][offset:])
	}
	sizes[0] = t.split.emit(0, pkt)
	t.split.next = t.split.segments
	return t.split.segments, nil
}

// emit hands out the next segments of a super-packet kept aside.
func (t *tunDevice) emit(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for ; n < len(bufs) && t.split.pending(); n++ {
		sizes[n] = t.split.emit(t.split.next, bufs[n][offset:])
		t.split.next++
	}
	return n
}

// Write writes bufs[i][offset:], coalescing TCP segments with offload.
func (t *tunDevice) Write(bufs [][]byte, offset int) (int, error) {
	var first error
	if !t.offload {
		for _, b := range bufs {
			if _, err := t.f.Write(b[offset:]); err != nil && first == nil {
				first = err
			}
		}
		return len(bufs), first
	}
	if offset < vnet.Len {
		return 0, errors.New("TUN write: no room for the virtio-net header")
	}
	t.gro.coalesce(bufs, offset)
	for i := range t.gro.frames {
		f := &t.gro.frames[i]
		f.hdr.Encode(f.buf)
		if _, err := t.f.Write(f.buf[:f.n]); err != nil && first == nil {
			first = err
		}
	}
	return len(bufs), first
}
