//go:build amd64 && !noasm

#include "textflag.h"

// Hand-written (not from gen_amd64.go): one small loop.
//
// func maxRowsAVX2(dst []float32, dstStride int, a []float32, aStride int, b []float32, bStride int, rows, n int)
//
// dst[r*dstStride+i] = max(a[r*aStride+i], b[r*bStride+i]) with Go's max:
// VMAXPS returns its second source when either input is NaN or both are
// zeros, so max is taken both ways and the two ANDed (equal unless both
// are zeros of opposite sign, where the AND gives +0), and lanes with a NaN
// input take a+b instead (a NaN).
TEXT ·maxRowsAVX2(SB), NOSPLIT, $0-112
	MOVQ dst_base+0(FP), DI
	MOVQ dstStride+24(FP), R8
	SHLQ $2, R8
	MOVQ a_base+32(FP), SI
	MOVQ aStride+56(FP), R9
	SHLQ $2, R9
	MOVQ b_base+64(FP), DX
	MOVQ bStride+88(FP), R10
	SHLQ $2, R10
	MOVQ rows+96(FP), R11
	MOVQ n+104(FP), R12
maxRows_row:
	TESTQ R11, R11
	JLE   maxRows_done
	XORQ  AX, AX
	MOVQ  R12, CX
maxRows_vec:
	CMPQ      CX, $8
	JLT       maxRows_tail
	VMOVUPS   (SI)(AX*4), Y0
	VMOVUPS   (DX)(AX*4), Y1
	VMAXPS    Y1, Y0, Y2
	VMAXPS    Y0, Y1, Y3
	VANDPS    Y3, Y2, Y2
	VCMPPS    $3, Y1, Y0, Y4
	VADDPS    Y1, Y0, Y5
	VBLENDVPS Y4, Y5, Y2, Y2
	VMOVUPS   Y2, (DI)(AX*4)
	ADDQ      $8, AX
	SUBQ      $8, CX
	JMP       maxRows_vec
maxRows_tail:
	TESTQ     CX, CX
	JLE       maxRows_next
	VMOVSS    (SI)(AX*4), X0
	VMOVSS    (DX)(AX*4), X1
	VMAXSS    X1, X0, X2
	VMAXSS    X0, X1, X3
	VANDPS    X3, X2, X2
	VCMPSS    $3, X1, X0, X4
	VADDSS    X1, X0, X5
	VBLENDVPS X4, X5, X2, X2
	VMOVSS    X2, (DI)(AX*4)
	INCQ      AX
	DECQ      CX
	JMP       maxRows_tail
maxRows_next:
	ADDQ R8, DI
	ADDQ R9, SI
	ADDQ R10, DX
	DECQ R11
	JMP  maxRows_row
maxRows_done:
	VZEROUPPER
	RET
