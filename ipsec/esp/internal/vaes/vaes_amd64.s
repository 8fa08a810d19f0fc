#include "textflag.h"

// Reverses the bytes of each 128-bit lane: a block's big-endian bytes become
// a little-endian register, whose low dword is then the 32-bit counter.
DATA revMask<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA revMask<>+8(SB)/8, $0x0001020304050607
GLOBL revMask<>(SB), RODATA|NOPTR, $16

// Counter increments for byte-reversed counter blocks: the upper lane one
// ahead of the lower, and two for a step of two blocks.
DATA laneOffsets<>+0(SB)/8, $0
DATA laneOffsets<>+8(SB)/8, $0
DATA laneOffsets<>+16(SB)/8, $1
DATA laneOffsets<>+24(SB)/8, $0
GLOBL laneOffsets<>(SB), RODATA|NOPTR, $32

DATA twoBlocks<>+0(SB)/8, $2
DATA twoBlocks<>+8(SB)/8, $0
DATA twoBlocks<>+16(SB)/8, $2
DATA twoBlocks<>+24(SB)/8, $0
GLOBL twoBlocks<>(SB), RODATA|NOPTR, $32

// x^128 + x^7 + x^2 + x + 1, reflected and folded for the two-step reduction.
DATA gcmPoly<>+0(SB)/8, $0x0000000000000001
DATA gcmPoly<>+8(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), RODATA|NOPTR, $16

// One AES round with the round key at off(AX) on the four counter registers.
#define ROUND4(off) \
	VMOVDQU off(AX), Y12; \
	VAESENC Y12, Y0, Y0 ; \
	VAESENC Y12, Y1, Y1 ; \
	VAESENC Y12, Y2, Y2 ; \
	VAESENC Y12, Y3, Y3

#define ROUND1(off) VAESENC off(AX), Y0, Y0

// func ctrXOR(ks *[15][32]byte, rounds int, ctr *[16]byte, dst, src *byte, n int)
// Requires: AVX2, VAES
TEXT ·ctrXOR(SB), NOSPLIT, $16-48
	MOVQ ks+0(FP), AX
	MOVQ rounds+8(FP), R8
	MOVQ ctr+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), CX
	MOVQ CX, DX
	ANDQ $15, DX // DX: bytes after the last whole block
	SHRQ $4, CX  // CX: whole blocks

	MOVQ R8, R10
	SHLQ $5, R10
	ADDQ AX, R10 // R10: the last round key

	VBROADCASTI128 revMask<>(SB), Y15
	VBROADCASTI128 (BX), Y14
	VPSHUFB        Y15, Y14, Y14
	VPADDD         laneOffsets<>(SB), Y14, Y14 // Y14: counters n, n+1, reversed
	VMOVDQU        twoBlocks<>(SB), Y13
	VMOVDQU        (AX), Y11                   // round key 0

octa:
	CMPQ CX, $8
	JB   pairs
	VPSHUFB Y15, Y14, Y0
	VPADDD  Y13, Y14, Y14
	VPSHUFB Y15, Y14, Y1
	VPADDD  Y13, Y14, Y14
	VPSHUFB Y15, Y14, Y2
	VPADDD  Y13, Y14, Y14
	VPSHUFB Y15, Y14, Y3
	VPADDD  Y13, Y14, Y14
	VPXOR   Y11, Y0, Y0
	VPXOR   Y11, Y1, Y1
	VPXOR   Y11, Y2, Y2
	VPXOR   Y11, Y3, Y3
	ROUND4(32)
	ROUND4(64)
	ROUND4(96)
	ROUND4(128)
	ROUND4(160)
	ROUND4(192)
	ROUND4(224)
	ROUND4(256)
	ROUND4(288)
	CMPQ R8, $12
	JB   octaLast
	ROUND4(320)
	ROUND4(352)
	JE   octaLast
	ROUND4(384)
	ROUND4(416)

octaLast:
	VMOVDQU     (R10), Y12
	VAESENCLAST Y12, Y0, Y0
	VAESENCLAST Y12, Y1, Y1
	VAESENCLAST Y12, Y2, Y2
	VAESENCLAST Y12, Y3, Y3
	VPXOR       (SI), Y0, Y0
	VPXOR       32(SI), Y1, Y1
	VPXOR       64(SI), Y2, Y2
	VPXOR       96(SI), Y3, Y3
	VMOVDQU     Y0, (DI)
	VMOVDQU     Y1, 32(DI)
	VMOVDQU     Y2, 64(DI)
	VMOVDQU     Y3, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $8, CX
	JMP         octa

pairs:
	CMPQ    CX, $2
	JB      single
	VPSHUFB Y15, Y14, Y0
	VPADDD  Y13, Y14, Y14
	VPXOR   Y11, Y0, Y0
	ROUND1(32)
	ROUND1(64)
	ROUND1(96)
	ROUND1(128)
	ROUND1(160)
	ROUND1(192)
	ROUND1(224)
	ROUND1(256)
	ROUND1(288)
	CMPQ    R8, $12
	JB      pairLast
	ROUND1(320)
	ROUND1(352)
	JE      pairLast
	ROUND1(384)
	ROUND1(416)

pairLast:
	VAESENCLAST (R10), Y0, Y0
	VPXOR       (SI), Y0, Y0
	VMOVDQU     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $2, CX
	JMP         pairs

single:
	// At most one whole block and a partial one are left: one more pair of
	// key stream blocks covers them.
	MOVQ    CX, R11
	ORQ     DX, R11
	JZ      done
	VPSHUFB Y15, Y14, Y0
	VPXOR   Y11, Y0, Y0
	ROUND1(32)
	ROUND1(64)
	ROUND1(96)
	ROUND1(128)
	ROUND1(160)
	ROUND1(192)
	ROUND1(224)
	ROUND1(256)
	ROUND1(288)
	CMPQ    R8, $12
	JB      singleLast
	ROUND1(320)
	ROUND1(352)
	JE      singleLast
	ROUND1(384)
	ROUND1(416)

singleLast:
	VAESENCLAST (R10), Y0, Y0
	TESTQ       CX, CX
	JZ          partial
	VPXOR       (SI), X0, X1
	VMOVDQU     X1, (DI)
	ADDQ        $16, SI
	ADDQ        $16, DI
	VEXTRACTI128 $1, Y0, X0

partial:
	TESTQ   DX, DX
	JZ      done
	VMOVDQU X0, stream-16(SP)
	XORQ    R11, R11

partialLoop:
	MOVB stream-16(SP)(R11*1), R12
	XORB (SI)(R11*1), R12
	MOVB R12, (DI)(R11*1)
	INCQ R11
	CMPQ R11, DX
	JB   partialLoop

done:
	VZEROUPPER
	RET

// Reduces the 256-bit product hi:lo (X6:X5), with the middle terms already
// folded in, modulo the GCM polynomial into X8. X14 holds gcmPoly.
#define REDUCE \
	VPCLMULQDQ $0x01, X5, X14, X9; \
	VPSHUFD    $0x4e, X5, X5     ; \
	VPXOR      X9, X5, X5        ; \
	VPCLMULQDQ $0x01, X5, X14, X9; \
	VPSHUFD    $0x4e, X5, X5     ; \
	VPXOR      X9, X5, X5        ; \
	VPXOR      X6, X5, X8

// Folds the middle products X7 into lo X5 and hi X6.
#define FOLDMID \
	VPSLLDQ $8, X7, X9; \
	VPXOR   X9, X5, X5; \
	VPSRLDQ $8, X7, X7; \
	VPXOR   X7, X6, X6

// Accumulates the schoolbook product of data Yd and keys Yk into
// lo Y5, hi Y6 and middle Y7.
#define MULACC(Yd, Yk) \
	VPCLMULQDQ $0x00, Yk, Yd, Y9; \
	VPXOR      Y9, Y5, Y5       ; \
	VPCLMULQDQ $0x11, Yk, Yd, Y9; \
	VPXOR      Y9, Y6, Y6       ; \
	VPCLMULQDQ $0x01, Yk, Yd, Y9; \
	VPXOR      Y9, Y7, Y7       ; \
	VPCLMULQDQ $0x10, Yk, Yd, Y9; \
	VPXOR      Y9, Y7, Y7

// Adds the upper lane of Y5, Y6 and Y7 to their lower lane.
#define FOLDLANES \
	VEXTRACTI128 $1, Y5, X9; \
	VPXOR        X9, X5, X5; \
	VEXTRACTI128 $1, Y6, X9; \
	VPXOR        X9, X6, X6; \
	VEXTRACTI128 $1, Y7, X9; \
	VPXOR        X9, X7, X7

// func ghash(htab *[8][16]byte, acc *[16]byte, data *byte, n int)
// Requires: AVX2, VPCLMULQDQ
TEXT ·ghash(SB), NOSPLIT, $16-32
	MOVQ htab+0(FP), AX
	MOVQ acc+8(FP), BX
	MOVQ data+16(FP), SI
	MOVQ n+24(FP), CX
	MOVQ CX, DX
	ANDQ $15, DX // DX: bytes after the last whole block
	SHRQ $4, CX  // CX: whole blocks

	VBROADCASTI128 revMask<>(SB), Y15
	VMOVDQU        gcmPoly<>(SB), X14
	VMOVDQU        (BX), X8 // the accumulator; VEX clears the upper lane

ghOcta:
	CMPQ    CX, $8
	JB      ghPairs
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VPSHUFB Y15, Y0, Y0
	VPSHUFB Y15, Y1, Y1
	VPSHUFB Y15, Y2, Y2
	VPSHUFB Y15, Y3, Y3
	VPXOR   Y8, Y0, Y0
	VMOVDQU (AX), Y4
	VPCLMULQDQ $0x00, Y4, Y0, Y5
	VPCLMULQDQ $0x11, Y4, Y0, Y6
	VPCLMULQDQ $0x01, Y4, Y0, Y7
	VPCLMULQDQ $0x10, Y4, Y0, Y9
	VPXOR   Y9, Y7, Y7
	VMOVDQU 32(AX), Y4
	MULACC(Y1, Y4)
	VMOVDQU 64(AX), Y4
	MULACC(Y2, Y4)
	VMOVDQU 96(AX), Y4
	MULACC(Y3, Y4)
	FOLDLANES
	FOLDMID
	REDUCE
	ADDQ    $128, SI
	SUBQ    $8, CX
	JMP     ghOcta

ghPairs:
	CMPQ    CX, $2
	JB      ghSingle
	VMOVDQU (SI), Y0
	VPSHUFB Y15, Y0, Y0
	VPXOR   Y8, Y0, Y0
	VMOVDQU 96(AX), Y4
	VPCLMULQDQ $0x00, Y4, Y0, Y5
	VPCLMULQDQ $0x11, Y4, Y0, Y6
	VPCLMULQDQ $0x01, Y4, Y0, Y7
	VPCLMULQDQ $0x10, Y4, Y0, Y9
	VPXOR   Y9, Y7, Y7
	FOLDLANES
	FOLDMID
	REDUCE
	ADDQ    $32, SI
	SUBQ    $2, CX
	JMP     ghPairs

ghSingle:
	TESTQ   CX, CX
	JZ      ghPartial
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0
	VPXOR   X8, X0, X0
	VMOVDQU 112(AX), X4
	VPCLMULQDQ $0x00, X4, X0, X5
	VPCLMULQDQ $0x11, X4, X0, X6
	VPCLMULQDQ $0x01, X4, X0, X7
	VPCLMULQDQ $0x10, X4, X0, X9
	VPXOR   X9, X7, X7
	FOLDMID
	REDUCE
	ADDQ    $16, SI

ghPartial:
	// A partial last block is hashed zero-padded, through the stack.
	TESTQ   DX, DX
	JZ      ghDone
	VPXOR   X0, X0, X0
	VMOVDQU X0, block-16(SP)
	XORQ    R11, R11

ghCopy:
	MOVB (SI)(R11*1), R12
	MOVB R12, block-16(SP)(R11*1)
	INCQ R11
	CMPQ R11, DX
	JB   ghCopy
	LEAQ block-16(SP), SI
	MOVQ $1, CX
	XORQ DX, DX
	JMP  ghSingle

ghDone:
	VMOVDQU X8, (BX)
	VZEROUPPER
	RET

// func finish(ks *[15][32]byte, rounds int, htab *[8][16]byte, acc *[16]byte, j0 *[16]byte, lens *[16]byte, tag *[16]byte)
// Requires: AVX, AES, PCLMULQDQ
TEXT ·finish(SB), NOSPLIT, $0-56
	MOVQ ks+0(FP), R10
	MOVQ rounds+8(FP), R8
	MOVQ htab+16(FP), AX
	MOVQ acc+24(FP), BX
	MOVQ j0+32(FP), DI
	MOVQ lens+40(FP), SI
	MOVQ tag+48(FP), DX

	VMOVDQU revMask<>(SB), X15
	VMOVDQU gcmPoly<>(SB), X14

	// The last GHASH block, the lengths, and E(K, J0) alongside it.
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0
	VPXOR   (BX), X0, X0
	VMOVDQU (DI), X1
	VPXOR   (R10), X1, X1
	VMOVDQU 112(AX), X4
	VPCLMULQDQ $0x00, X4, X0, X5
	VPCLMULQDQ $0x11, X4, X0, X6
	VPCLMULQDQ $0x01, X4, X0, X7
	VPCLMULQDQ $0x10, X4, X0, X9
	VPXOR   X9, X7, X7
	VAESENC 32(R10), X1, X1
	VAESENC 64(R10), X1, X1
	VAESENC 96(R10), X1, X1
	VAESENC 128(R10), X1, X1
	FOLDMID
	VAESENC 160(R10), X1, X1
	VAESENC 192(R10), X1, X1
	VAESENC 224(R10), X1, X1
	REDUCE
	VAESENC 256(R10), X1, X1
	VAESENC 288(R10), X1, X1
	MOVQ    R8, CX
	SHLQ    $5, CX
	CMPQ    R8, $12
	JB      finishLast
	VAESENC 320(R10), X1, X1
	VAESENC 352(R10), X1, X1
	JE      finishLast
	VAESENC 384(R10), X1, X1
	VAESENC 416(R10), X1, X1

finishLast:
	VAESENCLAST (R10)(CX*1), X1, X1
	VPSHUFB     X15, X8, X8
	VPXOR       X1, X8, X8
	VMOVDQU     X8, (DX)
	RET

// Hashes the two blocks at (SI), byte-reflected, with the two powers at (R8)
// and their Karatsuba halves at (R9): lo Y5, hi Y6, middle Y7 accumulate.
#define KARA2 \
	VMOVDQU    (SI), Y0               \
	VPSHUFB    Y15, Y0, Y0            \
	VPSHUFD    $0x4e, Y0, Y1          \
	VPXOR      Y0, Y1, Y1             \
	VPCLMULQDQ $0x00, (R8), Y0, Y9    \
	VPXOR      Y9, Y5, Y5             \
	VPCLMULQDQ $0x11, (R8), Y0, Y9    \
	VPXOR      Y9, Y6, Y6             \
	VPCLMULQDQ $0x00, (R9), Y1, Y9    \
	VPXOR      Y9, Y7, Y7

// The same for the one block in X0, already reflected. The products land in
// X9 first: a VEX.128 write clears the upper lane, so Y9 carries zeros there.
#define KARA1 \
	VPSHUFD    $0x4e, X0, X1          \
	VPXOR      X0, X1, X1             \
	VPCLMULQDQ $0x00, (R8), X0, X9    \
	VPXOR      Y9, Y5, Y5             \
	VPCLMULQDQ $0x11, (R8), X0, X9    \
	VPXOR      Y9, Y6, Y6             \
	VPCLMULQDQ $0x00, (R9), X1, X9    \
	VPXOR      Y9, Y7, Y7

// func tagAggregated(pow *[maxPowers][16]byte, kara *[maxPowers][16]byte, first int, aad *byte, aadLen int, ct *byte, ctLen int, ks *[15][32]byte, rounds int, j0 *[16]byte, tag *[16]byte)
//
// The whole GHASH of one message with a single reduction: block i of the
// padded AAD, the padded ciphertext and the lengths block is multiplied by
// H^(T-i), T blocks in all, and the products are summed. first = maxPowers-T
// indexes H^T in the tables, which run from H^maxPowers down to H^1.
// Requires: AVX2, AES, VPCLMULQDQ
TEXT ·tagAggregated(SB), NOSPLIT, $32-88
	MOVQ pow+0(FP), R8
	MOVQ kara+8(FP), R9
	MOVQ first+16(FP), AX
	SHLQ $4, AX
	ADDQ AX, R8
	ADDQ AX, R9

	// E(K, J0) first: it depends on nothing the hash does.
	MOVQ    ks+56(FP), R10
	MOVQ    rounds+64(FP), R11
	MOVQ    j0+72(FP), AX
	VMOVDQU (AX), X10
	VPXOR   (R10), X10, X10
	VAESENC 32(R10), X10, X10
	VAESENC 64(R10), X10, X10
	VAESENC 96(R10), X10, X10
	VAESENC 128(R10), X10, X10
	VAESENC 160(R10), X10, X10
	VAESENC 192(R10), X10, X10
	VAESENC 224(R10), X10, X10
	VAESENC 256(R10), X10, X10
	VAESENC 288(R10), X10, X10
	MOVQ    R11, CX
	SHLQ    $5, CX
	CMPQ    R11, $12
	JB      tagEncLast
	VAESENC 320(R10), X10, X10
	VAESENC 352(R10), X10, X10
	JE      tagEncLast
	VAESENC 384(R10), X10, X10
	VAESENC 416(R10), X10, X10

tagEncLast:
	VAESENCLAST (R10)(CX*1), X10, X10

	VBROADCASTI128 revMask<>(SB), Y15
	VMOVDQU        gcmPoly<>(SB), X14
	VPXOR          Y5, Y5, Y5
	VPXOR          Y6, Y6, Y6
	VPXOR          Y7, Y7, Y7

	// The lengths block waits on the stack for the third segment.
	MOVQ   aadLen+32(FP), AX
	SHLQ   $3, AX
	BSWAPQ AX
	MOVQ   AX, lens-16(SP)
	MOVQ   ctLen+48(FP), AX
	SHLQ   $3, AX
	BSWAPQ AX
	MOVQ   AX, lens-8(SP)

	MOVQ aad+24(FP), SI
	MOVQ aadLen+32(FP), DX
	MOVQ $2, R12 // segments left after this one: ciphertext, lengths

tagSegment:
	MOVQ DX, CX
	SHRQ $5, CX // pairs of whole blocks
	JZ   tagSingle

tagPairs:
	KARA2
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  tagPairs

tagSingle:
	TESTQ   $16, DX
	JZ      tagPartial
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0
	KARA1
	ADDQ    $16, SI
	ADDQ    $16, R8
	ADDQ    $16, R9

tagPartial:
	ANDQ    $15, DX
	JZ      tagNext
	VPXOR   X0, X0, X0
	VMOVDQU X0, block-32(SP)
	XORQ    CX, CX

tagCopy:
	MOVB (SI)(CX*1), AX
	MOVB AX, block-32(SP)(CX*1)
	INCQ CX
	CMPQ CX, DX
	JB   tagCopy
	VMOVDQU block-32(SP), X0
	VPSHUFB X15, X0, X0
	KARA1
	ADDQ    $16, R8
	ADDQ    $16, R9

tagNext:
	DECQ R12
	JS   tagReduce
	JNZ  tagCiphertext
	LEAQ lens-16(SP), SI
	MOVQ $16, DX
	JMP  tagSegment

tagCiphertext:
	MOVQ ct+40(FP), SI
	MOVQ ctLen+48(FP), DX
	JMP  tagSegment

tagReduce:
	FOLDLANES
	VPXOR X5, X7, X7
	VPXOR X6, X7, X7
	FOLDMID
	REDUCE
	VPSHUFB X15, X8, X8
	VPXOR   X10, X8, X8
	MOVQ    tag+80(FP), AX
	VMOVDQU X8, (AX)
	VZEROUPPER
	RET

// func cbcEncrypt(ks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int)
//
// One block after the other: each depends on the last ciphertext block, so
// this runs at the latency of AESENC, with the round keys read from memory
// beside the critical path.
// Requires: AVX, AES
TEXT ·cbcEncrypt(SB), NOSPLIT, $0-48
	MOVQ ks+0(FP), AX
	MOVQ rounds+8(FP), R8
	MOVQ iv+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), CX
	MOVQ R8, R10
	SHLQ $5, R10
	ADDQ AX, R10
	VMOVDQU (BX), X0

cbcEncLoop:
	TESTQ   CX, CX
	JZ      cbcEncDone
	VPXOR   (SI), X0, X0
	VPXOR   (AX), X0, X0
	VAESENC 32(AX), X0, X0
	VAESENC 64(AX), X0, X0
	VAESENC 96(AX), X0, X0
	VAESENC 128(AX), X0, X0
	VAESENC 160(AX), X0, X0
	VAESENC 192(AX), X0, X0
	VAESENC 224(AX), X0, X0
	VAESENC 256(AX), X0, X0
	VAESENC 288(AX), X0, X0
	CMPQ    R8, $12
	JB      cbcEncLast
	VAESENC 320(AX), X0, X0
	VAESENC 352(AX), X0, X0
	JE      cbcEncLast
	VAESENC 384(AX), X0, X0
	VAESENC 416(AX), X0, X0

cbcEncLast:
	VAESENCLAST (R10), X0, X0
	VMOVDQU     X0, (DI)
	ADDQ        $16, SI
	ADDQ        $16, DI
	SUBQ        $16, CX
	JMP         cbcEncLoop

cbcEncDone:
	VMOVDQU X0, (BX)
	RET

// One decryption round with the key at off(AX) on the four block pairs.
#define DROUND4(off) \
	VMOVDQU off(AX), Y12 \
	VAESDEC Y12, Y0, Y0  \
	VAESDEC Y12, Y1, Y1  \
	VAESDEC Y12, Y2, Y2  \
	VAESDEC Y12, Y3, Y3

#define DROUND1(off) VAESDEC off(AX), Y0, Y0

// func cbcDecrypt(dks *[15][32]byte, rounds int, iv *[16]byte, dst, src *byte, n int)
//
// Blocks decrypt independently, eight at a time, two per register; each is
// then XORed with the ciphertext block before it. Every ciphertext block a
// step needs is read before its plaintext is written, so dst may be src.
// Requires: AVX2, VAES
TEXT ·cbcDecrypt(SB), NOSPLIT, $0-48
	MOVQ dks+0(FP), AX
	MOVQ rounds+8(FP), R8
	MOVQ iv+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), CX
	MOVQ R8, R10
	SHLQ $5, R10
	ADDQ AX, R10
	VMOVDQU (AX), Y11
	VMOVDQU (BX), X13 // the ciphertext block before the next one

cbcDecOcta:
	CMPQ           CX, $128
	JB             cbcDecPairs
	VMOVDQU        (SI), Y0
	VMOVDQU        32(SI), Y1
	VMOVDQU        64(SI), Y2
	VMOVDQU        96(SI), Y3
	VINSERTI128    $1, (SI), Y13, Y4 // previous blocks: (prev, C0)
	VMOVDQU        16(SI), Y5        // (C1, C2)
	VMOVDQU        48(SI), Y6
	VMOVDQU        80(SI), Y7
	VMOVDQU        112(SI), X13      // C7, before the next step
	VPXOR          Y11, Y0, Y0
	VPXOR          Y11, Y1, Y1
	VPXOR          Y11, Y2, Y2
	VPXOR          Y11, Y3, Y3
	DROUND4(32)
	DROUND4(64)
	DROUND4(96)
	DROUND4(128)
	DROUND4(160)
	DROUND4(192)
	DROUND4(224)
	DROUND4(256)
	DROUND4(288)
	CMPQ           R8, $12
	JB             cbcDecOctaLast
	DROUND4(320)
	DROUND4(352)
	JE             cbcDecOctaLast
	DROUND4(384)
	DROUND4(416)

cbcDecOctaLast:
	VMOVDQU     (R10), Y12
	VAESDECLAST Y12, Y0, Y0
	VAESDECLAST Y12, Y1, Y1
	VAESDECLAST Y12, Y2, Y2
	VAESDECLAST Y12, Y3, Y3
	VPXOR       Y4, Y0, Y0
	VPXOR       Y5, Y1, Y1
	VPXOR       Y6, Y2, Y2
	VPXOR       Y7, Y3, Y3
	VMOVDQU     Y0, (DI)
	VMOVDQU     Y1, 32(DI)
	VMOVDQU     Y2, 64(DI)
	VMOVDQU     Y3, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $128, CX
	JMP         cbcDecOcta

cbcDecPairs:
	CMPQ        CX, $32
	JB          cbcDecSingle
	VMOVDQU     (SI), Y0
	VINSERTI128 $1, (SI), Y13, Y4
	VMOVDQU     16(SI), X13
	VPXOR       Y11, Y0, Y0
	DROUND1(32)
	DROUND1(64)
	DROUND1(96)
	DROUND1(128)
	DROUND1(160)
	DROUND1(192)
	DROUND1(224)
	DROUND1(256)
	DROUND1(288)
	CMPQ        R8, $12
	JB          cbcDecPairLast
	DROUND1(320)
	DROUND1(352)
	JE          cbcDecPairLast
	DROUND1(384)
	DROUND1(416)

cbcDecPairLast:
	VAESDECLAST (R10), Y0, Y0
	VPXOR       Y4, Y0, Y0
	VMOVDQU     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $32, CX
	JMP         cbcDecPairs

cbcDecSingle:
	TESTQ   CX, CX
	JZ      cbcDecDone
	VMOVDQU (SI), X0
	VMOVDQA X13, X4
	VMOVDQU X0, X13
	VPXOR   X11, X0, X0
	VAESDEC 32(AX), X0, X0
	VAESDEC 64(AX), X0, X0
	VAESDEC 96(AX), X0, X0
	VAESDEC 128(AX), X0, X0
	VAESDEC 160(AX), X0, X0
	VAESDEC 192(AX), X0, X0
	VAESDEC 224(AX), X0, X0
	VAESDEC 256(AX), X0, X0
	VAESDEC 288(AX), X0, X0
	CMPQ    R8, $12
	JB      cbcDecSingleLast
	VAESDEC 320(AX), X0, X0
	VAESDEC 352(AX), X0, X0
	JE      cbcDecSingleLast
	VAESDEC 384(AX), X0, X0
	VAESDEC 416(AX), X0, X0

cbcDecSingleLast:
	VAESDECLAST (R10), X0, X0
	VPXOR       X4, X0, X0
	VMOVDQU     X0, (DI)

cbcDecDone:
	VMOVDQU X13, (BX)
	VZEROUPPER
	RET

// Four CBC chains side by side: one AES round of each before the next round,
// so that the four AESENC latencies overlap.
#define ROUNDCBC4(off) \
	VMOVDQU off(AX), X4; \
	VAESENC X4, X0, X0; \
	VAESENC X4, X1, X1; \
	VAESENC X4, X2, X2; \
	VAESENC X4, X3, X3

// func cbcEncrypt4(ks *[15][32]byte, rounds int, ivs *[4]*byte, msgs *[4]*byte, n int)
//
// Encrypts four messages of n bytes (a multiple of 16) in place, each from
// its own IV.
// Requires: AVX, AES
TEXT ·cbcEncrypt4(SB), NOSPLIT, $0-40
	MOVQ ks+0(FP), AX
	MOVQ rounds+8(FP), R12
	MOVQ ivs+16(FP), BX
	MOVQ msgs+24(FP), DX
	MOVQ n+32(FP), CX
	MOVQ R12, R13
	SHLQ $5, R13
	ADDQ AX, R13 // R13: the last round key

	MOVQ    (BX), R8
	VMOVDQU (R8), X0
	MOVQ    8(BX), R8
	VMOVDQU (R8), X1
	MOVQ    16(BX), R8
	VMOVDQU (R8), X2
	MOVQ    24(BX), R8
	VMOVDQU (R8), X3
	MOVQ    (DX), R8
	MOVQ    8(DX), R9
	MOVQ    16(DX), R10
	MOVQ    24(DX), R11
	XORQ    SI, SI

cbc4Loop:
	CMPQ    SI, CX
	JAE     cbc4Done
	VMOVDQU (AX), X5
	VPXOR   (R8)(SI*1), X0, X0
	VPXOR   (R9)(SI*1), X1, X1
	VPXOR   (R10)(SI*1), X2, X2
	VPXOR   (R11)(SI*1), X3, X3
	VPXOR   X5, X0, X0
	VPXOR   X5, X1, X1
	VPXOR   X5, X2, X2
	VPXOR   X5, X3, X3
	ROUNDCBC4(32)
	ROUNDCBC4(64)
	ROUNDCBC4(96)
	ROUNDCBC4(128)
	ROUNDCBC4(160)
	ROUNDCBC4(192)
	ROUNDCBC4(224)
	ROUNDCBC4(256)
	ROUNDCBC4(288)
	CMPQ    R12, $12
	JB      cbc4Last
	ROUNDCBC4(320)
	ROUNDCBC4(352)
	JE      cbc4Last
	ROUNDCBC4(384)
	ROUNDCBC4(416)

cbc4Last:
	VMOVDQU     (R13), X4
	VAESENCLAST X4, X0, X0
	VAESENCLAST X4, X1, X1
	VAESENCLAST X4, X2, X2
	VAESENCLAST X4, X3, X3
	VMOVDQU     X0, (R8)(SI*1)
	VMOVDQU     X1, (R9)(SI*1)
	VMOVDQU     X2, (R10)(SI*1)
	VMOVDQU     X3, (R11)(SI*1)
	ADDQ        $16, SI
	JMP         cbc4Loop

cbc4Done:
	RET
