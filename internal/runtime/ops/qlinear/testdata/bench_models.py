#!/usr/bin/env python3
"""Writes the single-op models the qlinear benchmarks time, for running the
same shapes in ONNX Runtime beside them:

    /usr/bin/python3 internal/runtime/ops/qlinear/testdata/bench_models.py /tmp/qbench
    for m in qmm qconv dw pw; do
        node tools/peers/ort.js bench /tmp/qbench/$m.onnx --runs 300 --warmup 20 --threads 1
    done
    go test -run XXX -bench QLinear -benchtime 300x -count 3 ./internal/runtime/ops/qlinear

qmm   QLinearMatMul 64x1024 by 1024x1024 (BenchmarkQLinearMatMul)
qconv QLinearConv 64->64 3x3 pad 1 at 56x56 (BenchmarkQLinearConv)
dw    QLinearConv depthwise 144 channels 3x3 pad 1 at 56x56 (BenchmarkQLinearConvDepthwise)
pw    QLinearConv 1x1 144->24 at 56x56 (BenchmarkQLinearConvPointwise)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def save(path, node, x_name, x_shape, inits, y_shape, y_type=TensorProto.UINT8):
    g = helper.make_graph([node], os.path.basename(path), [helper.make_tensor_value_info(x_name, TensorProto.UINT8, x_shape)],
                          [helper.make_tensor_value_info("y", y_type, y_shape)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, path)


def conv(path, c, cout, k, group):
    w = rng.integers(-128, 128, size=(cout, c // group, k, k), dtype=np.int8)
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "xs"), numpy_helper.from_array(np.array(120, np.uint8), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.full(cout, 0.003, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(cout, np.int8), "wz"), numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz"), numpy_helper.from_array(np.zeros(cout, np.int32), "B")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"],
                            pads=[k // 2] * 4, group=group)
    save(path, node, "x", [1, c, 56, 56], inits, [1, cout, 56, 56])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    b = rng.integers(-128, 128, size=(1024, 1024), dtype=np.int8)
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "as"), numpy_helper.from_array(np.array(120, np.uint8), "az"),
             numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(0.003, np.float32), "bs"),
             numpy_helper.from_array(np.array(0, np.int8), "bz"), numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz")]
    save(os.path.join(out, "qmm.onnx"), helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"]),
         "a", [64, 1024], inits, [64, 1024])
    conv(os.path.join(out, "qconv.onnx"), 64, 64, 3, 1)
    conv(os.path.join(out, "dw.onnx"), 144, 144, 3, 144)
    conv(os.path.join(out, "pw.onnx"), 144, 24, 1, 1)


if __name__ == "__main__":
    main()
