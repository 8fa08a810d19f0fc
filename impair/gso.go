package impair

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipseclab/ipseclab/internal/vnet"
)

// A TAP device opened with IFF_VNET_HDR puts a virtio-net header (package
// vnet) in front of every frame. With offloads on
// (TUNSETOFFLOAD with TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6) the kernel hands over
// TCP "super-frames" of up to 64 KiB with the checksum left partial, and the
// header says how to cut them into packets: gso_size bytes of payload each,
// checksum to be completed from csum_start. Writing such a frame, header and
// all, into the other TAP device lets the receiving kernel take it as one, as
// from a virtio NIC. That is what makes an unimpaired link fast; when a
// direction needs real packets, offloads are switched off and the few
// super-frames still in flight are cut here.

// needsWork reports whether the frame is not yet a finished packet: a
// super-frame, or a checksum left for the device to complete.
func needsWork(h vnet.Hdr) bool {
	return h.IsGSO() || h.Flags&vnet.NeedsCsum != 0
}

var errMalformed = errors.New("malformed offload frame")

// tcpSuperFrame is the layout of a TCP super-frame.
type tcpSuperFrame struct {
	ipStart, tcpStart, hdrEnd int
	v4                        bool
	mss                       int
}

// parseSuperFrame checks a TCP super-frame's headers against its virtio header.
func parseSuperFrame(h vnet.Hdr, data []byte) (tcpSuperFrame, error) {
	var s tcpSuperFrame
	switch h.GSOType &^ vnet.GSOECN {
	case vnet.GSOTCPv4, vnet.GSOTCPv6:
	default:
		return s, fmt.Errorf("%w: GSO type %d not offered", errMalformed, h.GSOType)
	}
	s.ipStart = l2HeaderLen(data)
	s.tcpStart = int(h.CsumStart)
	s.mss = int(h.GSOSize)
	if s.mss < vnet.TCPMinSndMSS {
		return s, fmt.Errorf("%w: segment size %d", errMalformed, s.mss)
	}
	if s.ipStart >= len(data) || s.tcpStart+20 > len(data) {
		return s, fmt.Errorf("%w: headers cut short", errMalformed)
	}
	switch data[s.ipStart] >> 4 {
	case 4:
		s.v4 = true
		if s.ipStart+int(data[s.ipStart]&0xf)*4 != s.tcpStart || data[s.ipStart]&0xf < 5 {
			return s, fmt.Errorf("%w: IPv4 header does not end where TCP starts", errMalformed)
		}
	case 6:
		if s.tcpStart < s.ipStart+40 {
			return s, fmt.Errorf("%w: TCP starts inside the IPv6 header", errMalformed)
		}
	default:
		return s, fmt.Errorf("%w: not IP", errMalformed)
	}
	doff := int(data[s.tcpStart+12]>>4) * 4
	s.hdrEnd = s.tcpStart + doff
	if doff < 20 || s.hdrEnd > len(data) {
		return s, fmt.Errorf("%w: TCP header length", errMalformed)
	}
	return s, nil
}

// setWire fills in how many packets and bytes a frame puts on the wire.
func (f *Frame) setWire() {
	f.segs, f.wireBytes, f.largest = 1, len(f.Data), 0
	if !f.vnet.IsGSO() {
		return
	}
	s, err := parseSuperFrame(f.vnet, f.Data)
	payload := len(f.Data) - s.hdrEnd
	if err != nil || payload <= 0 {
		return
	}
	f.segs = (payload + s.mss - 1) / s.mss
	f.wireBytes = len(f.Data) + (f.segs-1)*s.hdrEnd
	f.largest = s.hdrEnd + min(s.mss, payload)
}

// finish turns a frame into finished packets: a super-frame is cut into
// segments, a partial checksum completed. It returns the frames to use in its
// place (f itself when it was already finished) and releases f when it is
// replaced. On error f is left to the caller.
func finish(f *Frame, out []*Frame) ([]*Frame, error) {
	if !needsWork(f.vnet) {
		return append(out, f), nil
	}
	if !f.vnet.IsGSO() {
		if err := completeChecksum(f.vnet, f.Data); err != nil {
			return out, err
		}
		f.vnet = vnet.Hdr{}
		f.segs, f.wireBytes, f.largest = 1, len(f.Data), 0
		return append(out, f), nil
	}
	n := len(out)
	out, err := segment(f, out)
	if err != nil {
		for _, g := range out[n:] {
			g.release()
		}
		return out[:n], err
	}
	f.release()
	return out, nil
}

// completeChecksum does what a NIC does for CHECKSUM_PARTIAL: the checksum
// field holds the pseudo-header sum; the one's complement sum from csum_start
// to the end of the IP packet goes into it (RFC 1071).
func completeChecksum(h vnet.Hdr, data []byte) error {
	end := ipPacketEnd(data)
	start, field := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if start > end || field+2 > end || field < start {
		return fmt.Errorf("%w: checksum offsets outside the packet", errMalformed)
	}
	c := ^fold(sum(data[start:end], 0))
	if c == 0 {
		c = 0xffff // a UDP checksum of 0 means "none"; 0xffff is the same sum
	}
	binary.BigEndian.PutUint16(data[field:], c)
	return nil
}

// ipPacketEnd is where the frame's IP packet ends, before any link-layer
// padding; the frame's end when it is not IP or the lengths are off.
func ipPacketEnd(data []byte) int {
	ip := l2HeaderLen(data)
	if ip+20 > len(data) {
		return len(data)
	}
	var end int
	switch data[ip] >> 4 {
	case 4:
		end = ip + int(binary.BigEndian.Uint16(data[ip+2:]))
	case 6:
		if ip+40 > len(data) {
			return len(data)
		}
		end = ip + 40 + int(binary.BigEndian.Uint16(data[ip+4:]))
	default:
		return len(data)
	}
	if end > len(data) || end < ip {
		return len(data)
	}
	return end
}

// segment cuts a TCP super-frame into packets of at most mss bytes of payload,
// as the kernel's tcp_gso_segment does: IP length and ID, TCP sequence number
// per segment, FIN and PSH only on the last, CWR only on the first, checksums
// computed whole.
func segment(f *Frame, out []*Frame) ([]*Frame, error) {
	data := f.Data
	s, err := parseSuperFrame(f.vnet, data)
	if err != nil {
		return out, err
	}
	hdr, payload := data[:s.hdrEnd], data[s.hdrEnd:]
	seq := binary.BigEndian.Uint32(hdr[s.tcpStart+4:])
	flags := hdr[s.tcpStart+13]
	var id uint16
	if s.v4 {
		id = binary.BigEndian.Uint16(hdr[s.ipStart+4:])
	}
	for i, off := 0, 0; off < len(payload) || i == 0; i, off = i+1, off+s.mss {
		n := min(s.mss, len(payload)-off)
		g := newFrame(len(hdr) + n)
		copy(g.Data, hdr)
		copy(g.Data[len(hdr):], payload[off:off+n])
		g.segs, g.wireBytes, g.seq, g.due = 1, len(g.Data), f.seq, f.due
		ip, tcp := g.Data[s.ipStart:], g.Data[s.tcpStart:]
		ipLen := len(g.Data) - s.ipStart
		if s.v4 {
			binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
			binary.BigEndian.PutUint16(ip[4:], id+uint16(i))
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip[:s.tcpStart-s.ipStart], 0)))
		} else {
			binary.BigEndian.PutUint16(ip[4:], uint16(ipLen-40))
		}
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(off))
		fl := flags
		if off+n < len(payload) {
			fl &^= 0x01 | 0x08 // FIN, PSH
		}
		if i > 0 {
			fl &^= 0x80 // CWR
		}
		tcp[13] = fl
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:], ^fold(sum(tcp, pseudoHeaderSum(ip, s.v4, len(tcp)))))
		out = append(out, g)
	}
	return out, nil
}

// pseudoHeaderSum is the sum of the TCP pseudo-header (RFC 9293 section 3.1,
// RFC 8200 section 8.1).
func pseudoHeaderSum(ip []byte, v4 bool, l4Len int) uint64 {
	var acc uint64
	if v4 {
		acc = sum(ip[12:20], 0)
	} else {
		acc = sum(ip[8:40], 0)
	}
	return acc + 6 + uint64(l4Len)
}

// sum adds b to acc as big-endian 16-bit words, RFC 1071 style, 32 bits at a
// time; fold reduces it.
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = (acc >> 16) + (acc & 0xffff)
	}
	return uint16(acc)
}
