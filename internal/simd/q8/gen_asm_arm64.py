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




def w_smlal(d, n, m, lane, upper):
    if upper:
        return "\tWORD $0x%08x // smlal2 v%d.4s, v%d.8h, v%d.h[%d]" % (smlal_elem(d, n, m, lane, True), d, n, m, lane)
    return "\tWORD $0x%08x // smlal v%d.4s, v%d.4h, v%d.h[%d]" % (smlal_elem(d, n, m, lane, False), d, n, m, lane)


def sxtl(d, n, wide, upper):
    """SXTL{2} Vd.{8H|4S}, Vn.{8B|16B|4H|8H} = SSHLL{2} #0:
    0 Q 0 011110 immh 000 10100 1 Rn Rd, immh=0001 (bytes to halfwords) or
    0010 (halfwords to words), Q=1 for SXTL2 (the upper half)."""
    immh = 0b0010 if wide else 0b0001
    return ((1 if upper else 0) << 30) | (0b011110 << 23) | (immh << 19) | (0b101001 << 10) | (n << 5) | d


def saddw_4s(d, n, m, upper):
    """SADDW{2} Vd.4S, Vn.4S, Vm.{4H|8H} (three different):
    0 Q 0 01110 size 1 Rm 0001 00 Rn Rd, size=01, Q=1 for SADDW2."""
    return ((1 if upper else 0) << 30) | (0b01110 << 24) | (0b01 << 22) | (1 << 21) | (m << 16) | \
        (0b000100 << 10) | (n << 5) | d


def addl_8h(d, n, m, unsigned):
    """UADDL / SADDL Vd.8H, Vn.8B, Vm.8B (three different):
    0 Q U 01110 size 1 Rm 0000 00 Rn Rd, Q=0, size=00, U=1 for UADDL."""
    return ((1 if unsigned else 0) << 29) | (0b01110 << 24) | (1 << 21) | (m << 16) | (n << 5) | d


def w_addl(d, n, m, unsigned):
    op = "uaddl" if unsigned else "saddl"
    return "\tWORD $0x%08x // %s v%d.8h, v%d.8b, v%d.8b" % (addl_8h(d, n, m, unsigned), op, d, n, m)


def smax_16b(d, n, m):
    """SMAX Vd.16B, Vn.16B, Vm.16B (three same): 0 Q 0 01110 size 1 Rm 01100 1 Rn Rd,
    Q=1, size=00."""
    return (1 << 30) | (0b01110 << 24) | (1 << 21) | (m << 16) | (0b01100 << 11) | (1 << 10) | (n << 5) | d


def vec_4s(op, d, n, m):
    """FCMGT / FADD / MUL Vd.4S, Vn.4S, Vm.4S (three same, Q=1):
    0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd; FCMGT U=1 a=1 sz=0 opcode 11100,
    FADD U=0 a=0 sz=0 opcode 11010, MUL U=0 size=10 opcode 10011."""
    u, hi, opcode = {"fcmgt": (1, 0b10, 0b11100), "fadd": (0, 0b00, 0b11010), "mul": (0, 0b10, 0b10011)}[op]
    return (1 << 30) | (u << 29) | (0b01110 << 24) | (hi << 22) | (1 << 21) | (m << 16) | (opcode << 11) | \
        (1 << 10) | (n << 5) | d


def narrow(op, d, n, half, upper):
    """SQXTN / SQXTUN{2} (two-register misc): 0 Q U 01110 size 10000 opcode 10 Rn Rd,
    SQXTN U=0 opcode 10100, SQXTUN U=1 opcode 10010; size=01 narrows 4S to
    4H (halfwords), 00 narrows 8H to 8B; Q=1 writes the upper half (…2)."""
    u, opcode = {"sqxtn": (0, 0b10100), "sqxtun": (1, 0b10010)}[op]
    size = 0b01 if half else 0b00
    return ((1 if upper else 0) << 30) | (u << 29) | (0b01110 << 24) | (size << 22) | (0b10000 << 17) | \
        (opcode << 12) | (0b10 << 10) | (n << 5) | d


def w_sxtl(d, n, wide=False, upper=False):
    ins = "sxtl2" if upper else "sxtl"
    arr = {(False, False): ("8h", "8b"), (False, True): ("8h", "16b"),
           (True, False): ("4s", "4h"), (True, True): ("4s", "8h")}[(wide, upper)]
    return "\tWORD $0x%08x // %s v%d.%s, v%d.%s" % (sxtl(d, n, wide, upper), ins, d, arr[0], n, arr[1])


def w_saddw(d, n, m, upper):
    if upper:
        return "\tWORD $0x%08x // saddw2 v%d.4s, v%d.4s, v%d.8h" % (saddw_4s(d, n, m, True), d, n, m)
    return "\tWORD $0x%08x // saddw v%d.4s, v%d.4s, v%d.4h" % (saddw_4s(d, n, m, False), d, n, m)


def w_smax(d, n, m):
    return "\tWORD $0x%08x // smax v%d.16b, v%d.16b, v%d.16b" % (smax_16b(d, n, m), d, n, m)


def w_vec(op, d, n, m):
    return "\tWORD $0x%08x // %s v%d.4s, v%d.4s, v%d.4s" % (vec_4s(op, d, n, m), op, d, n, m)


def w_narrow(op, d, n, half, upper):
    ins = op + ("2" if upper else "")
    if half:
        arr = ("8h" if upper else "4h", "4s")
    else:
        arr = ("16b" if upper else "8b", "8h")
    return "\tWORD $0x%08x // %s v%d.%s, v%d.%s" % (narrow(op, d, n, half, upper), ins, d, arr[0], n, arr[1])


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


def lookup_kernel():
    """lookupNEON: dst[i] = table[src[i]] for n > 0 bytes. The table sits in
    V16-V31, four groups of 64 entries: TBL looks an index up in the first
    group (0 for an index >= 64), then TBX in each further group with the
    index lowered by 64 more (TBX leaves a lane alone when its index, wrapped
    to a byte, is >= 64, so each lane is written by exactly its group).

    The ragged end: the last 16 bytes are looked up before anything is
    stored and written after the whole blocks, overlapping the last of them
    with the same values, so dst = src (in place) reads no byte it wrote.
    Fewer than 16 bytes go one at a time."""
    out = [""]
    out.append("// func lookupNEON(dst, src *uint8, n int, table *[256]uint8)")
    out.append("TEXT ·lookupNEON(SB), NOSPLIT, $0-32")
    out.append("\tMOVD dst+0(FP), R0")
    out.append("\tMOVD src+8(FP), R1")
    out.append("\tMOVD n+16(FP), R2")
    out.append("\tMOVD table+24(FP), R3")
    out.append("\tCMP $16, R2")
    out.append("\tBLT lkbyte")
    for g in range(3):
        regs = ", ".join("V%d.B16" % (16 + 4 * g + i) for i in range(4))
        out.append("\tVLD1.P 64(R3), [%s]" % regs)
    out.append("\tVLD1 (R3), [%s]" % ", ".join("V%d.B16" % (28 + i) for i in range(4)))
    out.append("\tVMOVI $64, V15.B16")

    def look(x, y, t):
        # V<y> = table[V<x>], V<t> a temporary.
        out.append("\tVTBL V%d.B16, [V16.B16, V17.B16, V18.B16, V19.B16], V%d.B16" % (x, y))
        prev = x
        for g in range(1, 4):
            out.append("\tVSUB V15.B16, V%d.B16, V%d.B16" % (prev, t))
            prev = t
            regs = ", ".join("V%d.B16" % (16 + 4 * g + i) for i in range(4))
            out.append("\tVTBX V%d.B16, [%s], V%d.B16" % (t, regs, y))

    out.append("\tADD R2, R1, R4")
    out.append("\tSUB $16, R4, R4")
    out.append("\tVLD1 (R4), [V12.B16]")
    look(12, 13, 14)
    out.append("\tADD R2, R0, R5")
    out.append("\tSUB $16, R5, R5")
    out.append("\tLSR $4, R2, R6")
    out.append("\tTBZ $0, R6, lkpairs")
    out.append("\tVLD1.P 16(R1), [V0.B16]")
    look(0, 1, 2)
    out.append("\tVST1.P [V1.B16], 16(R0)")
    out.append("lkpairs:")
    out.append("\tLSR $1, R6, R6")
    out.append("\tCBZ R6, lkend")
    out.append("lkloop:")
    out.append("\tVLD1.P 32(R1), [V0.B16, V1.B16]")
    look(0, 2, 4)
    look(1, 3, 5)
    out.append("\tVST1.P [V2.B16, V3.B16], 32(R0)")
    out.append("\tSUBS $1, R6, R6")
    out.append("\tBNE lkloop")
    out.append("lkend:")
    out.append("\tVST1 [V13.B16], (R5)")
    out.append("\tRET")
    out.append("lkbyte:")
    out.append("\tMOVBU.P 1(R1), R4")
    out.append("\tMOVBU (R3)(R4), R4")
    out.append("\tMOVBU.P R4, 1(R0)")
    out.append("\tSUBS $1, R2, R2")
    out.append("\tBNE lkbyte")
    out.append("\tRET")
    return out


def max_kernels():
    """maxU8NEON / maxS8NEON: dst[i] = max(dst[i], src[i]) over n bytes, n a
    positive multiple of 32 (UMAX, or SMAX for int8)."""
    out = []
    for signed in (False, True):
        name = "maxS8NEON" if signed else "maxU8NEON"
        out.append("")
        out.append("// func %s(dst, src *uint8, n int)" % name)
        out.append("TEXT ·%s(SB), NOSPLIT, $0-24" % name)
        out.append("\tMOVD dst+0(FP), R0")
        out.append("\tMOVD src+8(FP), R1")
        out.append("\tMOVD n+16(FP), R2")
        out.append("%sloop:" % name)
        out.append("\tVLD1 (R0), [V0.B16, V1.B16]")
        out.append("\tVLD1.P 32(R1), [V2.B16, V3.B16]")
        for v in (0, 1):
            if signed:
                out.append(w_smax(v, v, 2 + v))
            else:
                out.append("\tVUMAX V%d.B16, V%d.B16, V%d.B16" % (2 + v, v, v))
        out.append("\tVST1.P [V0.B16, V1.B16], 32(R0)")
        out.append("\tSUBS $32, R2, R2")
        out.append("\tBNE %sloop" % name)
        out.append("\tRET")
    return out


def colsum_kernels():
    """colSumU8NEON / colSumS8NEON: acc[c] += sum over n > 0 pixels p of
    src[p*stride + c] for 8 channels c, the bytes as uint8 or int8. Four
    pixels a step: UADDL/SADDL add two pixels' bytes into 16 bits, ADD the
    other pair (at most 4·255 or 4·−128, exact in int16), and UADDW/SADDW
    widen that into the int32 sums; the last n mod 4 pixels one at a time.
    Exact for any n the int32 sums hold (and wrapping as Go's += where they
    do not)."""
    out = []
    for signed in (False, True):
        name = "colSumS8NEON" if signed else "colSumU8NEON"
        out.append("")
        out.append("// func %s(acc *int32, src *uint8, n, stride int)" % name)
        out.append("TEXT ·%s(SB), NOSPLIT, $0-32" % name)
        out.append("\tMOVD acc+0(FP), R0")
        out.append("\tMOVD src+8(FP), R1")
        out.append("\tMOVD n+16(FP), R2")
        out.append("\tMOVD stride+24(FP), R3")
        out.append("\tVLD1 (R0), [V0.S4, V1.S4]")

        def add_wide(h):
            # The eight int16 sums of V<h> into V0 (channels 0-3), V1 (4-7).
            if signed:
                out.append(w_saddw(0, 0, h, False))
                out.append(w_saddw(1, 1, h, True))
            else:
                out.append("\tVUADDW V%d.H4, V0.S4, V0.S4" % h)
                out.append("\tVUADDW2 V%d.H8, V1.S4, V1.S4" % h)

        out.append("%sloop4:" % name)
        out.append("\tCMP $4, R2")
        out.append("\tBLT %sloop1" % name)
        for v in range(2, 6):
            out.append("\tVLD1.P (R1)(R3), [V%d.B8]" % v)
        out.append(w_addl(2, 2, 3, not signed))
        out.append(w_addl(4, 4, 5, not signed))
        out.append("\tVADD V4.H8, V2.H8, V2.H8")
        add_wide(2)
        out.append("\tSUB $4, R2, R2")
        out.append("\tB %sloop4" % name)
        out.append("%sloop1:" % name)
        out.append("\tCBZ R2, %sdone" % name)
        out.append("\tVLD1.P (R1)(R3), [V2.B8]")
        if signed:
            out.append(w_sxtl(2, 2))
        else:
            out.append("\tVUXTL V2.B8, V2.H8")
        add_wide(2)
        out.append("\tSUB $1, R2, R2")
        out.append("\tB %sloop1" % name)
        out.append("%sdone:" % name)
        out.append("\tVST1 [V0.S4, V1.S4], (R0)")
        out.append("\tRET")
    return out


def widen_words(out, signed, x, tmp, dst, w):
    """Widens the w (8 or 16) bytes of V<x> to int32 lanes in dst[0..w/4)
    (element order), using the registers tmp[0..1]."""
    if signed:
        out.append(w_sxtl(tmp[0], x))
        if w == 16:
            out.append(w_sxtl(tmp[1], x, upper=True))
    else:
        out.append("\tVUXTL V%d.B8, V%d.H8" % (x, tmp[0]))
        if w == 16:
            out.append("\tVUXTL2 V%d.B16, V%d.H8" % (x, tmp[1]))
    for h in range(w // 8):
        if signed:
            out.append(w_sxtl(dst[2 * h], tmp[h], wide=True))
            out.append(w_sxtl(dst[2 * h + 1], tmp[h], wide=True, upper=True))
        else:
            out.append("\tVUXTL V%d.H4, V%d.S4" % (tmp[h], dst[2 * h]))
            out.append("\tVUXTL2 V%d.H8, V%d.S4" % (tmp[h], dst[2 * h + 1]))


def convert_narrow(out, signed, acc, mask, half, res, w, lim, imin):
    """The float32 lanes acc[0..w/4) to w bytes in V<res>, as x86 does it:
    VCVTPS2DQ (round half to even, INT32_MIN for NaN and for values at or
    beyond 2^31), then saturating narrows to int16 and to 8 bits. FCVTNS
    rounds the same way but saturates a value >= 2^31 to INT32_MAX and NaN
    to 0, so the lanes where 2^31 > v fails (V<lim> holds 2^31) take INT32_MIN
    (V<imin>) instead. Below -2^31 both give INT32_MIN."""
    nv = w // 4
    for i in range(nv):
        out.append(w_vec("fcmgt", mask[i], lim, acc[i]))
    for i in range(nv):
        out.append(w_two("fcvtns", acc[i], acc[i]))
    for i in range(nv):
        out.append("\tVBIF V%d.B16, V%d.B16, V%d.B16" % (mask[i], imin, acc[i]))
    for h in range(nv // 2):
        out.append(w_narrow("sqxtn", half[h], acc[2 * h], True, False))
        out.append(w_narrow("sqxtn", half[h], acc[2 * h + 1], True, True))
    op = "sqxtn" if signed else "sqxtun"
    out.append(w_narrow(op, res, half[0], False, False))
    if w == 16:
        out.append(w_narrow(op, res, half[1], False, True))


def x86_limits(out, lim, imin, rtmp):
    """V<lim> = 2^31 as float32 in every lane, V<imin> = INT32_MIN."""
    out.append("\tMOVW $0x4f000000, %s" % rtmp)
    out.append("\tVDUP %s, V%d.S4" % (rtmp, lim))
    out.append("\tMOVW $0x80000000, %s" % rtmp)
    out.append("\tVDUP %s, V%d.S4" % (rtmp, imin))


def add_kernels():
    """addU8NEON / addS8NEON: QLinearAdd over n elements (a positive multiple
    of 8), 16 a step and a last 8: per element v = fixed, v = fma(b, rb, v),
    v = fma(a, ra, v) (FMLA: one rounding each, in add.go's order), then
    convert_narrow. a and b advance by sa and sb bytes an element, 1 or 0; an
    operand with stride 0 is a broadcast that the caller has folded into
    fixed and whose ratio it has zeroed, so the kernel reads dst in its place
    (n readable bytes; any finite x gives fma(x, 0, v) = v up to the sign of
    a zero, which converts alike) and never reads past a one-byte operand."""
    out = []
    for signed in (False, True):
        name = "addS8NEON" if signed else "addU8NEON"
        out.append("")
        out.append("// func %s(dst, a, b *uint8, n int, sa, sb int, p *addConsts)" % name)
        out.append("TEXT ·%s(SB), NOSPLIT, $0-56" % name)
        out.append("\tMOVD dst+0(FP), R0")
        out.append("\tMOVD a+8(FP), R1")
        out.append("\tMOVD b+16(FP), R2")
        out.append("\tMOVD n+24(FP), R3")
        out.append("\tMOVD sa+32(FP), R4")
        out.append("\tMOVD sb+40(FP), R5")
        out.append("\tMOVD p+48(FP), R6")
        out.append("\tCBNZ R4, %sa" % name)
        out.append("\tMOVD R0, R1")
        out.append("%sa:" % name)
        out.append("\tCBNZ R5, %sb" % name)
        out.append("\tMOVD R0, R2")
        out.append("%sb:" % name)
        # V24 = ra, V25 = rb, V26 = fixed (addConsts), V27 = 2^31, V28 = INT32_MIN.
        out.append("\tVLD1R.P 4(R6), [V24.S4]")
        out.append("\tVLD1R.P 4(R6), [V25.S4]")
        out.append("\tVLD1R (R6), [V26.S4]")
        x86_limits(out, 27, 28, "R7")

        def block(w):
            out.append("\tVLD1.P %d(R1), [V0.B%d]" % (w, w))
            out.append("\tVLD1.P %d(R2), [V1.B%d]" % (w, w))
            nv = w // 4
            av, bv, acc = [2, 3, 4, 5], [6, 7, 8, 9], [10, 11, 12, 13]
            widen_words(out, signed, 0, [18, 19], av, w)
            widen_words(out, signed, 1, [20, 21], bv, w)
            for i in range(nv):
                out.append(w_two("scvtf", av[i], av[i]))
                out.append(w_two("scvtf", bv[i], bv[i]))
            for i in range(nv):
                out.append("\tVMOV V26.B16, V%d.B16" % acc[i])
            for i in range(nv):
                out.append("\tVFMLA V25.S4, V%d.S4, V%d.S4" % (bv[i], acc[i]))
            for i in range(nv):
                out.append("\tVFMLA V24.S4, V%d.S4, V%d.S4" % (av[i], acc[i]))
            convert_narrow(out, signed, acc, [14, 15, 16, 17], [18, 19], 22, w, 27, 28)
            out.append("\tVST1.P [V22.B%d], %d(R0)" % (w, w))

        out.append("%sloop:" % name)
        out.append("\tCMP $16, R3")
        out.append("\tBLT %stail" % name)
        block(16)
        out.append("\tSUB $16, R3, R3")
        out.append("\tB %sloop" % name)
        out.append("%stail:" % name)
        out.append("\tCBZ R3, %sdone" % name)
        block(8)
        out.append("%sdone:" % name)
        out.append("\tRET")
    return out


def mul_scalar_kernels():
    """mulScalarU8NEON / mulScalarS8NEON: MulScalarU8 over n elements (a
    positive multiple of 16): the int32 product (x − za)·k (MUL wraps as
    Go's int32 does), SCVTF, FMUL by ratio and FADD of zc (two roundings, as
    MulU8's x86 order: no fused multiply-add here), then convert_narrow."""
    out = []
    for signed in (False, True):
        name = "mulScalarS8NEON" if signed else "mulScalarU8NEON"
        out.append("")
        out.append("// func %s(dst, src *uint8, n int, za, k int32, ratio, zc float32)" % name)
        out.append("TEXT ·%s(SB), NOSPLIT, $0-40" % name)
        out.append("\tMOVD dst+0(FP), R0")
        out.append("\tMOVD src+8(FP), R1")
        out.append("\tMOVD n+16(FP), R2")
        # V24 = za, V25 = k, V26 = ratio, V23 = zc, V27 = 2^31, V28 = INT32_MIN.
        for arg, off, v in (("za", 24, 24), ("k", 28, 25), ("ratio", 32, 26), ("zc", 36, 23)):
            out.append("\tMOVWU %s+%d(FP), R3" % (arg, off))
            out.append("\tVDUP R3, V%d.S4" % v)
        x86_limits(out, 27, 28, "R3")
        out.append("%sloop:" % name)
        out.append("\tVLD1.P 16(R1), [V0.B16]")
        acc = [10, 11, 12, 13]
        widen_words(out, signed, 0, [18, 19], acc, 16)
        for v in acc:
            out.append("\tVSUB V24.S4, V%d.S4, V%d.S4" % (v, v))
        for v in acc:
            out.append(w_vec("mul", v, v, 25))
        for v in acc:
            out.append(w_two("scvtf", v, v))
        for v in acc:
            out.append(w_three("fmul", v, v, 26))
        for v in acc:
            out.append(w_vec("fadd", v, v, 23))
        convert_narrow(out, signed, acc, [14, 15, 16, 17], [18, 19], 22, 16, 27, 28)
        out.append("\tVST1.P [V22.B16], 16(R0)")
        out.append("\tSUBS $16, R2, R2")
        out.append("\tBNE %sloop" % name)
        out.append("\tRET")
    return out


def mul_kernels():
    """mulU8NEON / mulS8NEON: MulU8 on two whole operands over n elements (a
    positive multiple of 16): the int32 product (a − za)·(b − zb) (SUB and
    MUL wrap as Go's int32 does), then mul_scalar_kernels' float steps."""
    out = []
    for signed in (False, True):
        name = "mulS8NEON" if signed else "mulU8NEON"
        out.append("")
        out.append("// func %s(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32)" % name)
        out.append("TEXT ·%s(SB), NOSPLIT, $0-48" % name)
        out.append("\tMOVD dst+0(FP), R0")
        out.append("\tMOVD a+8(FP), R1")
        out.append("\tMOVD b+16(FP), R2")
        out.append("\tMOVD n+24(FP), R3")
        # V24 = za, V25 = zb, V26 = ratio, V23 = zc, V27 = 2^31, V28 = INT32_MIN.
        for arg, off, v in (("za", 32, 24), ("zb", 36, 25), ("ratio", 40, 26), ("zc", 44, 23)):
            out.append("\tMOVWU %s+%d(FP), R4" % (arg, off))
            out.append("\tVDUP R4, V%d.S4" % v)
        x86_limits(out, 27, 28, "R4")
        out.append("%sloop:" % name)
        out.append("\tVLD1.P 16(R1), [V0.B16]")
        out.append("\tVLD1.P 16(R2), [V1.B16]")
        acc, bv = [10, 11, 12, 13], [2, 3, 4, 5]
        widen_words(out, signed, 0, [18, 19], acc, 16)
        widen_words(out, signed, 1, [20, 21], bv, 16)
        for v in acc:
            out.append("\tVSUB V24.S4, V%d.S4, V%d.S4" % (v, v))
        for v in bv:
            out.append("\tVSUB V25.S4, V%d.S4, V%d.S4" % (v, v))
        for v, w in zip(acc, bv):
            out.append(w_vec("mul", v, v, w))
        for v in acc:
            out.append(w_two("scvtf", v, v))
        for v in acc:
            out.append(w_three("fmul", v, v, 26))
        for v in acc:
            out.append(w_vec("fadd", v, v, 23))
        convert_narrow(out, signed, acc, [14, 15, 16, 17], [18, 19], 22, 16, 27, 28)
        out.append("\tVST1.P [V22.B16], 16(R0)")
        out.append("\tSUBS $16, R3, R3")
        out.append("\tBNE %sloop" % name)
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
    out += lookup_kernel()
    out += max_kernels()
    out += colsum_kernels()
    out += add_kernels()
    out += mul_scalar_kernels()
    out += mul_kernels()
    with open("kernels_arm64.s", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
