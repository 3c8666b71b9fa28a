//go:build amd64 && !noasm

#include "textflag.h"

// Written by hand (not from gen_amd64.go).

// func gemvAVX512(kc int, a, b []float32, out []float32)
//
// out[j] = Σ_{p<kc} a[p]·b[p*32+j] for j < 32, one FMA chain per element in
// p order from zero: sgemmAVX512x8x32's sums for a single row of A, without
// its seven rows of padding (a batch-1 classifier). Two chains cover 32
// columns; the weights stream from memory faster than they would feed more.
TEXT ·gemvAVX512(SB), NOSPLIT, $0-80
	MOVQ kc+0(FP), CX
	MOVQ a_base+8(FP), SI
	MOVQ b_base+32(FP), DI
	MOVQ out_base+56(FP), DX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ CX, CX
	JLE gemv_done
gemv_loop:
	VBROADCASTSS (SI), Z2
	VFMADD231PS (DI), Z2, Z0
	VFMADD231PS 64(DI), Z2, Z1
	ADDQ $4, SI
	ADDQ $128, DI
	DECQ CX
	JNZ gemv_loop
gemv_done:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VZEROUPPER
	RET
