package csum

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2

// minVector is the granule of the AVX2 loops.
const minVector = 64

// sumAVX2 sums n bytes, n a multiple of minVector.
//
//go:noescape
func sumAVX2(p *byte, n int) uint64

// copySumAVX2 copies n bytes from src to dst and sums them, n a multiple of
// minVector.
//
//go:noescape
func copySumAVX2(dst, src *byte, n int) uint64
