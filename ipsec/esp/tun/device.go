// Package tun is the inner side of the ESP data plane: a TUN device carrying
// IPv4 packets, in batches, with the kernel's segmentation offload. It
// implements esp.Device, as wireguard-go's tun package implements its
// device's, and knows nothing of IPsec.
//
// With offload the device carries a virtio-net header (IFF_VNET_HDR) and
// takes TCP/IPv4 segmentation offload (TSO): the kernel hands over TCP
// super-packets of up to 64 KiB, which Read splits into segments of the
// path MTU, and Write coalesces the segments of a TCP flow back into
// super-packets (GRO). One TUN syscall then carries a whole super-packet
// instead of one segment; offload.go holds the splitting and coalescing,
// tun_linux.go the file descriptor.
package tun

import (
	"errors"
	"io"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// maxPacket is the largest IPv4 packet, and so the largest TUN read (a TSO
// super-packet) and TUN write (a GRO one).
const maxPacket = 65535

// batchSize is the most packets one Read hands out with offload; a
// super-packet of more segments (a small MSS) is finished by the next calls.
const batchSize = 128

// Device is a TUN device, read and written through Go's poller.
type Device struct {
	f       io.ReadWriteCloser // the TUN's file; a fake in tests
	offload bool

	// tryRead reads f without waiting (TryRead), when f is a file of the
	// poller's; nowait is set during a TryRead.
	tryRead func(b []byte) (n int, wouldBlock bool, err error)
	wait    func() error
	nowait  bool

	rbuf  []byte // a super-packet that did not fit one Read's buffers
	split superPacket
	gro   coalescer
}

// BatchSize is how many buffers Read can fill in one call.
func (t *Device) BatchSize() int {
	if t.offload {
		return batchSize
	}
	return 1
}

// errWouldBlock is read's answer during a TryRead when there is nothing.
var errWouldBlock = errors.New("tun: nothing to read")

func (t *Device) read(b []byte) (int, error) {
	if !t.nowait || t.tryRead == nil {
		return t.f.Read(b)
	}
	n, wouldBlock, err := t.tryRead(b)
	if wouldBlock {
		return 0, errWouldBlock
	}
	return n, err
}

// TryRead is Read without waiting: wouldBlock says there was nothing to
// read. With WaitReadable, a reader holds its buffers only while packets
// are there (esp.TryDevice). A device that cannot (a fake) waits in Read.
func (t *Device) TryRead(bufs [][]byte, sizes []int, offset int) (n int, wouldBlock bool, err error) {
	t.nowait = true
	n, err = t.Read(bufs, sizes, offset)
	t.nowait = false
	if err == errWouldBlock {
		return 0, true, nil
	}
	return n, false, err
}

// WaitReadable waits until there is something to read, holding no buffer.
func (t *Device) WaitReadable() error {
	if t.wait == nil {
		return nil
	}
	return t.wait()
}

// Close closes the device, which the kernel then removes; a blocked Read
// returns os.ErrClosed.
func (t *Device) Close() error { return t.f.Close() }

// Read reads one packet, or the segments of one super-packet, into bufs at
// offset: packet i is bufs[i][offset:offset+sizes[i]]. With offload, offset
// must leave room for the virtio-net header in front, bufs[0] must hold a
// whole super-packet and the others a segment of the path MTU. A
// super-packet with more segments than bufs is finished by the next calls.
func (t *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if !t.offload {
		n, err := t.read(bufs[0][offset:])
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
	n, err := t.read(b)
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
func (t *Device) emit(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for ; n < len(bufs) && t.split.pending(); n++ {
		sizes[n] = t.split.emit(t.split.next, bufs[n][offset:])
		t.split.next++
	}
	return n
}

// Write writes bufs[i][offset:], coalescing TCP segments with offload, for
// which offset must leave room for the virtio-net header.
func (t *Device) Write(bufs [][]byte, offset int) (int, error) {
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
