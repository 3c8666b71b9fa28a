#!/usr/bin/env python3
"""Generates kernels_arm64.s, the arm64 micro-kernels of q8 (run: python3 gen_asm_arm64.py).

Go's assembler has no SDOT, SXTL or SMLAL (by element) mnemonics, so those are
emitted as WORDs encoded here from the ARM ARM bit layouts, each with the
instruction in a comment; neon_encoding_test.go re-encodes every comment
independently (and with llvm-mc where it is installed) and compares.

Both kernel families read the packed layout of the generic path: per panel,
per group of 4 k, 64 columns of 4 consecutive k bytes ([k/4][64][4] int8).
The tile is R rows (R = 1..6) of int32 accumulators with a row stride of 64
int32 (scratch.tile).

sdotR:  a 16-column strip. Vn = 16 bytes of weights = 4 columns x 4 k, Vm
        lane l = 4 k bytes of one A row: SDOT Vd.4S, Vn.16B, Vm.4B[l] is one
        k group for 4 columns. A is unsigned: each A byte is flipped (a^0x80 =
        a-128 as int8) and the accumulators start at 128*colsum(B), which the
        caller passes as init.
neonR:  an 8-column strip without the dot product: LD4 de-interleaves 32 bytes
        (8 columns x 4 k) into one register per k, SXTL widens them to int16,
        A rows are widened with UXTL, and SMLAL/SMLAL2 (by element) add
        a*b into int32: exact for every u8 x s8 value.
"""

import sys

# ---- encoders (ARM ARM, A64 "Advanced SIMD" encodings) ----


def sdot_elem(d, n, m, lane):
    """SDOT Vd.4S, Vn.16B, Vm.4B[lane]: 0 Q U 01111 size L M Rm 1110 H 0 Rn Rd,
    Q=1, U=0, size=10, index = H:L, Vm = M:Rm."""
    assert 0 <= lane < 4 and max(d, n, m) < 32
    h, l = lane >> 1, lane & 1
    return (1 << 30) | (0b01111 << 24) | (0b10 << 22) | (l << 21) | (m << 16) | \
        (0b1110 << 12) | (h << 11) | (n << 5) | d


def sxtl_8h(d, n):
    """SXTL Vd.8H, Vn.8B = SSHLL #0: 0 Q U 011110 immh immb 10100 1 Rn Rd,
    Q=0, U=0, immh=0001 (bytes), immb=000 (shift 0)."""
    return (0b011110 << 23) | (0b0001 << 19) | (0b101001 << 10) | (n << 5) | d


def smlal_elem(d, n, m, lane, upper):
    """SMLAL{2} Vd.4S, Vn.{4H|8H}, Vm.H[lane]: 0 Q U 01111 size L M Rm 0010 H 0 Rn Rd,
    U=0, size=01, index = H:L:M, Vm = Rm (V0-V15 only), Q=1 for SMLAL2."""
    assert 0 <= lane < 8 and m < 16 and max(d, n) < 32
    h, l, mm = lane >> 2, (lane >> 1) & 1, lane & 1
    return ((1 if upper else 0) << 30) | (0b01111 << 24) | (0b01 << 22) | (l << 21) | (mm << 20) | \
        (m << 16) | (0b0010 << 12) | (h << 11) | (n << 5) | d


def mla_elem(d, n, m, lane):
    """MLA Vd.4S, Vn.4S, Vm.S[lane]: 0 Q U 01111 size L M Rm 0000 H 0 Rn Rd,
    Q=1, U=1, size=10, index = H:L, Vm = M:Rm."""
    assert 0 <= lane < 4 and max(d, n, m) < 32
    return (1 << 30) | (1 << 29) | (0b01111 << 24) | (0b10 << 22) | ((lane & 1) << 21) | (m << 16) | \
        ((lane >> 1) << 11) | (n << 5) | d


def mla_vec(d, n, m):
    """MLA Vd.4S, Vn.4S, Vm.4S (three same): 0 Q U 01110 size 1 Rm 10010 1 Rn Rd,
    Q=1, U=0, size=10."""
    assert max(d, n, m) < 32
    return (1 << 30) | (0b01110 << 24) | (0b10 << 22) | (1 << 21) | (m << 16) | (0b100101 << 10) | (n << 5) | d


def smlal_vec(d, n, m, upper):
    """SMLAL{2} Vd.4S, Vn.{4H|8H}, Vm.{4H|8H} (three different):
    0 Q U 01110 size 1 Rm 1000 00 Rn Rd, U=0, size=01, Q=1 for SMLAL2."""
    assert max(d, n, m) < 32
    return ((1 if upper else 0) << 30) | (0b01110 << 24) | (0b01 << 22) | (1 << 21) | (m << 16) | \
        (0b100000 << 10) | (n << 5) | d


def two_reg_4s(op, d, n):
    """SCVTF / FCVTNS Vd.4S, Vn.4S (two-register misc, Q=1, sz=0):
    0 Q U 01110 0 sz 10000 opcode 10 Rn Rd with U=0 and opcode 11101 (SCVTF)
    or 11010 (FCVTNS)."""
    opcode = {"scvtf": 0b11101, "fcvtns": 0b11010}[op]
    return (1 << 30) | (0b01110 << 24) | (0b10000 << 17) | (opcode << 12) | (0b10 << 10) | (n << 5) | d


def three_same_4s(op, d, n, m):
    """FMUL / FMAX / FMIN Vd.4S, Vn.4S, Vm.4S (three same, Q=1, sz=0):
    0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd; FMUL U=1 a=0 opcode 11011,
    FMAX U=0 a=0 opcode 11110, FMIN U=0 a=1 opcode 11110."""
    u, a, opcode = {"fmul": (1, 0, 0b11011), "fmax": (0, 0, 0b11110), "fmin": (0, 1, 0b11110)}[op]
    return (1 << 30) | (u << 29) | (0b01110 << 24) | (a << 23) | (1 << 21) | (m << 16) | (opcode << 11) | \
        (1 << 10) | (n << 5) | d


def w_mla(d, n, m, lane):
    return "\tWORD $0x%08x // mla v%d.4s, v%d.4s, v%d.s[%d]" % (mla_elem(d, n, m, lane), d, n, m, lane)


def w_mlav(d, n, m):
    return "\tWORD $0x%08x // mla v%d.4s, v%d.4s, v%d.4s" % (mla_vec(d, n, m), d, n, m)


def w_smlalv(d, n, m, upper):
    if upper:
        return "\tWORD $0x%08x // smlal2 v%d.4s, v%d.8h, v%d.8h" % (smlal_vec(d, n, m, True), d, n, m)
    return "\tWORD $0x%08x // smlal v%d.4s, v%d.4h, v%d.4h" % (smlal_vec(d, n, m, False), d, n, m)


def w_two(op, d, n):
    return "\tWORD $0x%08x // %s v%d.4s, v%d.4s" % (two_reg_4s(op, d, n), op, d, n)


def w_three(op, d, n, m):
    return "\tWORD $0x%08x // %s v%d.4s, v%d.4s, v%d.4s" % (three_same_4s(op, d, n, m), op, d, n, m)


def w_sdot(d, n, m, lane):
    return "\tWORD $0x%08x // sdot v%d.4s, v%d.16b, v%d.4b[%d]" % (sdot_elem(d, n, m, lane), d, n, m, lane)


def w_sxtl(d, n):
    return "\tWORD $0x%08x // sxtl v%d.8h, v%d.8b" % (sxtl_8h(d, n), d, n)


def w_smlal(d, n, m, lane, upper):
    if upper:
        return "\tWORD $0x%08x // smlal2 v%d.4s, v%d.8h, v%d.h[%d]" % (smlal_elem(d, n, m, lane, True), d, n, m, lane)
    return "\tWORD $0x%08x // smlal v%d.4s, v%d.4h, v%d.h[%d]" % (smlal_elem(d, n, m, lane, False), d, n, m, lane)


# ---- kernels ----

ROWREG = ["R2", "R3", "R4", "R5", "R6", "R7"]  # A row pointers


def prologue(out, name, R, args):
    out.append("")
    out.append("// func %s(%s)" % (name, args))
    nargs = args.count(",") + 1
    out.append("TEXT ·%s(SB), NOSPLIT, $0-%d" % (name, 8 * nargs))
    out.append("\tMOVD k4+0(FP), R0")
    out.append("\tMOVD rows+8(FP), R1")
    out.append("\tMOVD b+16(FP), R8")
    out.append("\tMOVD c+24(FP), R9")
    for r in range(R):
        out.append("\tMOVD %d(R1), %s" % (8 * r, ROWREG[r]))


def store(out, R, accs):
    """Stores accumulator rows (each a list of V register numbers) at c, c+256, ..."""
    for r in range(R):
        regs = accs[r]
        out.append("\tVST1 [%s], (R9)" % ", ".join("V%d.S4" % v for v in regs))
        if r < R - 1:
            out.append("\tADD $256, R9")


def sdot_kernel(R):
    """A: V0..V(R-1), weights: V6, V7, accumulators V8 + 4r + v."""
    name = "sdot%d" % R
    out = []
    prologue(out, name, R, "k4 int, rows *[mr]*uint8, b *int8, c *int32, init *int32")
    acc = [[8 + 4 * r + v for v in range(4)] for r in range(R)]
    out.append("\tMOVD init+32(FP), R10")
    out.append("\tVLD1 (R10), [V8.S4, V9.S4, V10.S4, V11.S4]")
    for r in range(1, R):
        for v in range(4):
            out.append("\tVMOV V%d.B16, V%d.B16" % (8 + v, acc[r][v]))

    def group(lanes):
        # One k group per lane: 4 weight vectors (16 columns), each
        # multiplied with every row's A lane.
        for lane in lanes:
            for half in range(2):
                out.append("\tVLD1.P 32(R8), [V6.B16, V7.B16]")
                for v in range(2):
                    for r in range(R):
                        out.append(w_sdot(acc[r][2 * half + v], 6 + v, r, lane))
            out.append("\tADD $192, R8")

    out.append("loop4:")
    out.append("\tCMP $4, R0")
    out.append("\tBLT tail")
    out.append("\tVMOVI $128, V6.B16")
    for r in range(R):
        out.append("\tVLD1.P 16(%s), [V%d.B16]" % (ROWREG[r], r))
    for r in range(R):
        out.append("\tVEOR V6.B16, V%d.B16, V%d.B16" % (r, r))
    group(range(4))
    out.append("\tSUB $4, R0")
    out.append("\tB loop4")
    out.append("tail:")
    out.append("\tCBZ R0, done")
    out.append("\tVMOVI $128, V6.B16")
    for r in range(R):
        out.append("\tMOVWU.P 4(%s), R11" % ROWREG[r])
        out.append("\tVMOV R11, V%d.S[0]" % r)
    for r in range(R):
        out.append("\tVEOR V6.B16, V%d.B16, V%d.B16" % (r, r))
    group([0])
    out.append("\tSUB $1, R0")
    out.append("\tB tail")
    out.append("done:")
    store(out, R, acc)
    out.append("\tRET")
    return out


def neon_kernel(R):
    """A: V0..V(R-1) (int16, 8 k per register), weights V6..V9 (one k each,
    8 columns), accumulators V(16 + 2r + h)."""
    name = "neon%d" % R
    out = []
    prologue(out, name, R, "k4 int, rows *[mr]*uint8, b *int8, c *int32")
    acc = [[16 + 2 * r + h for h in range(2)] for r in range(R)]
    for r in range(R):
        for v in acc[r]:
            out.append("\tVEOR V%d.B16, V%d.B16, V%d.B16" % (v, v, v))

    def group(lane0):
        out.append("\tVLD4 (R8), [V6.B8, V7.B8, V8.B8, V9.B8]")
        out.append("\tADD $256, R8")
        for kk in range(4):
            out.append(w_sxtl(6 + kk, 6 + kk))
        for kk in range(4):
            for r in range(R):
                out.append(w_smlal(acc[r][0], 6 + kk, r, lane0 + kk, False))
                out.append(w_smlal(acc[r][1], 6 + kk, r, lane0 + kk, True))

    out.append("loop2:")
    out.append("\tCMP $2, R0")
    out.append("\tBLT tail")
    for r in range(R):
        out.append("\tVLD1.P 8(%s), [V%d.B8]" % (ROWREG[r], r))
        out.append("\tVUXTL V%d.B8, V%d.H8" % (r, r))
    group(0)
    group(4)
    out.append("\tSUB $2, R0")
    out.append("\tB loop2")
    out.append("tail:")
    out.append("\tCBZ R0, done")
    for r in range(R):
        out.append("\tMOVWU (%s), R11" % ROWREG[r])
        out.append("\tVMOV R11, V%d.S[0]" % r)
        out.append("\tVUXTL V%d.B8, V%d.H8" % (r, r))
    group(0)
    out.append("done:")
    store(out, R, acc)
    out.append("\tRET")
    return out


def out_kernels():
    """The output stages over 8 columns at a time (n a multiple of 8):
    v = acc + ct + nb*rs, then for outQNEON the requantization
    clamp(fcvtns(fmul(scvtf(v), scale)), fmin, fmax) + zp stored as bytes,
    the float32 operations of quantize1 (FCVTNS rounds half to even; the
    clamp comes before rounding there too)."""
    out = []
    for q in (False, True):
        name = "outQNEON" if q else "outI32NEON"
        args = "dst *uint8, acc, ct, nb *int32, scale *float32, n int, p *outArm" if q else \
            "dst *int32, acc, ct, nb *int32, n int, rs int32"
        out.append("")
        out.append("// func %s(%s)" % (name, args))
        if q:
            out.append("TEXT ·%s(SB), NOSPLIT, $0-56" % name)
            out.append("\tMOVD dst+0(FP), R0")
            out.append("\tMOVD acc+8(FP), R1")
            out.append("\tMOVD ct+16(FP), R2")
            out.append("\tMOVD nb+24(FP), R3")
            out.append("\tMOVD scale+32(FP), R4")
            out.append("\tMOVD n+40(FP), R5")
            out.append("\tMOVD p+48(FP), R6")
            # V31 = {rs, zp, fmin, fmax}; V30 = zp, V29 = fmin, V28 = fmax.
            out.append("\tVLD1 (R6), [V31.S4]")
            out.append("\tVDUP V31.S[1], V30.S4")
            out.append("\tVDUP V31.S[2], V29.S4")
            out.append("\tVDUP V31.S[3], V28.S4")
        else:
            out.append("TEXT ·%s(SB), NOSPLIT, $0-44" % name)
            out.append("\tMOVD dst+0(FP), R0")
            out.append("\tMOVD acc+8(FP), R1")
            out.append("\tMOVD ct+16(FP), R2")
            out.append("\tMOVD nb+24(FP), R3")
            out.append("\tMOVD n+32(FP), R5")
            out.append("\tMOVWU rs+40(FP), R6")
            out.append("\tVMOV R6, V31.S[0]")
        out.append("loop:")
        out.append("\tVLD1.P 32(R1), [V0.S4, V1.S4]")
        out.append("\tVLD1.P 32(R2), [V2.S4, V3.S4]")
        out.append("\tVLD1.P 32(R3), [V4.S4, V5.S4]")
        out.append("\tVADD V2.S4, V0.S4, V0.S4")
        out.append("\tVADD V3.S4, V1.S4, V1.S4")
        out.append(w_mla(0, 4, 31, 0))
        out.append(w_mla(1, 5, 31, 0))
        if q:
            out.append("\tVLD1.P 32(R4), [V6.S4, V7.S4]")
            for v in (0, 1):
                out.append(w_two("scvtf", v, v))
            for v in (0, 1):
                out.append(w_three("fmul", v, v, 6 + v))
            for v in (0, 1):
                out.append(w_three("fmax", v, v, 29))
            for v in (0, 1):
                out.append(w_three("fmin", v, v, 28))
            for v in (0, 1):
                out.append(w_two("fcvtns", v, v))
            out.append("\tVADD V30.S4, V0.S4, V0.S4")
            out.append("\tVADD V30.S4, V1.S4, V1.S4")
            # The low byte of each int32 lane, in order.
            out.append("\tVUZP1 V1.H8, V0.H8, V2.H8")
            out.append("\tVUZP1 V2.B16, V2.B16, V2.B16")
            out.append("\tVST1.P [V2.B8], 8(R0)")
        else:
            out.append("\tVST1.P [V0.S4, V1.S4], 32(R0)")
        out.append("\tSUBS $8, R5")
        out.append("\tBNE loop")
        out.append("\tRET")
    return out


def dw_acc_kernel(w16):
    """dwAccNEON: DWConv's per-pixel accumulation over nb blocks of 16
    channels, acc[c] = sum over taps t of base[offs[t]+c]*w[t][c] in int32.
    Each input byte is widened to a uint32 lane (UXTL twice) and MLA adds
    x*w with the int32 weights as they are, so the sums wrap exactly as the
    Go loop's for every weight and zero point (no 16-bit product that could
    overflow). The 16 sums stay in V16-V19 over all taps; taps > 0, nb > 0.

    dwAccNEON16 is the same over int16 weights (DWWeights.w16, layers whose
    W - W0 all fit): bytes widen once to int16 (0..255, so exact as signed)
    and SMLAL/SMLAL2 form the exact 32-bit products, half the weight bytes
    and 13 instructions a tap instead of 16."""
    name = "dwAccNEON16" if w16 else "dwAccNEON"
    wt = "int16" if w16 else "int32"
    out = [""]
    out.append("// func %s(acc *int32, base *uint8, offs *int, taps int, w *%s, wstride int, nb int)" % (name, wt))
    out.append("TEXT ·%s(SB), NOSPLIT, $0-56" % name)
    out.append("\tMOVD acc+0(FP), R0")
    out.append("\tMOVD base+8(FP), R1")
    out.append("\tMOVD offs+16(FP), R2")
    out.append("\tMOVD taps+24(FP), R3")
    out.append("\tMOVD w+32(FP), R4")
    out.append("\tMOVD wstride+40(FP), R5")
    out.append("\tMOVD nb+48(FP), R6")
    out.append("block:")
    for v in range(16, 20):
        out.append("\tVEOR V%d.B16, V%d.B16, V%d.B16" % (v, v, v))
    out.append("\tMOVD R2, R7")
    out.append("\tMOVD R4, R8")
    out.append("\tMOVD R3, R9")
    out.append("tap:")
    out.append("\tMOVD.P 8(R7), R10")
    out.append("\tADD R1, R10, R10")
    out.append("\tVLD1 (R10), [V0.B16]")
    if w16:
        out.append("\tVLD1 (R8), [V20.H8, V21.H8]")
    else:
        out.append("\tVLD1 (R8), [V20.S4, V21.S4, V22.S4, V23.S4]")
    out.append("\tADD R5, R8, R8")
    out.append("\tVUXTL V0.B8, V1.H8")
    out.append("\tVUXTL2 V0.B16, V2.H8")
    if w16:
        for h in range(2):
            out.append(w_smlalv(16 + 2 * h, 1 + h, 20 + h, False))
            out.append(w_smlalv(17 + 2 * h, 1 + h, 20 + h, True))
    else:
        out.append("\tVUXTL V1.H4, V3.S4")
        out.append("\tVUXTL2 V1.H8, V4.S4")
        out.append("\tVUXTL V2.H4, V5.S4")
        out.append("\tVUXTL2 V2.H8, V6.S4")
        for i in range(4):
            out.append(w_mlav(16 + i, 3 + i, 20 + i))
    out.append("\tSUBS $1, R9, R9")
    out.append("\tBNE tap")
    out.append("\tVST1.P [V16.S4, V17.S4, V18.S4, V19.S4], 64(R0)")
    out.append("\tADD $16, R1, R1")
    out.append("\tADD $%d, R4, R4" % (32 if w16 else 64))
    out.append("\tSUBS $1, R6, R6")
    out.append("\tBNE block")
    out.append("\tRET")
    return out


def main():
    out = ["// Code generated by gen_asm_arm64.py; DO NOT EDIT.", "",
           '#include "textflag.h"']
    for R in range(1, 7):
        out += sdot_kernel(R)
    for R in range(1, 7):
        out += neon_kernel(R)
    out += out_kernels()
    out += dw_acc_kernel(False)
    out += dw_acc_kernel(True)
    with open("kernels_arm64.s", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
