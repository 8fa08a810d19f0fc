// Package csum is the Internet checksum (RFC 1071) for the TUN device's
// segmentation and coalescing: every TCP segment a gateway splits from a
// super-packet needs its checksum computed, and every segment it coalesces
// needs its checksum verified, so the checksum runs over every byte of the
// tunnel's traffic twice. CopyAndSum does it while the bytes are being copied
// anyway, in one pass with AVX2 where the CPU has it.
//
// Sums are kept in a 64-bit accumulator of the data read as little-endian
// words; the one's complement sum is independent of byte order up to a final
// swap, which Fold does (RFC 1071 §2(B)). Pieces of one checksummed range can
// be summed separately and added with Add, as long as each piece starts at an
// even offset of the range.
package csum

import (
	"encoding/binary"
	"math/bits"
)

// Sum is a partial one's complement sum.
type Sum uint64

// Add combines two partial sums with end-around carry.
func (s Sum) Add(t Sum) Sum {
	r, c := bits.Add64(uint64(s), uint64(t), 0)
	return Sum(r + c)
}

// Fold reduces the sum to the 16-bit one's complement sum in network byte
// order. A checksum field holds its complement, ^Fold.
func (s Sum) Fold() uint16 {
	v := uint64(s)
	v = (v & 0xffffffff) + (v >> 32) // ≤ 33 bits
	v = (v & 0xffffffff) + (v >> 32)
	v = (v & 0xffff) + (v >> 16)
	v = (v & 0xffff) + (v >> 16)
	v = (v & 0xffff) + (v >> 16)
	return bits.ReverseBytes16(uint16(v))
}

// Bytes sums b.
func Bytes(b []byte) Sum {
	if len(b) >= minVector && haveAVX2 {
		n := len(b) &^ (minVector - 1)
		s := Sum(sumAVX2(&b[0], n))
		return s.Add(generic(b[n:]))
	}
	return generic(b)
}

// CopyAndSum copies src to dst, which must be at least as long, and sums the
// bytes copied.
func CopyAndSum(dst, src []byte) Sum {
	_ = dst[:len(src)]
	if len(src) >= minVector && haveAVX2 {
		n := len(src) &^ (minVector - 1)
		s := Sum(copySumAVX2(&dst[0], &src[0], n))
		copy(dst[n:], src[n:])
		return s.Add(generic(src[n:]))
	}
	copy(dst, src)
	return generic(src)
}

// PseudoHeaderIPv4 sums the IPv4 pseudo-header of TCP and UDP (RFC 9293
// §3.1): the addresses, the protocol and the transport length.
func PseudoHeaderIPv4(src, dst []byte, proto uint8, length int) Sum {
	// In the little-endian reading, the 16-bit word "0, proto" is proto<<8
	// and the big-endian length has its bytes swapped.
	return Sum(uint64(binary.LittleEndian.Uint32(src)) + uint64(binary.LittleEndian.Uint32(dst)) +
		uint64(proto)<<8 + uint64(bits.ReverseBytes16(uint16(length))))
}

// generic sums 8 bytes at a time with carries, then the tail.
func generic(b []byte) Sum {
	var acc, carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), carry)
		b = b[8:]
	}
	// Any 16-bit word may be added in any 16-bit lane: Fold adds them all.
	var tail uint64
	if len(b) >= 4 {
		tail = uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.LittleEndian.Uint16(b)) << 32
		b = b[2:]
	}
	if len(b) == 1 {
		// The odd last byte is the high byte of a zero-padded word in
		// network order: the low byte in this reading.
		tail += uint64(b[0]) << 48
	}
	acc, carry = bits.Add64(acc, tail, carry)
	return Sum(acc + carry)
}
