//go:build !amd64

package hmac2

var supported [2]bool

func sha1Blocks2(ha, hb *[8]uint32, pa, pb *byte, n int) {
	sha1Generic(ha, pa, n)
	sha1Generic(hb, pb, n)
}

func sha256Blocks2(ha, hb *[8]uint32, pa, pb *byte, n int) {
	sha256Generic(ha, pa, n)
	sha256Generic(hb, pb, n)
}
