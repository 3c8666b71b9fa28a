#!/usr/bin/env python3
"""Write the seed corpus of internal/model's FuzzLoadBytes.

Seeds are small valid models from the ONNX backend tests (Apache-2.0): plain
ops, an LSTM, a QLinearConv, and If/Loop models with subgraphs, so the fuzzer
starts from every structure the loader handles. Run from the repo root:

    python3 tools/malformed/fuzz_seeds.py [SHARED_DIR]
"""
import os
import sys

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
seeds = [
    os.path.join(shared, "onnx-node", t, "model.onnx")
    for t in ["test_relu", "test_conv_with_strides_padding", "test_batchnorm_example",
              "test_lstm_defaults", "test_qlinearconv", "test_gemm_default_scalar_bias"]
] + [
    "/usr/share/libonnx-testdata/data/node/test_if/model.onnx",
    "/usr/share/libonnx-testdata/data/node/test_loop11/model.onnx",
]
out = "internal/model/testdata/fuzz/FuzzLoadBytes"
os.makedirs(out, exist_ok=True)
for path in seeds:
    if not os.path.exists(path):
        print("skip (missing):", path)
        continue
    data = open(path, "rb").read()
    name = os.path.basename(os.path.dirname(path))
    # Go's corpus encoding: a header line, then one Go literal per argument.
    lit = '[]byte("' + "".join("\\x%02x" % b for b in data) + '")'
    with open(os.path.join(out, name), "w") as f:
        f.write("go test fuzz v1\n" + lit + "\n")
    print("wrote", name, len(data), "bytes")

# The command-line corpus (testdata/malformed/cli, written by
# go run ./tools/malformed) seeds the other readers' fuzzers: its npy/npz
# files the npy reader, its tables the table reader, its images the image
# decoder (with each preprocessing recipe of FuzzDecodeImage).
cli = "testdata/malformed/cli"


def lit(data):
    return '[]byte("' + "".join("\\x%02x" % b for b in data) + '")'


def seed(target_dir, name, *args):
    os.makedirs(target_dir, exist_ok=True)
    with open(os.path.join(target_dir, name), "w") as f:
        f.write("go test fuzz v1\n" + "\n".join(args) + "\n")


for root, _, files in os.walk(cli):
    for fn in sorted(files):
        path = os.path.join(root, fn)
        data = open(path, "rb").read()
        rel = os.path.relpath(path, cli).replace(os.sep, "_")
        if len(data) > 64 << 10:
            continue
        if fn.endswith((".npy", ".npz")):
            seed("internal/npy/testdata/fuzz/FuzzRead", rel, lit(data))
        elif fn.endswith(".json"):
            seed("internal/calibrate/testdata/fuzz/FuzzParseTable", rel, lit(data))
        elif fn.endswith((".png", ".jpg")):
            for recipe in range(4):
                seed("internal/calibrate/testdata/fuzz/FuzzDecodeImage", "%s_%d" % (rel, recipe), lit(data), "byte('\\x%02x')" % recipe)
print("wrote seeds from", cli)
