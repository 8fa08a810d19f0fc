#include "textflag.h"

// The data is read as 64-bit little-endian words w. The 64-bit lanes of Y0
// and Y1 add their low 32-bit halves, those of Y2 and Y3 their high halves,
// so nothing overflows before 2^32 iterations. At the end, modulo 2^64-1
// (which is what an end-around carry sum computes), 2^32·H is H<<32 plus
// H>>32, and every lane is added into one register with carries.

DATA low32<>+0(SB)/8, $0x00000000ffffffff
GLOBL low32<>(SB), RODATA|NOPTR, $8

// Sums the lanes of Y0..Y3 into AX with end-around carry: L = Y0+Y1,
// H = Y2+Y3, then the lanes of L, H<<32 and H>>32. Vector moves leave the
// flags alone, so one ADC chain runs through.
#define REDUCE \
	VPADDQ       Y1, Y0, Y0 \
	VPADDQ       Y3, Y2, Y2 \
	VPSLLQ       $32, Y2, Y1 \
	VPSRLQ       $32, Y2, Y2 \
	XORQ         AX, AX \
	VMOVQ        X0, R8 \
	ADDQ         R8, AX \
	VPEXTRQ      $1, X0, R8 \
	ADCQ         R8, AX \
	VEXTRACTI128 $1, Y0, X0 \
	VMOVQ        X0, R8 \
	ADCQ         R8, AX \
	VPEXTRQ      $1, X0, R8 \
	ADCQ         R8, AX \
	VMOVQ        X1, R8 \
	ADCQ         R8, AX \
	VPEXTRQ      $1, X1, R8 \
	ADCQ         R8, AX \
	VEXTRACTI128 $1, Y1, X1 \
	VMOVQ        X1, R8 \
	ADCQ         R8, AX \
	VPEXTRQ      $1, X1, R8 \
	ADCQ         R8, AX \
	VMOVQ        X2, R8 \
	ADCQ         R8, AX \
	VPEXTRQ      $1, X2, R8 \
	ADCQ         R8, AX \
	VEXTRACTI128 $1, Y2, X2 \
	VMOVQ        X2, R8 \
	ADCQ         R8, AX \
	VPEXTRQ      $1, X2, R8 \
	ADCQ         R8, AX \
	ADCQ         $0, AX \
	ADCQ         $0, AX

// Adds the 32-byte register Yd to the accumulators: low halves to Ylo,
// high halves to Yhi.
#define ACC(Yd, Ylo, Yhi) \
	VPAND  Y15, Yd, Y14 \
	VPADDQ Y14, Ylo, Ylo \
	VPSRLQ $32, Yd, Y14 \
	VPADDQ Y14, Yhi, Yhi

// func sumAVX2(p *byte, n int) uint64
TEXT ·sumAVX2(SB), NOSPLIT, $0-24
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	VPBROADCASTQ low32<>(SB), Y15
	VPXOR        Y0, Y0, Y0
	VPXOR        Y1, Y1, Y1
	VPXOR        Y2, Y2, Y2
	VPXOR        Y3, Y3, Y3

sumLoop:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	ACC(Y4, Y0, Y2)
	ACC(Y5, Y1, Y3)
	ADDQ    $64, SI
	SUBQ    $64, CX
	JNZ     sumLoop

	REDUCE
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET

// func copySumAVX2(dst, src *byte, n int) uint64
TEXT ·copySumAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTQ low32<>(SB), Y15
	VPXOR        Y0, Y0, Y0
	VPXOR        Y1, Y1, Y1
	VPXOR        Y2, Y2, Y2
	VPXOR        Y3, Y3, Y3

copyLoop:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VMOVDQU Y4, (DI)
	VMOVDQU Y5, 32(DI)
	ACC(Y4, Y0, Y2)
	ACC(Y5, Y1, Y3)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $64, CX
	JNZ     copyLoop

	REDUCE
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
