#!/usr/bin/python3
"""Small QDQ ONNX models for the ops qtool's QDQ rewrite runs on integers
besides conv/matmul: table activations, Resize, the normalizations.

    /usr/bin/python3 tools/golden/qdq_ops_models.py DIR   # committed: internal/runtime/qdq/testdata
    /usr/bin/python3 tools/golden/qdq_ops_models.py --mobilenet-v3 DIR
        # torchvision MobileNetV3-small, random weights, float (10 MB, not
        # committed): QTOOL_MNV3=DIR/mobilenet_v3_small.onnx go test ./internal/convert

Written with onnx.helper (PyTorch 1.13 cannot export these quantized ops in
QDQ form), at opset 18. One model per activation type (uint8 and int8):

    x -> Q -> DQ -> op_i -> Q_i -> DQ_i -> y_i      for every op i

every branch reading the same quantized input, with output qparams chosen
from each op's output range for inputs in [-4, 4] (the Clip/Relu branches
get ranges wider than the clip so that the activation is not Q's own clamp
and stays an op). Resize branches keep the input's qparams (ONNX Runtime
drops their Q/DQ pair and resizes the 8-bit tensor), one branch requantizes
and must stay float. The tests compare our rewritten run with ONNX Runtime
and with the unfused DQ -> float op -> Q run. Each model is written with an
input .npy (float32) beside it; everything is deterministic (seeded).
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

OPSET = 18


def qparams(lo, hi, signed):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    zp = int(round(-lo / scale))
    zp = min(max(zp, 0), 255)
    if signed:
        return np.float32(scale), np.int8(zp - 128)
    return np.float32(scale), np.uint8(zp)


class Builder:
    def __init__(self, signed):
        self.signed = signed
        self.nodes, self.inits, self.outputs = [], [], []
        self.n = 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def name(self, base):
        self.n += 1
        return "%s_%d" % (base, self.n)

    def node(self, op, inputs, **attrs):
        out = self.name(op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def qdq(self, x, lo, hi, tag, qp=None):
        s, z = qp if qp is not None else qparams(lo, hi, self.signed)
        sn = self.const(tag + "_scale", np.array(s, dtype=np.float32))
        zn = self.const(tag + "_zp", np.array(z))
        q = self.node("QuantizeLinear", [x, sn, zn])
        return self.node("DequantizeLinear", [q, sn, zn]), (s, z)

    def output(self, x):
        self.outputs.append(x)


def build(kind, signed):
    b = Builder(signed)
    rng = np.random.default_rng(7 + (1 if signed else 0))
    # The norm model's planes exceed 256 elements so that the kernels' code
    # table paths run too.
    shape = [2, 4, 16, 20] if kind == "norm" else [2, 8, 6, 10]
    xd, xq = b.qdq("x", -4.0, 4.0, "x")
    C = shape[1]
    if kind == "act":
        acts = [
            ("HardSwish", {}, (-0.375, 4.0), []),
            ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}, (0.0, 1.0), []),
            ("HardSigmoid", {"alpha": 1.0 / 6, "beta": 0.5}, (0.0, 1.0), []),
            ("Elu", {"alpha": 1.0}, (-1.0, 4.0), []),
            ("Tanh", {}, (-1.0, 1.0), []),
            ("Softplus", {}, (0.0, 4.1), []),
            ("Clip", {}, (-1.0, 5.0), [0.0, 6.0]),      # relu6, Q range wider than the clip
            ("Clip", {}, (-1.5, 1.5), [-1.0, 1.0]),     # hardtanh
            ("Relu", {}, (-0.5, 4.0), []),
        ]
        for op, attrs, (lo, hi), bounds in acts:
            ins = [xd] + [b.const(b.name("clip"), np.array(v, dtype=np.float32)) for v in bounds]
            y = b.node(op, ins, **attrs)
            yd, _ = b.qdq(y, lo, hi, b.name("y"))
            b.output(yd)
        # An activation read twice: both readers see the same table output.
        y = b.node("HardSwish", [xd])
        yd, _ = b.qdq(y, -0.375, 4.0, b.name("y"))
        b.output(b.qdq(b.node("Add", [yd, yd]), -0.75, 8.0, b.name("y"))[0])
    elif kind == "resize":
        empty = b.const("roi_empty", np.array([], dtype=np.float32))
        up = b.const("scales_up", np.array([1, 1, 2, 1.5], dtype=np.float32))
        down = b.const("scales_down", np.array([1, 1, 0.5, 0.6], dtype=np.float32))
        sizes = b.const("sizes", np.array([2, 8, 9, 7], dtype=np.int64))
        cases = [
            ("nearest", "asymmetric", "floor", up, False),
            ("nearest", "half_pixel", "round_prefer_floor", up, False),
            ("nearest", "align_corners", "round_prefer_ceil", up, False),
            ("nearest", "tf_half_pixel_for_nn", "floor", up, False),
            ("nearest", "half_pixel", "ceil", down, False),
            ("nearest", "pytorch_half_pixel", "round_prefer_floor", sizes, True),
            ("linear", "half_pixel", None, up, False),
            ("linear", "asymmetric", None, up, False),
            ("linear", "align_corners", None, up, False),
            ("linear", "pytorch_half_pixel", None, sizes, True),
            ("linear", "half_pixel", None, down, False),
        ]
        for mode, ctm, nm, arg, is_sizes in cases:
            ins = [xd, empty, "", arg] if is_sizes else [xd, empty, arg]
            attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
            if nm:
                attrs["nearest_mode"] = nm
            y = b.node("Resize", ins, **attrs)
            yd, _ = b.qdq(y, 0, 0, b.name("y"), qp=xq)
            b.output(yd)
        # Different output qparams: not a data movement, stays float.
        y = b.node("Resize", [xd, empty, up], mode="nearest")
        yd, _ = b.qdq(y, -6.0, 6.0, b.name("y"))
        b.output(yd)
    elif kind == "norm":
        gamma = (1 + 0.3 * rng.standard_normal(C)).astype(np.float32)
        beta = (0.2 * rng.standard_normal(C)).astype(np.float32)
        mean = (0.5 * rng.standard_normal(C)).astype(np.float32)
        var = (0.5 + rng.random(C)).astype(np.float32)
        g, bt, m, v = (b.const(n, a) for n, a in [("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)])
        lo = float(np.min((-4 - mean) / np.sqrt(var + 1e-5) * np.abs(gamma) + beta)) - 0.1
        hi = float(np.max((4 - mean) / np.sqrt(var + 1e-5) * np.abs(gamma) + beta)) + 0.1
        y = b.node("BatchNormalization", [xd, g, bt, m, v], epsilon=1e-5)
        b.output(b.qdq(y, lo, hi, "bn")[0])
        y = b.node("InstanceNormalization", [xd, g, bt], epsilon=1e-5)
        b.output(b.qdq(y, -3.0, 3.0, "in")[0])
        lg = b.const("ln_gamma", (1 + 0.3 * rng.standard_normal(shape[3])).astype(np.float32))
        lb = b.const("ln_beta", (0.2 * rng.standard_normal(shape[3])).astype(np.float32))
        y = b.node("LayerNormalization", [xd, lg, lb], axis=-1, epsilon=1e-5)
        b.output(b.qdq(y, -3.0, 3.0, "ln")[0])
        lg2 = b.const("ln2_gamma", (1 + 0.3 * rng.standard_normal(shape[1:])).astype(np.float32))
        y = b.node("LayerNormalization", [xd, lg2], axis=1, epsilon=1e-5)
        b.output(b.qdq(y, -3.0, 3.0, "ln2")[0])
        gg = b.const("gn_gamma", (1 + 0.3 * rng.standard_normal(2)).astype(np.float32))
        gb = b.const("gn_beta", (0.2 * rng.standard_normal(2)).astype(np.float32))
        y = b.node("GroupNormalization", [xd, gg, gb], num_groups=2, epsilon=1e-5)
        b.output(b.qdq(y, -3.0, 3.0, "gn")[0])
    else:
        raise ValueError(kind)

    xin = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in b.outputs]
    graph = helper.make_graph(b.nodes, "qdq_" + kind, [xin], outs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qtool-golden")
    model.ir_version = 8
    x = rng.uniform(-4.2, 4.2, size=shape).astype(np.float32)
    return model, x


def mobilenet_v3(out):
    """Float MobileNetV3-small (hardswish, hardsigmoid in squeeze-excite
    blocks) with random weights; BatchNorm statistics re-estimated on random
    data so that activations are not degenerate. Opset 14 (HardSwish)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.mobilenet_v3_small(weights=None)
    m.train()
    with torch.no_grad():
        for _ in range(10):
            m(torch.randn(8, 3, 224, 224))
    m.eval()
    x = torch.randn(1, 3, 224, 224)
    os.makedirs(out, exist_ok=True)
    torch.onnx.export(m, x, os.path.join(out, "mobilenet_v3_small.onnx"), opset_version=14,
                      input_names=["x"], output_names=["y"])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--mobilenet-v3":
        mobilenet_v3(sys.argv[2])
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for kind in ["act", "resize", "norm"]:
        for signed in [False, True]:
            name = "qdq_%s_%s" % (kind, "s8" if signed else "u8")
            model, x = build(kind, signed)
            save(model, os.path.join(out, name + ".onnx"))
            np.save(os.path.join(out, name + ".input.npy"), x)
            print(name)


if __name__ == "__main__":
    main()
