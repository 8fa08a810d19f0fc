// Package vnet is the virtio-net header (virtio 1.2 §5.1.6, struct
// virtio_net_hdr in include/uapi/linux/virtio_net.h) that a TUN or TAP device
// opened with IFF_VNET_HDR puts in front of every packet. With offloads on
// (TUNSETOFFLOAD), the kernel hands over TCP super-packets of up to 64 KiB
// with the checksum left partial, and the header says how to cut them: GSOSize
// bytes of payload each, the checksum to complete from CsumStart. Written
// back, the same header lets the kernel take a super-packet as one.
//
// Both users of the header keep their own segmentation: impair's TAP links cut
// Ethernet frames of IPv4 and IPv6, the ESP data plane's TUN cuts IPv4 packets
// while it copies them into the buffers ESP encrypts in place.
package vnet

import "encoding/binary"

// Len is sizeof(struct virtio_net_hdr), the TUN and TAP default.
const Len = 10

// Flags and GSO types.
const (
	NeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: complete the checksum at CsumStart+CsumOffset
	DataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified

	GSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	GSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	GSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or-ed into the type
)

// Hdr is one header.
type Hdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // a hint only; the kernel puts the linear length here
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// The header is in the host's byte order for a TUN or TAP device on a
// little-endian machine (tun_is_little_endian); ipseclab runs on those.

// Decode reads a header from the first Len bytes of b.
func (h *Hdr) Decode(b []byte) {
	h.Flags, h.GSOType = b[0], b[1]
	h.HdrLen = binary.LittleEndian.Uint16(b[2:])
	h.GSOSize = binary.LittleEndian.Uint16(b[4:])
	h.CsumStart = binary.LittleEndian.Uint16(b[6:])
	h.CsumOffset = binary.LittleEndian.Uint16(b[8:])
}

// Encode writes the header into the first Len bytes of b.
func (h Hdr) Encode(b []byte) {
	b[0], b[1] = h.Flags, h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

// IsGSO reports whether the packet is a super-packet to be cut.
func (h Hdr) IsGSO() bool { return h.GSOType&^GSOECN != GSONone }

// TCPMinSndMSS is the smallest segment size Linux's TCP sends
// (TCP_MIN_SND_MSS); a smaller GSOSize is nonsense, and refusing it bounds
// how many segments one super-packet can turn into.
const TCPMinSndMSS = 48
