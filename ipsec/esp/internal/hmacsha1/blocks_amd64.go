package hmacsha1

import "github.com/ipseclab/ipseclab/ipsec/esp/internal/x86cpu"

//go:generate go run gen_blocks2.go

// blocks2SHANI is in blocks2_amd64.s.
//
//go:noescape
func blocks2SHANI(ha, hb *[5]uint32, pa, pb *byte, n int)

// SHA (leaf 7 EBX bit 29), SSSE3 and SSE4.1 (leaf 1 ECX bits 9 and 19).
var supported = func() bool {
	maxLeaf, _, _, _ := x86cpu.CPUID(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := x86cpu.CPUID(1, 0)
	_, b7, _, _ := x86cpu.CPUID(7, 0)
	return x86cpu.Has(b7, 29) && x86cpu.Has(c1, 9) && x86cpu.Has(c1, 19)
}()

// blocks2 compresses n bytes (whole blocks) of pa into ha and of pb into hb.
func blocks2(ha, hb *[5]uint32, pa, pb *byte, n int) {
	if supported {
		blocks2SHANI(ha, hb, pa, pb, n)
		return
	}
	blocksGeneric(ha, pa, n)
	blocksGeneric(hb, pb, n)
}
