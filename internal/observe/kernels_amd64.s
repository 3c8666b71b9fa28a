//go:build !noasm

#include "textflag.h"

// func minMaxAVX2(x []float32) (mn, mx float32, unordered bool)
// len(x) is a non-zero multiple of 8.
TEXT ·minMaxAVX2(SB), NOSPLIT, $0-33
	MOVQ    x_base+0(FP), SI
	MOVQ    x_len+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	VXORPS  Y8, Y8, Y8
	XORQ    AX, AX

loop16:
	LEAQ    16(AX), DX
	CMPQ    DX, CX
	JGT     tail8
	VMOVUPS (SI)(AX*4), Y4
	VMOVUPS 32(SI)(AX*4), Y5
	VMINPS  Y4, Y0, Y0
	VMINPS  Y5, Y1, Y1
	VMAXPS  Y4, Y2, Y2
	VMAXPS  Y5, Y3, Y3
	VCMPPS  $3, Y4, Y4, Y6
	VCMPPS  $3, Y5, Y5, Y7
	VORPS   Y6, Y8, Y8
	VORPS   Y7, Y8, Y8
	MOVQ    DX, AX
	JMP     loop16

tail8:
	CMPQ    AX, CX
	JGE     reduce
	VMOVUPS (SI)(AX*4), Y4
	VMINPS  Y4, Y0, Y0
	VMAXPS  Y4, Y2, Y2
	VCMPPS  $3, Y4, Y4, Y6
	VORPS   Y6, Y8, Y8

reduce:
	VMINPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VEXTRACTF128 $1, Y0, X1
	VMINPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMINPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMINPS       X1, X0, X0
	VEXTRACTF128 $1, Y2, X3
	VMAXPS       X3, X2, X2
	VPERMILPS    $0x4E, X2, X3
	VMAXPS       X3, X2, X2
	VPERMILPS    $0xB1, X2, X3
	VMAXPS       X3, X2, X2
	MOVSS        X0, mn+24(FP)
	MOVSS        X2, mx+28(FP)
	VMOVMSKPS    Y8, AX
	TESTL        AX, AX
	SETNE        unordered+32(FP)
	VZEROUPPER
	RET

// func binIndexAVX2(x []float32, idx []int32, lo, hi, w, n float32, last, dump int32) (mn, mx float32, unordered bool)
// idx[i] = int32((x[i]-lo)*n/w) in float32 (torch.histc's formula:
// subtract, multiply, divide, truncate), capped at last, or dump when x[i]
// is outside [lo, hi]. Also returns the min and max of x and whether it
// holds a NaN. len(x) is a non-zero multiple of 8, len(idx) >= len(x).
// (Counting is left to countLanesAsm over a whole block: reloading the
// indices right after storing them stalls store forwarding.)
TEXT ·binIndexAVX2(SB), NOSPLIT, $0-81
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	MOVQ         idx_base+24(FP), DI
	VBROADCASTSS lo+48(FP), Y10
	VBROADCASTSS hi+52(FP), Y11
	VBROADCASTSS w+56(FP), Y12
	VBROADCASTSS n+60(FP), Y13
	MOVL         last+64(FP), AX
	MOVQ         AX, X14
	VPBROADCASTD X14, Y14
	MOVL         dump+68(FP), AX
	MOVQ         AX, X15
	VPBROADCASTD X15, Y15
	VMOVUPS      (SI), Y8
	VMOVAPS      Y8, Y9
	VXORPS       Y7, Y7, Y7
	XORQ         AX, AX

biloop:
	VMOVUPS    (SI)(AX*4), Y0
	VMINPS     Y0, Y8, Y8
	VMAXPS     Y0, Y9, Y9
	VCMPPS     $3, Y0, Y0, Y1
	VORPS      Y1, Y7, Y7
	VSUBPS     Y10, Y0, Y2
	VMULPS     Y13, Y2, Y2
	VDIVPS     Y12, Y2, Y2
	VCVTTPS2DQ Y2, Y2
	VPMINSD    Y14, Y2, Y2
	VCMPPS     $0x0D, Y10, Y0, Y4
	VCMPPS     $0x02, Y11, Y0, Y5
	VANDPS     Y5, Y4, Y4
	VBLENDVPS  Y4, Y2, Y15, Y2
	VMOVDQU    Y2, (DI)(AX*4)
	ADDQ       $8, AX
	CMPQ       AX, CX
	JLT        biloop

	VEXTRACTF128 $1, Y8, X1
	VMINPS       X1, X8, X8
	VPERMILPS    $0x4E, X8, X1
	VMINPS       X1, X8, X8
	VPERMILPS    $0xB1, X8, X1
	VMINPS       X1, X8, X8
	VEXTRACTF128 $1, Y9, X1
	VMAXPS       X1, X9, X9
	VPERMILPS    $0x4E, X9, X1
	VMAXPS       X1, X9, X9
	VPERMILPS    $0xB1, X9, X1
	VMAXPS       X1, X9, X9
	MOVSS        X8, mn+72(FP)
	MOVSS        X9, mx+76(FP)
	VMOVMSKPS    Y7, AX
	TESTL        AX, AX
	SETNE        unordered+80(FP)
	VZEROUPPER
	RET

// func countLanesAsm(idx []int32, cnt []uint32)
// cnt[4*idx[i] + i%4]++ for every i. len(idx) is a multiple of 4 and every
// index is below len(cnt)/4 (binIndexAVX2 built them).
TEXT ·countLanesAsm(SB), NOSPLIT, $0-48
	MOVQ idx_base+0(FP), SI
	MOVQ idx_len+8(FP), CX
	MOVQ cnt_base+24(FP), DI
	SHRQ $2, CX
	JZ   cdone

cloop:
	MOVLQSX (SI), AX
	MOVLQSX 4(SI), BX
	MOVLQSX 8(SI), DX
	MOVLQSX 12(SI), R8
	SHLQ    $4, AX
	SHLQ    $4, BX
	SHLQ    $4, DX
	SHLQ    $4, R8
	INCL    (DI)(AX*1)
	INCL    4(DI)(BX*1)
	INCL    8(DI)(DX*1)
	INCL    12(DI)(R8*1)
	ADDQ    $16, SI
	DECQ    CX
	JNZ     cloop

cdone:
	RET
