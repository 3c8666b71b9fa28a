//go:build amd64 && !noasm

#include "textflag.h"

// func dw3x3s1AVX2(dst, r0, r1, r2, w *float32, bias float32, n int)
TEXT ·dw3x3s1AVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), SI
	MOVQ r1+16(FP), R8
	MOVQ r2+24(FP), R9
	MOVQ w+32(FP), AX
	MOVQ n+48(FP), CX
	VBROADCASTSS bias+40(FP), Y15
	VBROADCASTSS 0(AX), Y0
	VBROADCASTSS 4(AX), Y1
	VBROADCASTSS 8(AX), Y2
	VBROADCASTSS 12(AX), Y3
	VBROADCASTSS 16(AX), Y4
	VBROADCASTSS 20(AX), Y5
	VBROADCASTSS 24(AX), Y6
	VBROADCASTSS 28(AX), Y7
	VBROADCASTSS 32(AX), Y8
	XORQ BX, BX

s1loop:
	CMPQ CX, $8
	JLT  s1done
	// Three partial sums (one per input row) keep the FMA chains short.
	VMOVAPS     Y15, Y9
	VMULPS      (R8)(BX*1), Y3, Y10
	VMULPS      (R9)(BX*1), Y6, Y11
	VFMADD231PS (SI)(BX*1), Y0, Y9
	VFMADD231PS 4(R8)(BX*1), Y4, Y10
	VFMADD231PS 4(R9)(BX*1), Y7, Y11
	VFMADD231PS 4(SI)(BX*1), Y1, Y9
	VFMADD231PS 8(R8)(BX*1), Y5, Y10
	VFMADD231PS 8(R9)(BX*1), Y8, Y11
	VFMADD231PS 8(SI)(BX*1), Y2, Y9
	VADDPS      Y10, Y9, Y9
	VADDPS      Y11, Y9, Y9
	VMOVUPS     Y9, (DI)(BX*1)
	ADDQ        $32, BX
	SUBQ        $8, CX
	JMP         s1loop

s1done:
	VZEROUPPER
	RET

// EVENS(off, base, dst): dst = base[off/4 + 2i], i < 8, using Y12/Y13 as
// scratch: two loads, an in-lane shuffle and a cross-lane permute.
#define EVENS(off, base, dst) \
	VMOVUPS off(base)(BX*2), Y12 \
	VMOVUPS off+32(base)(BX*2), Y13 \
	VSHUFPS $0x88, Y13, Y12, dst \
	VPERMPD $0xD8, dst, dst

#define ODDS(off, base, dst) \
	VMOVUPS off(base)(BX*2), Y12 \
	VMOVUPS off+32(base)(BX*2), Y13 \
	VSHUFPS $0xDD, Y13, Y12, dst \
	VPERMPD $0xD8, dst, dst

// func dw3x3s2AVX2(dst, r0, r1, r2, w *float32, bias float32, n int)
TEXT ·dw3x3s2AVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), SI
	MOVQ r1+16(FP), R8
	MOVQ r2+24(FP), R9
	MOVQ w+32(FP), AX
	MOVQ n+48(FP), CX
	VBROADCASTSS 0(AX), Y0
	VBROADCASTSS 4(AX), Y1
	VBROADCASTSS 8(AX), Y2
	VBROADCASTSS 12(AX), Y3
	VBROADCASTSS 16(AX), Y4
	VBROADCASTSS 20(AX), Y5
	VBROADCASTSS 24(AX), Y6
	VBROADCASTSS 28(AX), Y7
	VBROADCASTSS 32(AX), Y8
	XORQ BX, BX

s2loop:
	CMPQ CX, $8
	JLT  s2done
	VBROADCASTSS bias+40(FP), Y9
	EVENS(0, SI, Y10)
	VFMADD231PS Y10, Y0, Y9
	ODDS(0, SI, Y11)
	VFMADD231PS Y11, Y1, Y9
	EVENS(8, SI, Y14)
	VFMADD231PS Y14, Y2, Y9
	EVENS(0, R8, Y10)
	VMULPS      Y10, Y3, Y15
	ODDS(0, R8, Y11)
	VFMADD231PS Y11, Y4, Y15
	EVENS(8, R8, Y14)
	VFMADD231PS Y14, Y5, Y15
	EVENS(0, R9, Y10)
	VFMADD231PS Y10, Y6, Y9
	ODDS(0, R9, Y11)
	VFMADD231PS Y11, Y7, Y15
	EVENS(8, R9, Y14)
	VFMADD231PS Y14, Y8, Y9
	VADDPS      Y15, Y9, Y9
	VMOVUPS     Y9, (DI)(BX*1)
	ADDQ        $32, BX
	SUBQ        $8, CX
	JMP         s2loop

s2done:
	VZEROUPPER
	RET

// func axpyAVX2(dst, src *float32, a float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	MOVQ         n+24(FP), CX
	XORQ         BX, BX

axloop:
	CMPQ        CX, $8
	JLT         axdone
	VMOVUPS     (DI)(BX*1), Y1
	VFMADD231PS (SI)(BX*1), Y0, Y1
	VMOVUPS     Y1, (DI)(BX*1)
	ADDQ        $32, BX
	SUBQ        $8, CX
	JMP         axloop

axdone:
	VZEROUPPER
	RET
