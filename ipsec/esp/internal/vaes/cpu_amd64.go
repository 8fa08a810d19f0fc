package vaes

import "github.com/ipseclab/ipseclab/ipsec/esp/internal/x86cpu"

// The kernels, in vaes_amd64.s.

// ctrXOR XORs n bytes from src into dst with AES in counter mode: the key
// stream is E(K, ctr), E(K, inc32(ctr)), … . dst and src may be the same.
//
//go:noescape
func ctrXOR(ks *[15][32]byte, rounds int, ctr *[16]byte, dst, src *byte, n int)

// ghash absorbs n bytes of data, zero-padded to a whole block, into the
// byte-reflected accumulator acc.
//
//go:noescape
func ghash(htab *[8][16]byte, acc *[16]byte, data *byte, n int)

// finish absorbs the lengths block and writes the tag: GHASH, reflected back
// to bytes, XOR E(K, J0).
//
//go:noescape
func finish(ks *[15][32]byte, rounds int, htab *[8][16]byte, acc *[16]byte, j0 *[16]byte, lens *[16]byte, tag *[16]byte)

// tagAggregated computes the tag of a message whose AAD, ciphertext and
// lengths block take at most maxPowers blocks, with one reduction.
//
//go:noescape
func tagAggregated(pow, kara *[maxPowers][16]byte, first int, aad *byte, aadLen int, ct *byte, ctLen int, ks *[15][32]byte, rounds int, j0 *[16]byte, tag *[16]byte)

// cbcEncrypt and cbcDecrypt run CBC over n bytes, a multiple of 16, and
// leave the last ciphertext block in iv for the next call.
//
//go:noescape
func cbcEncrypt(ks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int)

//go:noescape
func cbcDecrypt(dks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int)

// cbcEncrypt4 encrypts four messages of n bytes in place, each from its own
// IV, with their CBC chains interleaved.
//
//go:noescape
func cbcEncrypt4(ks *[15][32]byte, rounds int, ivs *[4]*byte, msgs *[4]*byte, n int)

var supported = func() bool {
	if !x86cpu.AVXEnabled() {
		return false
	}
	_, _, c1, _ := x86cpu.CPUID(1, 0)
	_, b7, c7, _ := x86cpu.CPUID(7, 0)
	// AES-NI, PCLMULQDQ, AVX2, VAES, VPCLMULQDQ.
	return x86cpu.Has(c1, 25) && x86cpu.Has(c1, 1) &&
		x86cpu.Has(b7, 5) && x86cpu.Has(c7, 9) && x86cpu.Has(c7, 10)
}()
