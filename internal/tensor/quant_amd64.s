//go:build !noasm

#include "textflag.h"

// Dword order that undoes the lane interleaving of VPACKSSDW/VPACKxSWB.
DATA permidx<>+0(SB)/4, $0
DATA permidx<>+4(SB)/4, $4
DATA permidx<>+8(SB)/4, $1
DATA permidx<>+12(SB)/4, $5
DATA permidx<>+16(SB)/4, $2
DATA permidx<>+20(SB)/4, $6
DATA permidx<>+24(SB)/4, $3
DATA permidx<>+28(SB)/4, $7
GLOBL permidx<>(SB), RODATA|NOPTR, $32

// One vector: scale (mul or div), clamp to [lo, hi] (NaN becomes lo through
// VMAXPS returning its second source), for the torch rule replace lanes with
// t >= 2^63 or NaN by lo, round half to even (MXCSR default), add zp.
#define QUANT8(R, T, M) \
	TESTL $1, BX \
	JNZ   3(PC) \
	VMULPS Y8, R, R \
	JMP   2(PC) \
	VDIVPS Y8, R, R \
	VMAXPS Y9, R, T \
	VMINPS Y10, T, T \
	TESTL $2, BX \
	JZ    3(PC) \
	VCMPPS $5, Y12, R, M \
	VBLENDVPS M, Y9, T, T \
	VCVTPS2DQ T, T \
	VPADDD Y11, T, T

// func quant8AVX2(dst *byte, src *float32, n int, p *avx2Params)
// n is a multiple of 32. p: scale (multiplier or divisor), lo, hi (float32),
// zp (int32), flags (int32: 1 divide, 2 torch NaN/huge rule, 4 signed).
TEXT ·quant8AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ p+24(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VPBROADCASTD 12(AX), Y11
	MOVL 16(AX), BX
	MOVL $0x5f000000, DX
	MOVL DX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU permidx<>(SB), Y13

loop:
	CMPQ CX, $32
	JLT  done
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	QUANT8(Y0, Y4, Y14)
	QUANT8(Y1, Y5, Y14)
	QUANT8(Y2, Y6, Y14)
	QUANT8(Y3, Y7, Y14)
	VPACKSSDW Y5, Y4, Y4
	VPACKSSDW Y7, Y6, Y6
	TESTL $4, BX
	JNZ  signed
	VPACKUSWB Y6, Y4, Y4
	JMP  store
signed:
	VPACKSSWB Y6, Y4, Y4
store:
	VPERMD Y4, Y13, Y4
	VMOVDQU Y4, 0(DI)
	ADDQ $128, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JMP  loop

done:
	VZEROUPPER
	RET

// QUANTL is QUANT8 with per-lane qparams read from memory at offset OFF of
// R8 (scale), R9 (lo), R10 (hi) and R11 (zp).
#define QUANTL(R, T, M, OFF) \
	TESTL $1, BX \
	JNZ   3(PC) \
	VMULPS OFF(R8), R, R \
	JMP   2(PC) \
	VDIVPS OFF(R8), R, R \
	VMAXPS OFF(R9), R, T \
	VMINPS OFF(R10), T, T \
	TESTL $2, BX \
	JZ    3(PC) \
	VCMPPS $5, Y12, R, M \
	VBLENDVPS M, OFF(R9), T, T \
	VCVTPS2DQ T, T \
	VPADDD OFF(R11), T, T

// func quant8LanesAVX2(dst *byte, src *float32, n int, p *avx2Lanes)
// Like quant8AVX2 with a period of per-element qparams: element i uses
// entry i mod period of each array. n and period are multiples of 32.
TEXT ·quant8LanesAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ p+24(FP), AX
	MOVL 40(AX), BX
	MOVL $0x5f000000, DX
	MOVL DX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU permidx<>(SB), Y13

period:
	MOVQ 0(AX), R8
	MOVQ 8(AX), R9
	MOVQ 16(AX), R10
	MOVQ 24(AX), R11
	MOVQ 32(AX), R12

lloop:
	CMPQ CX, $32
	JLT  ldone
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	QUANTL(Y0, Y4, Y14, 0)
	QUANTL(Y1, Y5, Y14, 32)
	QUANTL(Y2, Y6, Y14, 64)
	QUANTL(Y3, Y7, Y14, 96)
	VPACKSSDW Y5, Y4, Y4
	VPACKSSDW Y7, Y6, Y6
	TESTL $4, BX
	JNZ  lsigned
	VPACKUSWB Y6, Y4, Y4
	JMP  lstore
lsigned:
	VPACKSSWB Y6, Y4, Y4
lstore:
	VPERMD Y4, Y13, Y4
	VMOVDQU Y4, 0(DI)
	ADDQ $128, SI
	ADDQ $32, DI
	SUBQ $32, CX
	ADDQ $128, R8
	ADDQ $128, R9
	ADDQ $128, R10
	ADDQ $128, R11
	SUBQ $32, R12
	JNZ  lloop
	JMP  period

ldone:
	VZEROUPPER
	RET

// func dequant8AVX2(dst *float32, src *byte, n int, scale float32, zp int32, signed bool)
// dst[i] = float32(int32(src[i]) - zp) * scale for n (a multiple of 32)
// elements: the difference is exact, so this is the same single float32
// rounding as the Go loop.
TEXT ·dequant8AVX2(SB), NOSPLIT, $0-33
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y8
	MOVL zp+28(FP), AX
	MOVL AX, X9
	VPBROADCASTD X9, Y9
	MOVBLZX signed+32(FP), BX

dloop:
	CMPQ CX, $32
	JLT  ddone
	TESTQ BX, BX
	JNZ  dsigned
	VPMOVZXBD 0(SI), Y0
	VPMOVZXBD 8(SI), Y1
	VPMOVZXBD 16(SI), Y2
	VPMOVZXBD 24(SI), Y3
	JMP  dconv
dsigned:
	VPMOVSXBD 0(SI), Y0
	VPMOVSXBD 8(SI), Y1
	VPMOVSXBD 16(SI), Y2
	VPMOVSXBD 24(SI), Y3
dconv:
	VPSUBD Y9, Y0, Y0
	VPSUBD Y9, Y1, Y1
	VPSUBD Y9, Y2, Y2
	VPSUBD Y9, Y3, Y3
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VMULPS Y8, Y0, Y0
	VMULPS Y8, Y1, Y1
	VMULPS Y8, Y2, Y2
	VMULPS Y8, Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $32, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  dloop

ddone:
	VZEROUPPER
	RET

// func dequant8LanesAVX2(dst *float32, src *byte, n int, p *avx2Lanes)
// dequant8AVX2 with per-element scale (p.scale) and zero point (p.zp)
// repeating every p.period elements; n and period are multiples of 32.
TEXT ·dequant8LanesAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ p+24(FP), AX
	MOVL 40(AX), BX

dperiod:
	MOVQ 0(AX), R8
	MOVQ 24(AX), R11
	MOVQ 32(AX), R12

dlloop:
	CMPQ CX, $32
	JLT  dldone
	TESTL $4, BX
	JNZ  dlsigned
	VPMOVZXBD 0(SI), Y0
	VPMOVZXBD 8(SI), Y1
	VPMOVZXBD 16(SI), Y2
	VPMOVZXBD 24(SI), Y3
	JMP  dlconv
dlsigned:
	VPMOVSXBD 0(SI), Y0
	VPMOVSXBD 8(SI), Y1
	VPMOVSXBD 16(SI), Y2
	VPMOVSXBD 24(SI), Y3
dlconv:
	VPSUBD 0(R11), Y0, Y0
	VPSUBD 32(R11), Y1, Y1
	VPSUBD 64(R11), Y2, Y2
	VPSUBD 96(R11), Y3, Y3
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VMULPS 0(R8), Y0, Y0
	VMULPS 32(R8), Y1, Y1
	VMULPS 64(R8), Y2, Y2
	VMULPS 96(R8), Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $32, SI
	ADDQ $128, DI
	SUBQ $32, CX
	ADDQ $128, R8
	ADDQ $128, R11
	SUBQ $32, R12
	JNZ  dlloop
	JMP  dperiod

dldone:
	VZEROUPPER
	RET
