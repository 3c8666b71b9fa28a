#include "textflag.h"

// Elementwise float32 loops for the hot activations and arithmetic, AVX2.
// Each has a pure-Go twin in vec.go that gives bit-identical results
// (vec_test.go checks it). Operand order follows the Intel rule that
// VMAXPS/VMINPS return the second source when either is NaN, so NaN in the
// data propagates like the twins' compare-and-select.

// func clampAVX2(dst, src []float32, lo, hi float32)
TEXT ·clampAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VBROADCASTSS lo+48(FP), Y1
	VBROADCASTSS hi+52(FP), Y2
clamp32:
	CMPQ CX, $32
	JL   clamp8
	VMOVUPS (SI), Y3
	VMOVUPS 32(SI), Y4
	VMOVUPS 64(SI), Y5
	VMOVUPS 96(SI), Y6
	VMAXPS Y3, Y1, Y3
	VMAXPS Y4, Y1, Y4
	VMAXPS Y5, Y1, Y5
	VMAXPS Y6, Y1, Y6
	VMINPS Y3, Y2, Y3
	VMINPS Y4, Y2, Y4
	VMINPS Y5, Y2, Y5
	VMINPS Y6, Y2, Y6
	VMOVUPS Y3, (DI)
	VMOVUPS Y4, 32(DI)
	VMOVUPS Y5, 64(DI)
	VMOVUPS Y6, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  clamp32
clamp8:
	CMPQ CX, $8
	JL   clamp1
	VMOVUPS (SI), Y3
	VMAXPS Y3, Y1, Y3
	VMINPS Y3, Y2, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  clamp8
clamp1:
	TESTQ CX, CX
	JZ    clampdone
	VMOVSS (SI), X3
	VMAXSS X3, X1, X3
	VMINSS X3, X2, X3
	VMOVSS X3, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  clamp1
clampdone:
	VZEROUPPER
	RET

// Vector-vector: dst[i] = a[i] op b[i].
#define VV(NAME, PS, SS) \
TEXT NAME(SB), NOSPLIT, $0-72; \
	MOVQ dst_base+0(FP), DI; \
	MOVQ a_base+24(FP), SI; \
	MOVQ b_base+48(FP), DX; \
	MOVQ dst_len+8(FP), CX; \
vv16: \
	CMPQ CX, $16; \
	JL   vv1; \
	VMOVUPS (SI), Y0; \
	VMOVUPS 32(SI), Y1; \
	PS (DX), Y0, Y0; \
	PS 32(DX), Y1, Y1; \
	VMOVUPS Y0, (DI); \
	VMOVUPS Y1, 32(DI); \
	ADDQ $64, SI; \
	ADDQ $64, DX; \
	ADDQ $64, DI; \
	SUBQ $16, CX; \
	JMP  vv16; \
vv1: \
	TESTQ CX, CX; \
	JZ    vvdone; \
	VMOVSS (SI), X0; \
	SS (DX), X0, X0; \
	VMOVSS X0, (DI); \
	ADDQ $4, SI; \
	ADDQ $4, DX; \
	ADDQ $4, DI; \
	DECQ CX; \
	JMP  vv1; \
vvdone: \
	VZEROUPPER; \
	RET

// Vector-scalar: dst[i] = a[i] op s.
#define VS(NAME, PS, SS) \
TEXT NAME(SB), NOSPLIT, $0-52; \
	MOVQ dst_base+0(FP), DI; \
	MOVQ a_base+24(FP), SI; \
	MOVQ dst_len+8(FP), CX; \
	VBROADCASTSS s+48(FP), Y2; \
vs16: \
	CMPQ CX, $16; \
	JL   vs1; \
	VMOVUPS (SI), Y0; \
	VMOVUPS 32(SI), Y1; \
	PS Y2, Y0, Y0; \
	PS Y2, Y1, Y1; \
	VMOVUPS Y0, (DI); \
	VMOVUPS Y1, 32(DI); \
	ADDQ $64, SI; \
	ADDQ $64, DI; \
	SUBQ $16, CX; \
	JMP  vs16; \
vs1: \
	TESTQ CX, CX; \
	JZ    vsdone; \
	VMOVSS (SI), X0; \
	SS X2, X0, X0; \
	VMOVSS X0, (DI); \
	ADDQ $4, SI; \
	ADDQ $4, DI; \
	DECQ CX; \
	JMP  vs1; \
vsdone: \
	VZEROUPPER; \
	RET

// Scalar-vector: dst[i] = s op a[i] (for the non-commutative ops).
#define SV(NAME, PS, SS) \
TEXT NAME(SB), NOSPLIT, $0-52; \
	MOVQ dst_base+0(FP), DI; \
	MOVQ a_base+24(FP), SI; \
	MOVQ dst_len+8(FP), CX; \
	VBROADCASTSS s+48(FP), Y2; \
sv16: \
	CMPQ CX, $16; \
	JL   sv1; \
	VMOVUPS (SI), Y0; \
	VMOVUPS 32(SI), Y1; \
	PS Y0, Y2, Y0; \
	PS Y1, Y2, Y1; \
	VMOVUPS Y0, (DI); \
	VMOVUPS Y1, 32(DI); \
	ADDQ $64, SI; \
	ADDQ $64, DI; \
	SUBQ $16, CX; \
	JMP  sv16; \
sv1: \
	TESTQ CX, CX; \
	JZ    svdone; \
	VMOVSS (SI), X0; \
	SS X0, X2, X0; \
	VMOVSS X0, (DI); \
	ADDQ $4, SI; \
	ADDQ $4, DI; \
	DECQ CX; \
	JMP  sv1; \
svdone: \
	VZEROUPPER; \
	RET

VV(·addVVAVX2, VADDPS, VADDSS)
VV(·subVVAVX2, VSUBPS, VSUBSS)
VV(·mulVVAVX2, VMULPS, VMULSS)
VV(·divVVAVX2, VDIVPS, VDIVSS)
VS(·addVSAVX2, VADDPS, VADDSS)
VS(·subVSAVX2, VSUBPS, VSUBSS)
VS(·mulVSAVX2, VMULPS, VMULSS)
VS(·divVSAVX2, VDIVPS, VDIVSS)
SV(·subSVAVX2, VSUBPS, VSUBSS)
SV(·divSVAVX2, VDIVPS, VDIVSS)

// func hardSigmoidAVX2(dst, src []float32, alpha, beta float32, swish bool)
// dst = min(max(alpha*x + beta, 0), 1), times x when swish (HardSwish).
// Multiply and add are separate roundings (no FMA), as in the Go twin.
TEXT ·hardSigmoidAVX2(SB), NOSPLIT, $0-57
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VBROADCASTSS alpha+48(FP), Y1
	VBROADCASTSS beta+52(FP), Y2
	MOVBLZX swish+56(FP), DX
	VXORPS Y3, Y3, Y3              // 0
	MOVL $0x3f800000, AX
	MOVL AX, X4
	VBROADCASTSS X4, Y4            // 1
hs8:
	CMPQ CX, $8
	JL   hs1
	VMOVUPS (SI), Y0
	VMULPS Y1, Y0, Y5
	VADDPS Y2, Y5, Y5
	VMAXPS Y5, Y3, Y5
	VMINPS Y5, Y4, Y5
	TESTQ DX, DX
	JZ   hsstore8
	VMULPS Y0, Y5, Y5
hsstore8:
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  hs8
hs1:
	TESTQ CX, CX
	JZ    hsdone
	VMOVSS (SI), X0
	VMULSS X1, X0, X5
	VADDSS X2, X5, X5
	VMAXSS X5, X3, X5
	VMINSS X5, X4, X5
	TESTQ DX, DX
	JZ   hsstore1
	VMULSS X0, X5, X5
hsstore1:
	VMOVSS X5, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  hs1
hsdone:
	VZEROUPPER
	RET

// func leakyAVX2(dst, src []float32, alpha float32)
// dst = x·alpha where x's sign bit is set, else x (VBLENDVPS on the sign).
TEXT ·leakyAVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VBROADCASTSS alpha+48(FP), Y1
lk8:
	CMPQ CX, $8
	JL   lk1
	VMOVUPS (SI), Y0
	VMULPS Y1, Y0, Y2
	VBLENDVPS Y0, Y2, Y0, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  lk8
lk1:
	TESTQ CX, CX
	JZ    lkdone
	VMOVSS (SI), X0
	VMULSS X1, X0, X2
	VBLENDVPS X0, X2, X0, X3
	VMOVSS X3, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  lk1
lkdone:
	VZEROUPPER
	RET
