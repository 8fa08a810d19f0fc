package tun

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// headroom is where the data plane puts packets in its buffers (esp.Headroom):
// the device uses the bytes in front for the virtio-net header.
const headroom = 96

const protoUDP = 17

// rfc1071 is the checksum the slow, obvious way, to check csum's results.
func rfc1071(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func tcpValid(t *testing.T, pkt []byte) {
	t.Helper()
	ihl := int(pkt[0]&0xf) * 4
	if rfc1071(pkt[:ihl]) != 0xffff {
		t.Fatalf("IPv4 header checksum wrong")
	}
	ph := append(append(append([]byte(nil), pkt[12:20]...), 0, protoTCP), byte((len(pkt)-ihl)>>8), byte(len(pkt)-ihl))
	if rfc1071(append(ph, pkt[ihl:]...)) != 0xffff {
		t.Fatalf("TCP checksum wrong in %d-byte segment", len(pkt))
	}
}

// tsoPacket builds a TCP/IPv4 super-packet as the kernel hands it to the
// TUN: the total length, and in the checksum field the pseudo-header sum.
func tsoPacket(payload []byte, flags byte, opts []byte) []byte {
	thl := 20 + len(opts)
	p := make([]byte, 20+thl+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], 0x1000)
	p[6] = 0x40 // DF
	p[8], p[9] = 64, protoTCP
	copy(p[12:], []byte{10, 1, 0, 10, 10, 2, 0, 10})
	binary.BigEndian.PutUint16(p[10:], ^rfc1071(p[:20]))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // the sequence number wraps inside
	binary.BigEndian.PutUint32(tcp[8:], 77)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 512)
	copy(tcp[20:], opts)
	copy(tcp[thl:], payload)
	ph := []byte{10, 1, 0, 10, 10, 2, 0, 10, 0, protoTCP, byte((thl + len(payload)) >> 8), byte(thl + len(payload))}
	binary.BigEndian.PutUint16(tcp[16:], rfc1071(ph))
	return p
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func newBufs(n int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, headroom+maxPacket)
	}
	return bufs
}

// split runs a super-packet through superPacket as Device.Read does.
func split(t *testing.T, pkt []byte, mss int) [][]byte {
	t.Helper()
	var s superPacket
	if err := s.load(pkt, &vnet.Hdr{Flags: vnet.NeedsCsum, GSOType: vnet.GSOTCPv4, GSOSize: uint16(mss)}); err != nil {
		t.Fatal(err)
	}
	var segs [][]byte
	for i := range s.segments {
		dst := make([]byte, maxPacket)
		segs = append(segs, dst[:s.emit(i, dst)])
	}
	return segs
}

func TestTSOSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	opts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps
	for _, size := range []int{1, 1359, 1360, 4000, 64000, 65495 - 32} {
		payload := randomBytes(rng, size)
		pkt := tsoPacket(payload, tcpACK|tcpPSH|tcpFIN|tcpCWR, opts)
		segs := split(t, pkt, 1359)
		if want := (size + 1358) / 1359; len(segs) != want {
			t.Fatalf("%d bytes: %d segments, want %d", size, len(segs), want)
		}
		var got []byte
		for i, s := range segs {
			tcpValid(t, s)
			if int(binary.BigEndian.Uint16(s[2:])) != len(s) {
				t.Fatalf("segment %d: total length field %d, segment %d bytes", i, binary.BigEndian.Uint16(s[2:]), len(s))
			}
			if id := binary.BigEndian.Uint16(s[4:]); id != 0x1000+uint16(i) {
				t.Errorf("segment %d: IP ID %#x", i, id)
			}
			if seq := binary.BigEndian.Uint32(s[24:]); seq != 0xfffff000+uint32(i*1359) {
				t.Errorf("segment %d: seq %#x", i, seq)
			}
			flags := s[33]
			last := i == len(segs)-1
			if (flags&tcpFIN != 0) != last || (flags&tcpPSH != 0) != last || (flags&tcpCWR != 0) != (i == 0) || flags&tcpACK == 0 {
				t.Errorf("segment %d of %d: flags %#x", i, len(segs), flags)
			}
			if !bytes.Equal(s[40:52], opts) {
				t.Errorf("segment %d: options %x", i, s[40:52])
			}
			got = append(got, s[52:]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes: the segments do not add up to the payload", size)
		}
	}
}

// TestTUNReadInPlace is Device.Read's path: the super-packet read into the
// first buffer, segment 0 finished there last.
func TestTUNReadInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	payload := randomBytes(rng, 20000)
	pkt := tsoPacket(payload, tcpACK, nil)
	want := split(t, append([]byte(nil), pkt...), 1400)
	bufs := newBufs(len(want))
	copy(bufs[0][headroom:], pkt)
	var s superPacket
	if err := s.load(bufs[0][headroom:headroom+len(pkt)], &vnet.Hdr{GSOType: vnet.GSOTCPv4, GSOSize: 1400}); err != nil {
		t.Fatal(err)
	}
	sizes := make([]int, len(bufs))
	for i := 1; i < s.segments; i++ {
		sizes[i] = s.emit(i, bufs[i][headroom:])
	}
	sizes[0] = s.emit(0, bufs[0][headroom:headroom+len(pkt)])
	for i := range want {
		if !bytes.Equal(bufs[i][headroom:headroom+sizes[i]], want[i]) {
			t.Fatalf("segment %d differs from the one split out of place", i)
		}
	}
}

func TestCompleteChecksum(t *testing.T) {
	pkt := tsoPacket([]byte("hello, world"), tcpACK|tcpPSH, nil)
	if err := completeChecksum(pkt, &vnet.Hdr{Flags: vnet.NeedsCsum, CsumStart: 20, CsumOffset: 16}); err != nil {
		t.Fatal(err)
	}
	tcpValid(t, pkt)
	for _, h := range []vnet.Hdr{{CsumStart: 100}, {CsumStart: 20, CsumOffset: 100}} {
		if err := completeChecksum(pkt, &h); err == nil {
			t.Errorf("offsets %d+%d outside a %d-byte packet accepted", h.CsumStart, h.CsumOffset, len(pkt))
		}
	}
}

// batch puts each packet into a buffer of its own at offset, as the inbound
// path hands them to Device.Write: each just large enough, so that runs move
// to staging buffers.
func batch(pkts ...[]byte) [][]byte {
	var out [][]byte
	for _, p := range pkts {
		b := make([]byte, 16+len(p))
		copy(b[16:], p)
		out = append(out, b)
	}
	return out
}

func TestGROCoalesces(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	payload := randomBytes(rng, 30000)
	segs := split(t, tsoPacket(payload, tcpACK|tcpPSH, nil), 1359)
	other := split(t, tsoPacket(randomBytes(rng, 3000), tcpACK, nil), 1000)
	for _, s := range other {
		s[21] = 99 // another source port: another flow
		binary.BigEndian.PutUint16(s[36:], 0)
		binary.BigEndian.PutUint16(s[36:], ^rfc1071(append([]byte{10, 1, 0, 10, 10, 2, 0, 10, 0, protoTCP, byte((len(s) - 20) >> 8), byte(len(s) - 20)}, s[20:]...)))
	}
	udp := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, protoUDP, 0, 0, 10, 1, 0, 10, 10, 2, 0, 10, 0, 53, 0, 53, 0, 8, 0, 0}
	in := append([][]byte{}, segs[:5]...)
	in = append(in, other[0], udp, other[1])
	in = append(in, segs[5:]...)
	in = append(in, other[2])

	var c coalescer
	c.coalesce(batch(in...), 16)
	if len(c.frames) != 3 {
		t.Fatalf("%d frames, want 3: the two flows and the UDP packet", len(c.frames))
	}
	first := c.frames[0]
	pkt := first.buf[vnet.Len:first.n]
	if first.hdr.GSOType != vnet.GSOTCPv4 || first.hdr.GSOSize != 1359 || first.hdr.Flags != vnet.NeedsCsum ||
		first.hdr.CsumStart != 20 || first.hdr.CsumOffset != 16 || first.hdr.HdrLen != 40 {
		t.Fatalf("virtio-net header %+v", first.hdr)
	}
	if !bytes.Equal(pkt[40:], payload) {
		t.Fatalf("the coalesced payload is not the original (%d bytes, want %d)", len(pkt)-40, len(payload))
	}
	if pkt[33]&tcpPSH == 0 {
		t.Error("PSH of the last segment lost")
	}
	if err := completeChecksum(pkt, &first.hdr); err != nil {
		t.Fatal(err)
	}
	tcpValid(t, pkt)
	if c.frames[1].hdr.GSOSize != 1000 || c.frames[2].hdr != (vnet.Hdr{}) {
		t.Errorf("second flow %+v, UDP %+v", c.frames[1].hdr, c.frames[2].hdr)
	}
}

func TestGROKeepsCorruptSegmentsApart(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	segs := split(t, tsoPacket(randomBytes(rng, 5*1359), tcpACK, nil), 1359)
	segs[2][100] ^= 0x10 // corrupted before the tunnel: the checksum no longer matches
	var c coalescer
	c.coalesce(batch(segs...), 16)
	// Segments 0-1 coalesce; 2 goes alone and unverified; 3-4 cannot join the
	// first run (a gap) and form their own.
	if len(c.frames) != 3 {
		t.Fatalf("%d frames, want 3", len(c.frames))
	}
	if c.frames[0].n != vnet.Len+40+2*1359 || c.frames[1].hdr != (vnet.Hdr{}) || c.frames[2].hdr.GSOType != vnet.GSOTCPv4 {
		t.Fatalf("frames %+v %+v %+v", c.frames[0].hdr, c.frames[1].hdr, c.frames[2].hdr)
	}
}

func TestGROLoneSegmentMarkedValid(t *testing.T) {
	segs := split(t, tsoPacket([]byte("x"), tcpACK|tcpPSH, nil), 1359)
	var c coalescer
	c.coalesce(batch(segs...), 16)
	if len(c.frames) != 1 || c.frames[0].hdr != (vnet.Hdr{Flags: vnet.DataValid}) {
		t.Fatalf("frames %+v", c.frames)
	}
}

// FuzzTUNOffload feeds arbitrary TUN reads through the splitting, and the
// segments through the coalescing: bad input is refused, never a panic.
// Reads stay under fuzzMaxRead: splitting a 64 KB read is the same code as a
// 1 KB one, and the fuzzer's minimisation of a new input costs the square of
// its length, which at 64 KB ate the whole run.
func FuzzTUNOffload(f *testing.F) {
	const fuzzMaxRead = vnet.Len + 1024
	// A TSO read: NEEDS_CSUM, GSO_TCPV4, hdr_len 40, gso_size 100,
	// csum_start 20, csum_offset 16; 300 bytes of payload make 3 segments.
	f.Add(append([]byte{1, 1, 40, 0, 100, 0, 20, 0, 16, 0}, tsoPacket(make([]byte, 300), tcpACK, nil)...))
	f.Fuzz(func(t *testing.T, read []byte) {
		if len(read) < vnet.Len || len(read) > fuzzMaxRead {
			return
		}
		var h vnet.Hdr
		h.Decode(read)
		pkt := append([]byte(nil), read[vnet.Len:]...)
		if h.GSOType == vnet.GSONone {
			if h.Flags&vnet.NeedsCsum != 0 {
				completeChecksum(pkt, &h)
			}
			var c coalescer
			c.coalesce(batch(pkt), 16)
			return
		}
		var s superPacket
		if s.load(pkt, &h) != nil || s.segments > 200 {
			return
		}
		var segs [][]byte
		dst := make([]byte, maxPacket)
		for i := range s.segments {
			segs = append(segs, append([]byte(nil), dst[:s.emit(i, dst)]...))
		}
		var c coalescer
		c.coalesce(batch(segs...), 16)
	})
}
