package tun

import (
	"encoding/binary"
	"errors"

	"github.com/ipseclab/ipseclab/internal/vnet"
	"github.com/ipseclab/ipseclab/ipsec/esp/internal/csum"
)

// The TUN device's segmentation offload, apart from the device's reads and
// writes (device.go): the kernel hands the TUN TCP super-packets of up to 64 KiB
// (TSO) behind a virtio-net header, which Read splits into MTU-sized segments
// for ESP; Write coalesces the consecutive segments of a TCP flow that one
// inbound batch decrypted back into super-packets (GRO), so that the kernel
// forwards one packet where the tunnel carried forty. Every split segment
// gets its checksum computed, and every coalesced segment has its checksum
// verified, while its payload is copied: csum.CopyAndSum.
//
// Verifying before coalescing is what keeps GRO honest: the super-packet
// leaves with a checksum the kernel recomputes, so a segment that arrived
// corrupted (on an impaired link before the sending gateway, where ESP's ICV
// does not reach) must not be merged; it is written on its own and the
// receiving host drops it, as it would without the tunnel.

// IPv4 header offsets and flags (RFC 791 §3.1).
const (
	ipv4MinHeader = 20
	ipv4TOS       = 1
	ipv4TotalLen  = 2
	ipv4ID        = 4
	ipv4FlagsFrag = 6
	ipv4TTL       = 8
	ipv4Protocol  = 9
	ipv4Checksum  = 10
	ipv4Src       = 12
	ipv4Dst       = 16

	ipv4MF         = 0x2000
	ipv4FragOffset = 0x1fff

	protoTCP = 6
)

// TCP header offsets and flags (RFC 9293 §3.1).
const (
	tcpMinHeader = 20
	tcpSeq       = 4
	tcpAck       = 8
	tcpDataOff   = 12
	tcpFlags     = 13
	tcpWindow    = 14
	tcpChecksum  = 16

	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpCWR = 0x80
)

var (
	errVnetShort    = errors.New("TUN read shorter than its virtio-net header")
	errVnetChecksum = errors.New("TUN packet's checksum offsets lie outside it")
	errVnetGSO      = errors.New("TUN super-packet is not a well-formed TCP/IPv4 packet")
	errVnetGSOType  = errors.New("TUN super-packet of a segmentation type that was not enabled")
	errVnetSegment  = errors.New("TUN super-packet with segments larger than the path MTU")
)

// completeChecksum does what a NIC does for a packet marked NEEDS_CSUM: sums
// from CsumStart to the end (the field holds the pseudo-header's sum) and
// stores the complement at CsumStart+CsumOffset.
func completeChecksum(pkt []byte, h *vnet.Hdr) error {
	start, field := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if start > len(pkt) || field+2 > len(pkt) {
		return errVnetChecksum
	}
	binary.BigEndian.PutUint16(pkt[field:], ^csum.Bytes(pkt[start:]).Fold())
	return nil
}

// superPacket is a TCP/IPv4 TSO packet being split: segment i carries payload
// bytes [i·mss, (i+1)·mss) behind a copy of the headers.
type superPacket struct {
	pkt      []byte
	ihl, hdr int // IPv4 header length; IPv4 and TCP header length
	mss      int
	segments int
	next     int // the next segment to hand out
}

func (s *superPacket) pending() bool { return s.next < s.segments }

func (s *superPacket) load(pkt []byte, h *vnet.Hdr) error {
	if h.GSOType&^vnet.GSOECN != vnet.GSOTCPv4 {
		return errVnetGSOType
	}
	if len(pkt) < ipv4MinHeader || pkt[0]>>4 != 4 || pkt[ipv4Protocol] != protoTCP {
		return errVnetGSO
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < ipv4MinHeader || len(pkt) < ihl+tcpMinHeader {
		return errVnetGSO
	}
	thl := int(pkt[ihl+tcpDataOff]>>4) * 4
	if thl < tcpMinHeader || len(pkt) <= ihl+thl || int(h.GSOSize) < vnet.TCPMinSndMSS {
		return errVnetGSO
	}
	*s = superPacket{pkt: pkt, ihl: ihl, hdr: ihl + thl, mss: int(h.GSOSize)}
	s.segments = (len(pkt) - s.hdr + s.mss - 1) / s.mss
	return nil
}

// emit writes segment i into dst and returns its length. dst may be the
// super-packet's own buffer for segment 0, provided that is emitted last: its
// headers are the template of the others.
func (s *superPacket) emit(i int, dst []byte) int {
	src := s.pkt
	p0 := s.hdr + i*s.mss
	p1 := min(p0+s.mss, len(src))
	n := s.hdr + p1 - p0
	var sum csum.Sum
	if &dst[0] == &src[0] {
		sum = csum.Bytes(src[p0:p1])
	} else {
		copy(dst[:s.hdr], src[:s.hdr])
		sum = csum.CopyAndSum(dst[s.hdr:n], src[p0:p1])
	}
	ip, tcp := dst[:s.ihl], dst[s.ihl:s.hdr]

	binary.BigEndian.PutUint16(ip[ipv4TotalLen:], uint16(n))
	binary.BigEndian.PutUint16(ip[ipv4ID:], binary.BigEndian.Uint16(src[ipv4ID:])+uint16(i))
	ip[ipv4Checksum], ip[ipv4Checksum+1] = 0, 0
	binary.BigEndian.PutUint16(ip[ipv4Checksum:], ^csum.Bytes(ip).Fold())

	binary.BigEndian.PutUint32(tcp[tcpSeq:], binary.BigEndian.Uint32(src[s.ihl+tcpSeq:])+uint32(i*s.mss))
	if i != s.segments-1 {
		tcp[tcpFlags] &^= tcpFIN | tcpPSH
	}
	if i != 0 {
		tcp[tcpFlags] &^= tcpCWR
	}
	tcp[tcpChecksum], tcp[tcpChecksum+1] = 0, 0
	sum = sum.Add(csum.Bytes(tcp)).Add(csum.PseudoHeaderIPv4(ip[ipv4Src:ipv4Src+4], ip[ipv4Dst:ipv4Dst+4], protoTCP, n-s.ihl))
	binary.BigEndian.PutUint16(tcp[tcpChecksum:], ^sum.Fold())
	return n
}

// groRun is a TCP super-packet being built in the buffer of its first
// segment, from segments of one flow with consecutive sequence numbers.
type groRun struct {
	buf      []byte // the first segment's buffer, to its capacity, from the packet on
	frame    int    // its place in the write order
	key      [12]byte
	ihl, hdr int
	length   int // of the packet so far
	mss      int // the first segment's payload; later ones are no longer
	segments int
	nextSeq  uint32
	psh      bool
	closed   bool // a short or PSH segment ended it
}

// tcpCandidate describes an IPv4 TCP segment that may be coalesced: no IP
// options or fragments, a payload, and no flag but ACK and PSH.
type tcpCandidate struct {
	key      [12]byte
	ihl, hdr int
	payload  int
	seq      uint32
	psh      bool
}

// parseCandidate returns the segment's description and whether it may be
// coalesced; tcp reports whether it is TCP/IPv4 at all, so that a segment of
// a flow that may not be coalesced still ends the flow's run.
func parseCandidate(pkt []byte) (c tcpCandidate, ok, tcp bool) {
	if len(pkt) < ipv4MinHeader+tcpMinHeader || pkt[0]>>4 != 4 || pkt[ipv4Protocol] != protoTCP {
		return c, false, false
	}
	c.ihl = int(pkt[0]&0x0f) * 4
	if int(binary.BigEndian.Uint16(pkt[ipv4TotalLen:])) != len(pkt) || len(pkt) < c.ihl+tcpMinHeader {
		return c, false, false
	}
	copy(c.key[:8], pkt[ipv4Src:ipv4Dst+4])
	copy(c.key[8:], pkt[c.ihl:c.ihl+4])
	if c.ihl != ipv4MinHeader || binary.BigEndian.Uint16(pkt[ipv4FlagsFrag:])&(ipv4MF|ipv4FragOffset) != 0 {
		return c, false, true
	}
	tcpH := pkt[c.ihl:]
	c.hdr = c.ihl + int(tcpH[tcpDataOff]>>4)*4
	if c.hdr-c.ihl < tcpMinHeader || c.hdr >= len(pkt) || tcpH[tcpFlags]&^(tcpACK|tcpPSH) != 0 {
		return c, false, true
	}
	c.payload = len(pkt) - c.hdr
	c.seq = binary.BigEndian.Uint32(tcpH[tcpSeq:])
	c.psh = tcpH[tcpFlags]&tcpPSH != 0
	return c, true, true
}

// tcpChecksumValid checks a whole segment's checksum.
func tcpChecksumValid(pkt []byte, ihl int) bool {
	s := csum.Bytes(pkt[ihl:]).Add(csum.PseudoHeaderIPv4(pkt[ipv4Src:ipv4Src+4], pkt[ipv4Dst:ipv4Dst+4], protoTCP, len(pkt)-ihl))
	return s.Fold() == 0xffff
}

// canAppend reports whether the segment continues the run: next in sequence,
// no longer than the first, every header field but the sequence number, the
// IP identification and the checksums the same, and within 64 KiB.
func (r *groRun) canAppend(c *tcpCandidate, pkt []byte) bool {
	if r.closed || c.seq != r.nextSeq || c.payload > r.mss || c.hdr != r.hdr || r.length+c.payload > maxPacket {
		return false
	}
	h := r.buf
	return h[ipv4TOS] == pkt[ipv4TOS] && h[ipv4TTL] == pkt[ipv4TTL] &&
		h[ipv4FlagsFrag] == pkt[ipv4FlagsFrag] &&
		string(h[r.ihl+tcpAck:r.ihl+tcpFlags]) == string(pkt[r.ihl+tcpAck:r.ihl+tcpFlags]) &&
		string(h[r.ihl+tcpWindow:r.ihl+tcpChecksum]) == string(pkt[r.ihl+tcpWindow:r.ihl+tcpChecksum]) &&
		string(h[r.ihl+tcpMinHeader:r.hdr]) == string(pkt[r.ihl+tcpMinHeader:r.hdr])
}

// appendSegment copies the segment's payload behind the run, verifying its
// checksum on the way; a segment that fails is left out (what was copied
// lies beyond the run's length).
func (r *groRun) appendSegment(c *tcpCandidate, pkt []byte) bool {
	sum := csum.CopyAndSum(r.buf[r.length:], pkt[c.hdr:])
	sum = sum.Add(csum.Bytes(pkt[c.ihl:c.hdr])).Add(csum.PseudoHeaderIPv4(pkt[ipv4Src:ipv4Src+4], pkt[ipv4Dst:ipv4Dst+4], protoTCP, len(pkt)-c.ihl))
	if sum.Fold() != 0xffff {
		return false
	}
	r.length += c.payload
	r.nextSeq += uint32(c.payload)
	r.segments++
	if c.payload < r.mss || c.psh {
		r.closed = true
	}
	r.psh = r.psh || c.psh
	return true
}

// finish turns the run into one packet and returns its virtio-net header: a
// lone segment as it came, marked verified, or a TSO super-packet whose
// checksum the kernel completes.
func (r *groRun) finish() vnet.Hdr {
	if r.segments == 1 {
		return vnet.Hdr{Flags: vnet.DataValid}
	}
	p := r.buf[:r.length]
	binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(r.length))
	p[ipv4Checksum], p[ipv4Checksum+1] = 0, 0
	binary.BigEndian.PutUint16(p[ipv4Checksum:], ^csum.Bytes(p[:r.ihl]).Fold())
	if r.psh {
		p[r.ihl+tcpFlags] |= tcpPSH
	}
	ph := csum.PseudoHeaderIPv4(p[ipv4Src:ipv4Src+4], p[ipv4Dst:ipv4Dst+4], protoTCP, r.length-r.ihl)
	binary.BigEndian.PutUint16(p[r.ihl+tcpChecksum:], ph.Fold())
	return vnet.Hdr{
		Flags: vnet.NeedsCsum, GSOType: vnet.GSOTCPv4,
		HdrLen: uint16(r.hdr), GSOSize: uint16(r.mss),
		CsumStart: uint16(r.ihl), CsumOffset: tcpChecksum,
	}
}

// coalescer groups one Write batch into frames: super-packets of TCP runs,
// and every other packet as it is. Frames keep the order of their first
// packet, so each flow keeps its order.
type coalescer struct {
	frames  []groFrame
	runs    []groRun // open runs, at most one per flow
	staging [][]byte // 64 KiB buffers for runs that outgrow their first segment's
	staged  int      // staging buffers in use in this batch
}

// stage moves a run that has outgrown its first segment's buffer into a
// staging buffer, with room for the virtio-net header in front.
func (c *coalescer) stage(r *groRun) {
	if c.staged == len(c.staging) {
		c.staging = append(c.staging, make([]byte, vnet.Len+maxPacket))
	}
	s := c.staging[c.staged]
	c.staged++
	copy(s[vnet.Len:], r.buf[:r.length])
	r.buf = s[vnet.Len:]
	c.frames[r.frame].buf = s
}

type groFrame struct {
	buf []byte // from the virtio-net header on
	n   int    // header and packet
	hdr vnet.Hdr
}

// coalesce plans the frames for pkts, each pkts[i][offset:] a packet with
// offset ≥ vnet.Len bytes of room in front.
func (c *coalescer) coalesce(pkts [][]byte, offset int) {
	c.frames, c.runs, c.staged = c.frames[:0], c.runs[:0], 0
	for _, b := range pkts {
		pkt := b[offset:]
		cand, ok, isTCP := parseCandidate(pkt)
		open := -1
		if isTCP {
			for i := range c.runs {
				if c.runs[i].key == cand.key {
					open = i
					break
				}
			}
		}
		if !ok {
			if open >= 0 {
				c.close(open)
			}
			c.frames = append(c.frames, groFrame{buf: b[offset-vnet.Len:], n: vnet.Len + len(pkt)})
			continue
		}
		if open >= 0 {
			r := &c.runs[open]
			if r.canAppend(&cand, pkt) {
				if r.length+cand.payload > len(r.buf) {
					c.stage(r)
				}
				if r.appendSegment(&cand, pkt) {
					continue
				}
			}
			c.close(open)
		}
		frame := groFrame{buf: b[offset-vnet.Len:], n: vnet.Len + len(pkt)}
		if !tcpChecksumValid(pkt, cand.ihl) {
			// Written as it came, unverified: the receiver's kernel drops it.
			c.frames = append(c.frames, frame)
			continue
		}
		c.runs = append(c.runs, groRun{
			buf: b[offset:cap(b)], frame: len(c.frames), key: cand.key,
			ihl: cand.ihl, hdr: cand.hdr, length: len(pkt), mss: cand.payload, segments: 1,
			nextSeq: cand.seq + uint32(cand.payload), psh: cand.psh, closed: cand.psh,
		})
		c.frames = append(c.frames, frame)
	}
	for i := len(c.runs) - 1; i >= 0; i-- {
		c.close(i)
	}
}

// close finishes the run at index i and removes it from the open runs.
func (c *coalescer) close(i int) {
	r := &c.runs[i]
	f := &c.frames[r.frame]
	f.hdr = r.finish()
	f.buf = f.buf[:cap(f.buf)]
	f.n = vnet.Len + r.length
	last := len(c.runs) - 1
	c.runs[i] = c.runs[last]
	c.runs = c.runs[:last]
}
