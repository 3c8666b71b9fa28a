#!/usr/bin/python3
"""Golden file for RuleONNX from ONNX Runtime (npm onnxruntime-node, the peer
in tools/peers): QuantizeLinear on adversarial values, for uint8 and int8.

Run from the repository root (needs python3-onnx, python3-numpy, node and
`npm install` done in tools/peers):

    /usr/bin/python3 tools/golden/ort_quantize.py

Writes internal/tensor/testdata/ort_quantize.json: the inputs as float32 bit
patterns and ORT's outputs.
"""
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
f32 = np.float32


def main():
    scale = f32(0.0123)
    specials = [0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, 127.5, 128.5, 255.5, -128.5, 1e-45, 1e30, -1e30,
                3.4e38, -3.4e38, np.inf, -np.inf, np.nan, 9.3e18, 2147483648.0]
    rng = np.random.default_rng(5)
    x = (rng.uniform(-1, 1, 200000) * float(scale) * 300).astype(f32)
    with np.errstate(all="ignore"):
        differ = x[np.rint(x * (f32(1) / scale)) != np.rint(x / scale)][:64]
    xs = np.concatenate([np.array(specials, dtype=f32) * scale, np.array(specials, dtype=f32), differ,
                         (rng.standard_normal(1000) * 2).astype(f32)]).astype(f32)
    out = {"scale": int(np.array([scale], dtype=f32).view(np.uint32)[0]), "x": xs.view(np.uint32).tolist(), "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "x.npy"), xs)
        for name, zt, zv in [("uint8", TensorProto.UINT8, np.uint8(3)), ("int8", TensorProto.INT8, np.int8(-5))]:
            g = helper.make_graph(
                [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], "q",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(xs)])],
                [helper.make_tensor_value_info("y", zt, [len(xs)])],
                [numpy_helper.from_array(np.array(scale, dtype=f32), "s"), numpy_helper.from_array(np.array(zv), "z")])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
            m.ir_version = 7
            mp = os.path.join(tmp, name + ".onnx")
            onnx.save(m, mp)
            od = os.path.join(tmp, name)
            os.mkdir(od)
            subprocess.run(["node", os.path.join(ROOT, "tools", "peers", "ort.js"), "run", mp, od,
                            "x=" + os.path.join(tmp, "x.npy")], check=True)
            y = np.load(os.path.join(od, "y.npy")).astype(np.int64)
            out["cases"].append({"dtype": name, "zero_point": int(zv), "y": y.tolist()})
    path = os.path.join(ROOT, "internal", "tensor", "testdata", "ort_quantize.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
