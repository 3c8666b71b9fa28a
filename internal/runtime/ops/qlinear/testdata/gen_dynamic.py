#!/usr/bin/env python3
"""Golden cases for the dynamically quantized com.microsoft ops, computed by
ONNX Runtime: DynamicQuantizeMatMul and DynamicQuantizeLSTM.

Small random models (opset 13 + com.microsoft 1): int8 and uint8 weights,
per-tensor and per-column scales, constant and graph-input weights, batched
matmuls; LSTMs forward, reverse and bidirectional, with and without bias,
peepholes, initial states and sequence_lens, with Y requested or not. Each is
written in the ONNX backend-test layout (model.onnx, test_data_set_0/
input_*.pb, output_*.pb); outputs are ONNX Runtime's (npm onnxruntime-node,
1 thread, through tools/peers/ort.js).

Run from anywhere with Debian's python3 (onnx, numpy):
    /usr/bin/python3 internal/runtime/ops/qlinear/testdata/gen_dynamic.py
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../../../.."))
ORT = os.path.join(ROOT, "tools", "peers", "ort.js")
OUT = os.path.join(HERE, "dynamic")

rng = np.random.default_rng(11)
NP2ONNX = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8, np.int32: TensorProto.INT32,
           np.float32: TensorProto.FLOAT}


def model_of(name, node, inputs, consts, outputs):
    g_inputs = [helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], a.shape) for n, a in inputs]
    inits = [numpy_helper.from_array(a, n) for n, a in consts]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph([node], name, g_inputs, outs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                          producer_name="qtool-gen_dynamic")
    m.ir_version = 7
    return m


def run_case(name, model, inputs, outputs):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for i, (n, a) in enumerate(inputs):
            p = os.path.join(tmp, f"{n}.npy")
            np.save(p, a)
            args.append(f"{n}={p}")
            with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())
        subprocess.run(["node", ORT, "run", os.path.join(d, "model.onnx"), tmp] + args, check=True)
        for i, o in enumerate(outputs):
            y = np.load(os.path.join(tmp, f"{o}.npy"))
            with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(y, o).SerializeToString())
            print(name, o, y.dtype, y.shape, "range", y.min(), y.max())


def rand_w(dt, shape):
    if dt == np.int8:
        return rng.integers(-127, 128, size=shape, dtype=np.int8)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def dqmm(name, ashape, bshape, bdt=np.int8, per_col=False, bias=True, b_input=False, shift=0.0, a=None,
         scale_shape=None, zp_shape=None):
    n = bshape[-1]
    if a is None:
        a = (rng.standard_normal(ashape) + shift).astype(np.float32)
    b = rand_w(bdt, bshape)
    bs = (rng.uniform(0.002, 0.01, size=(n,)) if per_col else np.array(0.004)).astype(np.float32)
    if scale_shape is not None:
        bs = rng.uniform(0.002, 0.01, size=scale_shape).astype(np.float32)
    zshape = zp_shape if zp_shape is not None else ((n,) if per_col else ())
    if bdt == np.int8:
        bz = np.zeros(zshape, np.int8)
    else:
        bz = rng.integers(100, 160, size=zshape).astype(np.uint8)
    inputs = [("a", a)]
    consts = [("b_scale", bs), ("b_zero_point", bz)]
    if b_input:
        inputs.append(("b", b))
    else:
        consts.append(("b", b))
    order = ["a", "b", "b_scale", "b_zero_point"]
    if bias:
        consts.append(("bias", rng.uniform(-1, 1, size=(n,)).astype(np.float32)))
        order.append("bias")
    node = helper.make_node("DynamicQuantizeMatMul", order, ["y"], domain="com.microsoft")
    run_case(name, model_of(name, node, inputs, consts, ["y"]), inputs, ["y"])


def dqlstm(name, seq, batch, isz, hid, direction="forward", wdt=np.int8, per_col=False, bias=True, peep=False,
           init=False, lens=None, want_y=True, clip=None, input_forget=False):
    D = 2 if direction == "bidirectional" else 1
    x = rng.standard_normal((seq, batch, isz)).astype(np.float32)
    w = rand_w(wdt, (D, isz, 4 * hid))
    r = rand_w(wdt, (D, hid, 4 * hid))

    def qp(k):
        shape = (D, 4 * hid) if per_col else (D,)
        s = (rng.uniform(0.5, 1.5, size=shape) / (64 * np.sqrt(k))).astype(np.float32)
        if wdt == np.int8:
            z = np.zeros(shape, np.int8)
        else:
            # ONNX Runtime wants per-column uint8 zero points all equal
            # (across directions too); per-tensor ones may differ.
            zd = rng.integers(110, 150, size=(1 if per_col else D, 1))
            z = np.broadcast_to(zd, (D, 4 * hid) if per_col else (D, 1)).reshape(shape).astype(np.uint8)
        return s, z

    ws, wz = qp(isz)
    rs, rz = qp(hid)
    inputs = [("x", x)]
    consts = [("w", w), ("r", r), ("w_scale", ws), ("w_zero_point", wz), ("r_scale", rs), ("r_zero_point", rz)]
    names = ["x", "w", "r", "", "", "", "", "", "w_scale", "w_zero_point", "r_scale", "r_zero_point"]
    if bias:
        consts.append(("B", rng.uniform(-0.5, 0.5, size=(D, 8 * hid)).astype(np.float32)))
        names[3] = "B"
    if lens is not None:
        inputs.append(("seq_lens", np.array(lens, np.int32)))
        names[4] = "seq_lens"
    if init:
        inputs.append(("h0", (0.5 * rng.standard_normal((D, batch, hid))).astype(np.float32)))
        inputs.append(("c0", rng.standard_normal((D, batch, hid)).astype(np.float32)))
        names[5], names[6] = "h0", "c0"
    if peep:
        consts.append(("P", rng.uniform(-0.5, 0.5, size=(D, 3 * hid)).astype(np.float32)))
        names[7] = "P"
    outs = ["y", "y_h", "y_c"] if want_y else ["", "y_h", "y_c"]
    attrs = {"hidden_size": hid, "direction": direction}
    if clip is not None:
        attrs["clip"] = clip
    if input_forget:
        attrs["input_forget"] = 1
    node = helper.make_node("DynamicQuantizeLSTM", names, outs, domain="com.microsoft", **attrs)
    real = [o for o in outs if o]
    run_case(name, model_of(name, node, inputs, consts, real), inputs, real)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    dqmm("dqmm_s8_tensor_bias", (3, 5, 24), (24, 70))
    dqmm("dqmm_u8_zp_nobias", (7, 33), (33, 19), bdt=np.uint8, bias=False, shift=0.8)
    dqmm("dqmm_s8_percol", (5, 48), (48, 130), per_col=True)
    dqmm("dqmm_u8_percol_zp", (4, 20), (20, 65), bdt=np.uint8, per_col=True)
    dqmm("dqmm_b_input_batched", (2, 5, 16), (2, 16, 24), b_input=True, bias=False)
    dqmm("dqmm_negative_a", (6, 12), (12, 8), shift=-3.0)
    # A on a grid of scale/2 with range [-127.5, 127.5]·scale, scale 0.25: the
    # zero point (127.5) and many x/scale are exact ties, so rounding half to
    # even (not away from zero) is tested.
    ties = (rng.integers(-255, 256, size=(6, 20)) * 0.125).astype(np.float32)
    ties[0, 0], ties[0, 1] = -31.875, 31.875
    dqmm("dqmm_ties", ties.shape, (20, 9), a=ties)
    # B's shape with K = 1: per column of every batch matrix.
    dqmm("dqmm_batched_percol", (2, 3, 16), (2, 16, 24), bdt=np.uint8, scale_shape=(2, 1, 24), zp_shape=(2, 1, 24))
    # A b_scale shape ONNX Runtime does not take in the GEMM: applied to the
    # output afterwards, bias included.
    dqmm("dqmm_scale_after", (2, 3, 16), (2, 16, 24), scale_shape=(24,))
    dqlstm("lstm_fwd_tensor", 5, 3, 10, 8)
    dqlstm("lstm_fwd_u8_noy", 4, 2, 7, 6, wdt=np.uint8, bias=False, want_y=False)
    dqlstm("lstm_rev_chan_init_lens", 6, 3, 9, 12, direction="reverse", per_col=True, init=True, lens=[6, 4, 2])
    dqlstm("lstm_bi_chan_peep_init", 5, 4, 8, 16, direction="bidirectional", per_col=True, peep=True, init=True,
           lens=[5, 3, 5, 1])
    dqlstm("lstm_bi_tensor_batch6", 4, 6, 12, 20, direction="bidirectional")
    dqlstm("lstm_fwd_clip_forget_lens_noy", 5, 3, 6, 10, per_col=True, init=True, clip=0.7, input_forget=True,
           lens=[2, 5, 3], want_y=False)
    dqlstm("lstm_bi_u8_chan_lens0", 3, 3, 5, 4, direction="bidirectional", wdt=np.uint8, per_col=True, lens=[3, 0, 2])


if __name__ == "__main__":
    main()
