package hmacsha1

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// blocksGeneric is the SHA-1 compression function of FIPS 180-4 §6.1.2, for
// CPUs without the SHA extensions.
func blocksGeneric(h *[5]uint32, p *byte, n int) {
	data := unsafe.Slice(p, n)
	var w [80]uint32
	for ; len(data) >= blockSize; data = data[blockSize:] {
		for t := 0; t < 16; t++ {
			w[t] = binary.BigEndian.Uint32(data[4*t:])
		}
		for t := 16; t < 80; t++ {
			w[t] = bits.RotateLeft32(w[t-3]^w[t-8]^w[t-14]^w[t-16], 1)
		}
		a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
		for t := 0; t < 80; t++ {
			var f, k uint32
			switch {
			case t < 20:
				f, k = b&c|^b&d, 0x5a827999
			case t < 40:
				f, k = b^c^d, 0x6ed9eba1
			case t < 60:
				f, k = b&c|b&d|c&d, 0x8f1bbcdc
			default:
				f, k = b^c^d, 0xca62c1d6
			}
			a, b, c, d, e = bits.RotateLeft32(a, 5)+f+e+k+w[t], a, bits.RotateLeft32(b, 30), c, d
		}
		h[0] += a
		h[1] += b
		h[2] += c
		h[3] += d
		h[4] += e
	}
}
