//go:build !amd64

package csum

const haveAVX2 = false

const minVector = 64

func sumAVX2(p *byte, n int) uint64 { panic("csum: no AVX2") }

func copySumAVX2(dst, src *byte, n int) uint64 { panic("csum: no AVX2") }
