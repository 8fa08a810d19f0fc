//go:build amd64

// Package x86cpu reads the x86 CPU's feature bits, for the assembly kernels
// of the data plane (vaes, hmac2), which need some that
// golang.org/x/sys/cpu does not report (VAES, VPCLMULQDQ, SHA).
package x86cpu

// CPUID returns the registers CPUID leaves for leaf and sub-leaf sub.
func CPUID(leaf, sub uint32) (a, b, c, d uint32)

// XGETBV0 returns the low half of XCR0: which register files the OS saves.
func XGETBV0() (eax uint32)

// Has reports whether bit of v is set.
func Has(v uint32, bit uint) bool { return v&(1<<bit) != 0 }

// AVXEnabled reports whether the CPU has AVX and the OS saves the XMM and
// YMM registers across context switches (OSXSAVE and XCR0).
func AVXEnabled() bool {
	maxLeaf, _, _, _ := CPUID(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := CPUID(1, 0)
	if !Has(c1, 27) || !Has(c1, 28) {
		return false
	}
	return XGETBV0()&6 == 6
}
