package tun

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// tunFile is a TUN file descriptor made of slices: Read returns the next
// frame, Write records one.
type tunFile struct {
	reads  [][]byte
	writes [][]byte
}

func (f *tunFile) Read(p []byte) (int, error) {
	if len(f.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.reads[0])
	f.reads = f.reads[1:]
	return n, nil
}

func (f *tunFile) Write(p []byte) (int, error) {
	f.writes = append(f.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (f *tunFile) Close() error { return nil }

func vnetFrame(h vnet.Hdr, pkt []byte) []byte {
	b := make([]byte, vnet.Len+len(pkt))
	h.Encode(b)
	copy(b[vnet.Len:], pkt)
	return b
}

// readBuffers are what the data plane hands Read: the first buffer holds a
// super-packet, the others a segment of the path MTU each.
type readBuffers struct {
	bufs  [][]byte
	sizes []int
}

func newReadBuffers(n, mtu int) *readBuffers {
	w := &readBuffers{bufs: make([][]byte, n), sizes: make([]int, n)}
	w.bufs[0] = make([]byte, headroom+maxPacket)
	for i := 1; i < n; i++ {
		w.bufs[i] = make([]byte, headroom+mtu)
	}
	return w
}

// A super-packet with more segments than the caller has buffers is handed
// out over several reads, in order, and the next read gets the next frame.
func TestTUNReadSplitsAcrossCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	payload := randomBytes(rng, 3000)
	pkt := tsoPacket(payload, tcpACK|tcpPSH, nil)
	lone := tsoPacket([]byte("after"), tcpACK, nil)
	f := &tunFile{reads: [][]byte{
		vnetFrame(vnet.Hdr{Flags: vnet.NeedsCsum, GSOType: vnet.GSOTCPv4, GSOSize: 100, CsumStart: 20, CsumOffset: 16}, pkt),
		vnetFrame(vnet.Hdr{}, lone),
	}}
	dev := &Device{f: f, offload: true}
	w := newReadBuffers(8, 1500)
	var got []byte
	var seqs []uint32
	for len(got) < len(payload) {
		n, err := dev.Read(w.bufs, w.sizes, headroom)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			seg := w.bufs[i][headroom : headroom+w.sizes[i]]
			tcpValid(t, seg)
			seqs = append(seqs, binary.BigEndian.Uint32(seg[24:]))
			got = append(got, seg[40:]...)
		}
	}
	if !bytes.Equal(got, payload) || len(seqs) != 30 {
		t.Fatalf("%d segments carrying %d bytes, want 30 carrying the 3000 of the super-packet", len(seqs), len(got))
	}
	n, err := dev.Read(w.bufs, w.sizes, headroom)
	if err != nil || n != 1 || !bytes.Equal(w.bufs[0][headroom:headroom+w.sizes[0]], lone) {
		t.Fatalf("the frame after the super-packet: %d packets, %v", n, err)
	}
}

// Frames the kernel should never send, or that lie, are refused with an
// error and leave the device usable.
func TestTUNReadRefusesBadFrames(t *testing.T) {
	good := tsoPacket(make([]byte, 2000), tcpACK, nil)
	udp := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, protoUDP, 0, 0, 10, 1, 0, 10, 10, 2, 0, 10, 0, 53, 0, 53, 0, 8, 0, 0}
	f := &tunFile{reads: [][]byte{
		{1, 2, 3},
		vnetFrame(vnet.Hdr{GSOType: 3 /* UDP L4 */, GSOSize: 100}, good),
		vnetFrame(vnet.Hdr{GSOType: vnet.GSOTCPv4, GSOSize: 100}, udp),
		vnetFrame(vnet.Hdr{GSOType: vnet.GSOTCPv4, GSOSize: 10}, good),   // below TCP's smallest MSS
		vnetFrame(vnet.Hdr{GSOType: vnet.GSOTCPv4, GSOSize: 1600}, good), // segments larger than a buffer
		vnetFrame(vnet.Hdr{Flags: vnet.NeedsCsum, CsumStart: 60000}, good),
		vnetFrame(vnet.Hdr{GSOType: vnet.GSOTCPv4, GSOSize: 1000}, good),
	}}
	dev := &Device{f: f, offload: true}
	w := newReadBuffers(8, 1500)
	for i, want := range []error{errVnetShort, errVnetGSOType, errVnetGSO, errVnetGSO, errVnetSegment, errVnetChecksum} {
		if _, err := dev.Read(w.bufs, w.sizes, headroom); err != want {
			t.Errorf("frame %d: %v, want %v", i, err, want)
		}
	}
	if n, err := dev.Read(w.bufs, w.sizes, headroom); err != nil || n != 2 {
		t.Fatalf("a good frame after the bad ones: %d segments, %v", n, err)
	}
}

// Write sends one frame per coalesced run, virtio-net header first.
func TestTUNWriteCoalesces(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	segs := split(t, tsoPacket(randomBytes(rng, 10*1359), tcpACK, nil), 1359)
	f := &tunFile{}
	dev := &Device{f: f, offload: true}
	if _, err := dev.Write(batch(segs...), 16); err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != 1 {
		t.Fatalf("%d writes, want 1", len(f.writes))
	}
	var h vnet.Hdr
	h.Decode(f.writes[0])
	if h.GSOType != vnet.GSOTCPv4 || len(f.writes[0]) != vnet.Len+40+10*1359 {
		t.Fatalf("header %+v, %d bytes", h, len(f.writes[0]))
	}
}
