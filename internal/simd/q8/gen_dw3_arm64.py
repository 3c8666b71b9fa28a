#!/usr/bin/env python3
"""Generates dw3_kernels_arm64.s, DWConv3x3's arm64 kernels (run: python3 gen_dw3_arm64.py).

dw3RowS1NEON / dw3RowS2NEON compute one output row of a 3x3 depthwise
convolution (padding 1, stride 1 or 2) for one block of 16 channels, with
the requantizing output stage fused. They read the three input rows in place
(the caller points the top and bottom padding rows at a row of zero points)
and take the left and right padding taps from a vector of zero points, so no
bordered copy of the image is made.

Per output pixel: the accumulators start at the column terms
(-xZero*sum w + bias), each of the 9 taps loads 16 input bytes, widens them
to int16 (UXTL/UXTL2: 0..255, exact as signed) and SMLAL/SMLAL2 add the exact
products with the int16 weights (DWWeights.w16) into int32, wrapping as the
Go loop's int32 sums. Padding taps read zero points, so the sums are exactly
DWConv's (whose padding taps point at a pixel of zero points). The output
stage is outQNEON's (gen_asm_arm64.py): SCVTF, FMUL by the scale, FMAX/FMIN
clamp, FCVTNS (round half to even), + zero point, the low byte of each lane;
the same float32 operations as quantize1, so the bytes are identical, uint8
or int8 alike (the clamp has already bounded the value).

Register use: V0-V17 the block's weights (tap t = 3*ky+kx in V(2t), channels
0-7, and V(2t+1), channels 8-15), V18-V21 the accumulators, V22-V24 and
V25-V27 two sets (bytes, low and high int16 halves) alternating over the
taps, V25-V28 the scales in the output stage, V29 the output zero point,
V30/V31 the clamp bounds.

Go's assembler has no SMLAL (vector), SCVTF, FMUL, FMAX, FMIN or FCVTNS on
vectors: those are WORDs with the instruction in a comment, encoded by
gen_asm_arm64.py's encoders (SMLAL, SCVTF, FMUL, FMAX, FMIN, FCVTNS) and
sdot_vec below; dw3_encoding_test.go re-encodes every WORD with
neon_encoding_test.go's independent a64Encode, and with llvm-mc where it is
installed.
"""

import sys

from gen_asm_arm64 import w_smlalv, w_three, w_two

# ---- encoders (ARM ARM A64 Advanced SIMD) ----


def sdot_vec(d, n, m):
    """SDOT Vd.4S, Vn.16B, Vm.16B (three same, dot product): 0 Q U 01110 size 0
    Rm 1001 0 1 Rn Rd, Q=1, U=0, size=10 (gen_asm_arm64.py has only SDOT by
    element)."""
    assert max(d, n, m) < 32
    return (1 << 30) | (0b01110 << 24) | (0b10 << 22) | (m << 16) | (0b100101 << 10) | (n << 5) | d


def w_sdotv(d, n, m):
    return "\tWORD $0x%08x // sdot v%d.4s, v%d.16b, v%d.16b" % (sdot_vec(d, n, m), d, n, m)


# ---- the argument block (dw3Arm in dw3_arm64.go; TestDW3ArmLayout checks) ----

OFF = {
    "r0": 0, "r1": 8, "r2": 16,  # input rows above, at and below, column 0 of the block
    "zp": 24,                    # 16 bytes of xZero: the left and right padding
    "dst": 32,                   # output pixel 0 of the row, the block's first channel
    "w": 40,                     # tap 0's 16 int16 weights
    "ct": 48, "scale": 56,       # the block's 16 column terms and scales
    "wstride": 64,               # bytes from one tap's weights to the next (2c)
    "xstride": 72,               # bytes from one input pixel to the next (c)
    "ostride": 80,               # bytes from one output pixel to the next (Ldc)
    "mid": 88,                   # pixels after the first that have no padding
    "lr": 96,                    # 1: the row's one pixel is padded left and right
    "last": 104,                 # 1: a right-padded last pixel follows the mid ones
    "zpo": 112, "fmin": 116, "fmax": 120,
}

ROWS = ["R0", "R1", "R2"]
SETS = [(22, 23, 24), (25, 26, 27)]


def pixel(out, stride, pad_l, pad_r, last):
    """One output pixel. Row pointers point at the pixel's first input
    column (i*stride - 1), or at column 0 for a left-padded pixel, and are
    left at the next pixel's first column unless last."""
    out.append("\tVLD1 (R6), [V18.S4, V19.S4, V20.S4, V21.S4]")
    t = 0
    for ky in range(3):
        p = ROWS[ky]
        for kx in range(3):
            b, lo, hi = SETS[t % 2]
            if (kx == 0 and pad_l) or (kx == 2 and pad_r):
                out.append("\tVLD1 (R3), [V%d.B16]" % b)
            elif kx == 2 or (kx == 1 and pad_r):
                out.append("\tVLD1 (%s), [V%d.B16]" % (p, b))
            else:
                out.append("\tVLD1.P (%s)(R9), [V%d.B16]" % (p, b))
            out.append("\tVUXTL V%d.B8, V%d.H8" % (b, lo))
            out.append("\tVUXTL2 V%d.B16, V%d.H8" % (b, hi))
            out.append(w_smlalv(18, lo, 2 * t, False))
            out.append(w_smlalv(19, lo, 2 * t, True))
            out.append(w_smlalv(20, hi, 2 * t + 1, False))
            out.append(w_smlalv(21, hi, 2 * t + 1, True))
            t += 1
        # After the row's loads the pointer is at column i*stride + 1;
        # the next pixel starts at i*stride + stride - 1.
        if not last and stride == 1:
            out.append("\tSUB R9, %s, %s" % (p, p))
    out_stage(out, [18, 19, 20, 21], [25, 26, 27, 28], [22, 23], last)

def row_kernel(stride):
    name = "dw3RowS%dNEON" % stride
    out = ["", "// func %s(a *dw3Arm)" % name, "TEXT ·%s(SB), NOSPLIT, $0-8" % name]
    out.append("\tMOVD a+0(FP), R15")
    regs = [("r0", "R0"), ("r1", "R1"), ("r2", "R2"), ("zp", "R3"), ("dst", "R4"), ("w", "R5"),
            ("ct", "R6"), ("scale", "R7"), ("wstride", "R8"), ("xstride", "R9"), ("ostride", "R10"),
            ("mid", "R11"), ("lr", "R12"), ("last", "R13")]
    for f, r in regs:
        out.append("\tMOVD %d(R15), %s" % (OFF[f], r))
    for t in range(9):
        out.append("\tVLD1.P (R5)(R8), [V%d.H8, V%d.H8]" % (2 * t, 2 * t + 1))
    out.append("\tADD $%d, R15, R14" % OFF["zpo"])
    out.append("\tVLD1R.P 4(R14), [V29.S4]")
    out.append("\tVLD1R.P 4(R14), [V30.S4]")
    out.append("\tVLD1R (R14), [V31.S4]")
    out.append("\tCBNZ R12, lr")
    # A first pixel with a right-hand neighbour or none: left-padded.
    out.append("\tCBNZ R11, first")
    out.append("\tCBNZ R13, first")
    pixel(out, stride, True, False, True)
    out.append("\tRET")
    out.append("first:")
    pixel(out, stride, True, False, False)
    out.append("\tCBZ R11, right")
    out.append("mid:")
    pixel(out, stride, False, False, False)
    out.append("\tSUBS $1, R11, R11")
    out.append("\tBNE mid")
    out.append("right:")
    out.append("\tCBZ R13, done")
    pixel(out, stride, False, True, True)
    out.append("done:")
    out.append("\tRET")
    out.append("lr:")
    pixel(out, stride, True, True, True)
    out.append("\tRET")
    return out


def out_stage(out, acc, sc, tmp, last):
    """outQNEON's requantization of the int32 lanes acc (channels in order)
    with the scales loaded into sc, stored as 16 bytes at R4 (then R4 +=
    R10 unless last)."""
    out.append("\tVLD1 (R7), [%s]" % ", ".join("V%d.S4" % v for v in sc))
    for v in acc:
        out.append(w_two("scvtf", v, v))
    for v, s in zip(acc, sc):
        out.append(w_three("fmul", v, v, s))
    for v in acc:
        out.append(w_three("fmax", v, v, 30))
    for v in acc:
        out.append(w_three("fmin", v, v, 31))
    for v in acc:
        out.append(w_two("fcvtns", v, v))
    for v in acc:
        out.append("\tVADD V29.S4, V%d.S4, V%d.S4" % (v, v))
    # The low byte of each int32 lane, in order.
    out.append("\tVUZP1 V%d.H8, V%d.H8, V%d.H8" % (acc[1], acc[0], tmp[0]))
    out.append("\tVUZP1 V%d.H8, V%d.H8, V%d.H8" % (acc[3], acc[2], tmp[1]))
    out.append("\tVUZP1 V%d.B16, V%d.B16, V%d.B16" % (tmp[1], tmp[0], tmp[0]))
    if last:
        out.append("\tVST1 [V%d.B16], (R4)" % tmp[0])
    else:
        out.append("\tVST1.P [V%d.B16], (R4)(R10)" % tmp[0])


# ---- the SDOT kernels ----
#
# dw3RowS1SDOT / dw3RowS2SDOT (weights that fit int8, CPUs with the dot
# product): one input column of 16 channels is interleaved into four vectors
# whose 32-bit lane j of vector v holds channel 4v+j's bytes of the three
# input rows (and row 2's again, against a zero weight), each flipped to int8
# (x^0x80 = x-128); one SDOT (vector) per vector then adds a kernel column's
# three taps for four channels. The weights, per kernel column, are the same
# four vectors of (w[0][kx], w[1][kx], w[2][kx], 0) (packW3Arm), and the
# accumulators start at the column terms plus 128*sum w, which undoes the
# flip: sum (x-128)*w + 128*sum w = sum x*w, exact modulo 2^32 as the Go
# loop's int32 sums. Each column is built once per row and kept in one of
# three slots of four registers while the pixels that read it run (stride 1:
# one new column per pixel, the slots rotating; stride 2: two, the even one in
# a fixed slot, the odd ones alternating), so the loops are unrolled over the
# rotation. Padding columns are every byte the flipped zero point (R14), one
# register (V24) standing for all four vectors: its fourth byte meets a zero
# weight too.
#
# Registers: V0-V11 the column slots, V12-V15 and V16-V19 the weights of a
# kernel column (two sets), V20-V23 the accumulators, V24-V27 the column
# build's temporaries and the scales, V28 0x80 in every byte, V29-V31 as in
# the NEON kernels.

SLOTS = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
ACC = [20, 21, 22, 23]


def build_col(out, s):
    """Loads the next input column of the three rows (the row pointers move
    one pixel on) and interleaves it into slot s."""
    for r in range(3):
        out.append("\tVLD1.P (%s)(R9), [V%d.B16]" % (ROWS[r], 24 + r))
    for r in range(3):
        out.append("\tVEOR V28.B16, V%d.B16, V%d.B16" % (24 + r, 24 + r))
    # Byte pairs (row 0, row 1) and (row 2, row 2) of channels 0-7 and 8-15,
    # then pairs of those pairs: channel 4v+j in lane j of vector v.
    out.append("\tVZIP1 V26.B16, V26.B16, V27.B16")
    out.append("\tVZIP2 V26.B16, V26.B16, V26.B16")
    out.append("\tVZIP1 V25.B16, V24.B16, V%d.B16" % s[2])
    out.append("\tVZIP2 V25.B16, V24.B16, V%d.B16" % s[3])
    out.append("\tVZIP1 V27.H8, V%d.H8, V%d.H8" % (s[2], s[0]))
    out.append("\tVZIP2 V27.H8, V%d.H8, V%d.H8" % (s[2], s[1]))
    out.append("\tVZIP1 V26.H8, V%d.H8, V%d.H8" % (s[3], s[2]))
    out.append("\tVZIP2 V26.H8, V%d.H8, V%d.H8" % (s[3], s[3]))


def sdot_pixel(out, builds, cols, last):
    """One output pixel: builds the columns of builds (slots, in column
    order), then sums the kernel columns kx over cols[kx] (a slot, or None
    for a padding column)."""
    out.append("\tVLD1 (R6), [%s]" % ", ".join("V%d.S4" % v for v in ACC))
    for s in builds:
        build_col(out, s)
    if None in cols:
        out.append("\tVDUP R14, V24.B16")
    wsets = [[12, 13, 14, 15], [16, 17, 18, 19], [12, 13, 14, 15]]
    for kx in range(3):
        regs = ", ".join("V%d.B16" % v for v in wsets[kx])
        if kx < 2:
            out.append("\tVLD1.P 64(R5), [%s]" % regs)
        else:
            out.append("\tVLD1 (R5), [%s]" % regs)
        col = cols[kx] if cols[kx] is not None else [24] * 4
        for v in range(4):
            out.append(w_sdotv(ACC[v], col[v], wsets[kx][v]))
    out.append("\tSUB $128, R5, R5")
    out_stage(out, ACC, [24, 25, 26, 27], [24, 25], last)


def sdot_kernel(stride):
    name = "dw3RowS%dSDOT" % stride
    out = ["", "// func %s(a *dw3Arm)" % name, "TEXT ·%s(SB), NOSPLIT, $0-8" % name]
    out.append("\tMOVD a+0(FP), R15")
    regs = [("r0", "R0"), ("r1", "R1"), ("r2", "R2"), ("zp", "R3"), ("dst", "R4"), ("w", "R5"),
            ("ct", "R6"), ("scale", "R7"), ("xstride", "R9"), ("ostride", "R10"),
            ("mid", "R11"), ("lr", "R12"), ("last", "R13")]
    for f, r in regs:
        out.append("\tMOVD %d(R15), %s" % (OFF[f], r))
    out.append("\tMOVBU (R3), R14")
    out.append("\tEOR $0x80, R14, R14")
    out.append("\tVMOVI $128, V28.B16")
    out.append("\tADD $%d, R15, R16" % OFF["zpo"])
    out.append("\tVLD1R.P 4(R16), [V29.S4]")
    out.append("\tVLD1R.P 4(R16), [V30.S4]")
    out.append("\tVLD1R (R16), [V31.S4]")
    out.append("\tCBNZ R12, lr")
    out.append("\tCBNZ R11, first")
    out.append("\tCBNZ R13, first")
    if stride == 1:
        # Pixel i reads columns i-1, i, i+1, column k in slot (k+1) mod 3.
        sl = lambda k: SLOTS[(k + 1) % 3]
        sdot_pixel(out, [sl(0), sl(1)], [None, sl(0), sl(1)], True)
        out.append("\tRET")
        out.append("first:")
        sdot_pixel(out, [sl(0), sl(1)], [None, sl(0), sl(1)], False)
        out.append("\tCBZ R11, right1")
        out.append("mid:")
        # Pixels i = 1, 2, 3 (mod 3); after each, the next may be the last.
        for i in (1, 2, 3):
            sdot_pixel(out, [sl(i + 1)], [sl(i - 1), sl(i), sl(i + 1)], False)
            out.append("\tSUBS $1, R11, R11")
            if i < 3:
                out.append("\tBEQ right%d" % ((i + 1) % 3))
            else:
                out.append("\tBNE mid")
        for p in (1, 2, 0):
            out.append("right%d:" % p)
            out.append("\tCBZ R13, done")
            sdot_pixel(out, [], [sl(p - 1), sl(p), None], True)
            out.append("\tRET")
        out.append("lr:")
        sdot_pixel(out, [sl(0)], [None, sl(0), None], True)
    else:
        # Pixel i reads columns 2i-1, 2i, 2i+1: the even one in slot 0, the
        # odd ones in slots 1 + (i mod 2) for column 2i+1.
        ev, od = SLOTS[0], lambda i: SLOTS[1 + i % 2]
        sdot_pixel(out, [ev, od(0)], [None, ev, od(0)], True)
        out.append("\tRET")
        out.append("first:")
        sdot_pixel(out, [ev, od(0)], [None, ev, od(0)], False)
        out.append("\tCBZ R11, right1")
        out.append("mid:")
        for i in (1, 2):
            sdot_pixel(out, [ev, od(i)], [od(i - 1), ev, od(i)], False)
            out.append("\tSUBS $1, R11, R11")
            if i < 2:
                out.append("\tBEQ right0")
            else:
                out.append("\tBNE mid")
        for p in (1, 0):
            out.append("right%d:" % p)
            out.append("\tCBZ R13, done")
            sdot_pixel(out, [ev], [od(p - 1), ev, None], True)
            out.append("\tRET")
        out.append("lr:")
        sdot_pixel(out, [ev], [None, ev, None], True)
    out.append("\tRET")
    out.append("done:")
    out.append("\tRET")
    return out


def main():
    out = ["// Code generated by gen_dw3_arm64.py; DO NOT EDIT.", "", '#include "textflag.h"']
    for stride in (1, 2):
        out += row_kernel(stride)
    for stride in (1, 2):
        out += sdot_kernel(stride)
    with open("dw3_kernels_arm64.s", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
