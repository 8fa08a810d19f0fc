//go:build !amd64

package vaes

const supported = false

func ctrXOR(ks *[15][32]byte, rounds int, ctr *[16]byte, dst, src *byte, n int) {
	panic("vaes: no VAES on this architecture")
}

func ghash(htab *[8][16]byte, acc *[16]byte, data *byte, n int) {
	panic("vaes: no VAES on this architecture")
}

func finish(ks *[15][32]byte, rounds int, htab *[8][16]byte, acc *[16]byte, j0 *[16]byte, lens *[16]byte, tag *[16]byte) {
	panic("vaes: no VAES on this architecture")
}

func tagAggregated(pow, kara *[maxPowers][16]byte, first int, aad *byte, aadLen int, ct *byte, ctLen int, ks *[15][32]byte, rounds int, j0 *[16]byte, tag *[16]byte) {
	panic("vaes: no VAES on this architecture")
}

func cbcEncrypt(ks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int) {
	panic("vaes: no VAES on this architecture")
}

func cbcDecrypt(dks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int) {
	panic("vaes: no VAES on this architecture")
}

func cbcEncrypt4(ks *[15][32]byte, rounds int, ivs *[4]*byte, msgs *[4]*byte, n int) {
	panic("vaes: no VAES on this architecture")
}
