//go:build !amd64

package hmacsha1

const supported = false

func blocks2(ha, hb *[5]uint32, pa, pb *byte, n int) {
	blocksGeneric(ha, pa, n)
	blocksGeneric(hb, pb, n)
}
