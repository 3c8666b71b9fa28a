#!/usr/bin/env python3
"""Prints mulORTCases for mulort_test.go: ONNX Runtime's com.microsoft
QLinearMul on every pair of codes, as a SHA-256 of the output bytes.

MLAS's x86 kernel (onnxruntime/core/mlas/lib/qlmul.cpp, SSE2) computes the
exact product (a - za)(b - zb), converts it to float32, multiplies by the
float32 ratio (sa * sb) / sc, adds float32(zc) (two roundings), rounds half
to even with CVTPS2DQ (INT32_MIN out of range) and saturates through int16
to 8 bits. The parameter sets below pin that order: on each random set
some order a port might pick instead gives a different output for a few
code pairs, and each such order is caught by at least one set (the
multiply and add fused; the ratio as sa * (sb / sc); the product of the
dequantized values (sa (a - za)) (sb (b - zb)) / sc, MLAS's plain C++
fallback); zero points sit at the ends of the range, and the saturating
ratios (outputs clamped; products past 2^31, where CVTPS2DQ's INT32_MIN
turns a large positive value into the low bound) pin the narrowing. `--search` reruns the (seeded) search that picked the random
scales and prints the sets with what each alternative order misses.

Three layouts per set, as in gen_add_ort.py: A and B both whole (a = code
i, b = code j at element 256*i + j), B a single element per row (b = code
i, a = code j) and A a single element per row (a = code i, b = code j).

Run from the repository root with Debian's python3 (onnx, numpy) and the
npm onnxruntime-node of tools/peers:
    /usr/bin/python3 internal/simd/q8/testdata/gen_mul_ort.py
"""
import struct
import sys

import numpy as np

from ort_qbinary import print_cases

# scale A, B, C (float32 bits), zero points A, B, C, signed
SETS = [
    # from --search: each misses the orders the comment names (pairs off)
    (0x3c122975, 0x3c4e6b9c, 0x3cc575bc, 0, 0, 0, 0),  # dequant 1
    (0x3d3673cd, 0x3b78cd27, 0x3d0680af, 128, 128, 128, 0),  # fused 4
    (0x3bbfd1be, 0x3d88d7cb, 0x3da1e287, 255, 0, 255, 0),  # ratio 2, dequant 2
    (0x3da8910c, 0x3e221064, 0x40091efe, 119, 252, 194, 0),  # fused 1
    (0x3ccb3875, 0x3daca0d4, 0x3e100bf4, 0, 0, 0, 1),  # ratio 8, dequant 8
    (0x3d7aa76b, 0x3c92c4eb, 0x3e2dafe9, -128, 127, 127, 1),  # fused 4
    (0x3c620c5e, 0x3b7b250c, 0x3bbf136c, -61, 64, 119, 1),  # dequant 1
    (0x3c65f933, 0x3d33b94d, 0x3de4c3e8, -108, 6, 37, 1),  # fused 1
    (0x3d1cf2cd, 0x3d98fc54, 0x3ecb909d, 139, 197, 95, 0),  # ratio 6, dequant 1
    # saturating: ratio 1000 (clamped, no overflow); 1e5 and 2e5 (products
    # of 21475 and more, and of 10738 and more, pass 2^31: CVTPS2DQ's
    # INT32_MIN gives the low bound); infinite (every output INT32_MIN,
    # 0 * inf being NaN)
    (0x3f000000, 0x3e800000, 0x3903126f, 128, 128, 0, 0),
    (0x3f800000, 0x3f800000, 0x3727c5ac, 0, 0, 0, 0),
    (0x3f800000, 0x3f800000, 0x36a7c5ac, 0, 0, 0, 1),
    (0x60ad78ec, 0x60ad78ec, 0x3f800000, 128, 128, 128, 0),
]


def bits(x):
    return struct.unpack("<I", struct.pack("<f", float(np.float32(x))))[0]


def cvtps2dq(v):
    """CVTPS2DQ on float32 values: round half to even, INT32_MIN outside."""
    r = np.rint(v.astype(np.float64))
    ok = (r >= -2.0**31) & (r <= 2.0**31 - 1)
    return np.where(ok, r, -2.0**31).astype(np.int64)


def narrow(r, signed):
    r = np.clip(r, -32768, 32767)
    return np.clip(r, -128, 127) if signed else np.clip(r, 0, 255)


def grid(signed):
    codes = np.arange(256, dtype=np.int64)
    if signed:
        codes = np.where(codes >= 128, codes - 256, codes)
    return np.repeat(codes, 256), np.tile(codes, 256)


def orders(s, signed):
    """The output over the whole grid under MLAS's order and the others."""
    sa, sb, sc, za, zb, zc = s
    a, b = grid(signed)
    prod = (a - za) * (b - zb)
    pf = prod.astype(np.float32)
    sa, sb, sc = np.float32(sa), np.float32(sb), np.float32(sc)
    zcf = np.float32(zc)
    ratio = np.float32(np.float32(sa * sb) / sc)
    out = {}
    with np.errstate(all="ignore"):
        out["mlas"] = narrow(cvtps2dq((pf * ratio) + zcf), signed)
        fused = (prod.astype(np.float64) * np.float64(ratio) + np.float64(zcf)).astype(np.float32)
        out["fused"] = narrow(cvtps2dq(fused), signed)
        r2 = np.float32(sa * np.float32(sb / sc))
        out["ratio"] = narrow(cvtps2dq((pf * r2) + zcf), signed)
        va = (a - za).astype(np.float32) * sa
        vb = (b - zb).astype(np.float32) * sb
        lo, hi = (-128, 127) if signed else (0, 255)
        c = np.clip((va * vb) / sc, np.float32(lo - zc), np.float32(hi - zc))
        out["dequant"] = np.rint((c + zcf).astype(np.float64)).astype(np.int64)
    return out


def search():
    """Random scales for fixed zero points until some other order misses
    MLAS's somewhere (one it has not missed on an earlier set where
    possible: a miss is rare, about one draw in a hundred, so not every set
    can pin every order), with outputs spread over the range."""
    rng = np.random.default_rng(7)
    zps = [(0, 0, 0, 0), (128, 128, 128, 0), (255, 0, 255, 0), (None, None, None, 0),
           (0, 0, 0, 1), (-128, 127, 127, 1), (None, None, None, 1), (None, None, None, 1),
           (None, None, None, 0)]
    alts = ("fused", "ratio", "dequant")
    covered = set()
    for za, zb, zc, signed in zps:
        lo, hi = (-128, 127) if signed else (0, 255)
        while True:
            z = [int(rng.integers(lo, hi + 1)) if v is None else v for v in (za, zb, zc)]
            sa, sb = (np.float32(10 ** rng.uniform(-2.5, -0.5)) for _ in range(2))
            # sc so that a product of 128 * 128 spans about 128 output codes
            sc = np.float32(float(sa) * float(sb) * 128 * 10 ** rng.uniform(-0.3, 0.3))
            o = orders((sa, sb, sc, *z), signed)
            if np.ptp(o["mlas"]) < 100:
                continue
            miss = {k: int(np.sum(o[k] != o["mlas"])) for k in alts}
            hit = {k for k in alts if miss[k]}
            if hit - covered or hit and covered >= set(alts):
                covered |= hit
                print("    (0x%08x, 0x%08x, 0x%08x, %d, %d, %d, %d),  # missed: %s" % (
                    bits(sa), bits(sb), bits(sc), *z, signed, miss))
                break


def main():
    print_cases("QLinearMul", "gen_mul_ort.py", SETS)


if __name__ == "__main__":
    if sys.argv[1:] == ["--search"]:
        search()
    else:
        main()
