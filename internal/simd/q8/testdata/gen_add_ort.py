#!/usr/bin/env python3
"""Prints addORTCases for addort_test.go: ONNX Runtime's com.microsoft
QLinearAdd on every pair of codes, as a SHA-256 of the output bytes.

The parameter sets were picked (by a search over random scales and zero
points) where the possible float32 orders of the constant part
zc - (ra*za + rb*zb) -- unfused, fma(ra, za, rb*zb), fma(rb, zb, ra*za) --
and of the folding of a single-element operand give different outputs for
some code pairs, so the hashes pin which order ONNX Runtime (x86 MLAS)
uses. Three layouts per set: A and B both whole (a = code i, b = code j at
element 256*i + j), B a single element per row (b = code i, a = code j) and
A a single element per row (a = code i, b = code j); each row of 256 is one
span of ONNX Runtime's broadcaster, as q8.AddU8 is called by the runtime.

Run from the repository root with Debian's python3 (onnx, numpy) and the
npm onnxruntime-node of tools/peers:
    /usr/bin/python3 internal/simd/q8/testdata/gen_add_ort.py
"""
from ort_qbinary import print_cases

# scale A, B, C (float32 bits), zero points A, B, C, signed
SETS = [
    (0x3d8672a4, 0x3a89abcf, 0x3d69a883, 190, 183, 168, 0),
    (0x3d757b60, 0x3dccc1a8, 0x3cc069fd, 90, -109, -20, 1),
    (0x3d8af89e, 0x3d3fec96, 0x3d811838, 117, 111, 43, 0),
    (0x3d1e6f6a, 0x3d2cfd96, 0x3c16e5c1, 32, 90, -87, 1),
    (0x3d382bfe, 0x3d73f3da, 0x3d9d4e2d, 22, 213, 105, 0),
    (0x3cf26346, 0x3da6f405, 0x3d05896a, -31, 119, -10, 1),
    (0x3cc346fb, 0x3dcb297b, 0x3db987c8, 55, 201, 173, 0),
    (0x3db0db3e, 0x3d1a258a, 0x3c7e8c9e, -57, 112, -104, 1),
    (0x3d95225a, 0x3daa4e11, 0x3bc04e3e, 168, 228, 166, 0),
    (0x3b7d4546, 0x3d971913, 0x3c3e7b3d, -57, 34, 113, 1),
    (0x3db8af15, 0x3cfd9529, 0x3d540465, 221, 14, 86, 0),
    (0x3d0f2468, 0x3da43fde, 0x3c96efb1, 94, 60, -97, 1),
]


def main():
    print_cases("QLinearAdd", "gen_add_ort.py", SETS)


if __name__ == "__main__":
    main()
