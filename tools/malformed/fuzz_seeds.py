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
