package hmac2

import "github.com/ipseclab/ipseclab/ipsec/esp/internal/x86cpu"

//go:generate go run gen_blocks2.go

// In sha1blocks2_amd64.s and sha256blocks2_amd64.s.
//
//go:noescape
func sha1Blocks2SHANI(ha, hb *[8]uint32, pa, pb *byte, n int)

//go:noescape
func sha256Blocks2SHANI(ha, hb *[8]uint32, pa, pb *byte, n int)

// SHA (leaf 7 EBX bit 29), SSSE3 and SSE4.1 (leaf 1 ECX bits 9 and 19);
// SHA-256's kernel also uses a VEX-encoded add.
var supported = func() (s [2]bool) {
	maxLeaf, _, _, _ := x86cpu.CPUID(0, 0)
	if maxLeaf < 7 {
		return s
	}
	_, _, c1, _ := x86cpu.CPUID(1, 0)
	_, b7, _, _ := x86cpu.CPUID(7, 0)
	s[SHA1] = x86cpu.Has(b7, 29) && x86cpu.Has(c1, 9) && x86cpu.Has(c1, 19)
	s[SHA256] = s[SHA1] && x86cpu.AVXEnabled()
	return s
}()

// sha1Blocks2 compresses n bytes (whole blocks) of pa into ha and of pb into
// hb; so does sha256Blocks2.
func sha1Blocks2(ha, hb *[8]uint32, pa, pb *byte, n int) {
	if supported[SHA1] {
		sha1Blocks2SHANI(ha, hb, pa, pb, n)
		return
	}
	sha1Generic(ha, pa, n)
	sha1Generic(hb, pb, n)
}

func sha256Blocks2(ha, hb *[8]uint32, pa, pb *byte, n int) {
	if supported[SHA256] {
		sha256Blocks2SHANI(ha, hb, pa, pb, n)
		return
	}
	sha256Generic(ha, pa, n)
	sha256Generic(hb, pb, n)
}
