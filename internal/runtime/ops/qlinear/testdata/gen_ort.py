#!/usr/bin/env python3
"""Golden cases for the qlinear kernels, computed by ONNX Runtime.

The ONNX node tests cover one shape per op; these cover what they miss:
groups, depthwise, strides, dilations, asymmetric and SAME padding, 1-d and
3-d convolutions, per-channel weights, int8 activations and outputs, bias,
batched and broadcast matmuls, weights given as inputs instead of constants,
and tiles that cross q8's 64-column panels.

Each case is written in the ONNX backend-test layout (model.onnx,
test_data_set_0/input_*.pb and output_0.pb), the output computed by ONNX
Runtime 1.30 (npm onnxruntime-node, run through tools/peers/ort.js), except
MatMulInteger with a per-row a_zero_point, which ONNX Runtime rejects: its
output is the spec's definition evaluated with numpy.

Run from the repository root with Debian's python3 (onnx, numpy):
    /usr/bin/python3 internal/runtime/ops/qlinear/testdata/gen_ort.py
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../../../.."))
ORT = os.path.join(ROOT, "tools", "peers", "ort.js")
OUT = os.path.join(HERE, "ort")

rng = np.random.default_rng(7)
NP2ONNX = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8, np.int32: TensorProto.INT32, np.float32: TensorProto.FLOAT}


def rand_q(dtype, shape):
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def q_zero(dtype, n=None):
    lo, hi = (90, 170) if dtype == np.uint8 else (-40, 40)
    if n is None:
        return np.array(rng.integers(lo, hi), dtype=dtype)
    return rng.integers(lo, hi, size=(n,)).astype(dtype)


def build(name, op, inputs, consts, out_dtype, attrs, opset=13, domain=""):
    """inputs/consts: lists of (name, array); node input order is
    inputs+consts interleaved as given by the 'order' attribute of attrs."""
    order = attrs.pop("_order")
    tensors = dict(inputs + consts)
    node_inputs = [n if n is not None else "" for n in order]
    node = helper.make_node(op, node_inputs, ["y"], domain=domain, **attrs)
    g_inputs = [helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], a.shape) for n, a in inputs]
    inits = [numpy_helper.from_array(a, n) for n, a in consts]
    y = helper.make_tensor_value_info("y", NP2ONNX[out_dtype], None)
    graph = helper.make_graph([node], name, g_inputs, [y], initializer=inits)
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qtool-gen_ort")
    model.ir_version = 7
    # onnx 1.12 checker insists on an output shape; ONNX Runtime validates the model when it loads it.
    return model


def run_case(name, model, inputs, numpy_ref=None):
    """numpy_ref, when given, computes the output instead of ONNX Runtime,
    for what the ONNX spec allows and ONNX Runtime does not implement."""
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
            t = numpy_helper.from_array(a, n)
            with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())
        if numpy_ref is None:
            subprocess.run(["node", ORT, "run", os.path.join(d, "model.onnx"), tmp] + args, check=True)
            y = np.load(os.path.join(tmp, "y.npy"))
        else:
            y = numpy_ref()
    with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(y, "y").SerializeToString())
    print(name, y.dtype, y.shape, "range", y.min(), y.max())


def qlinearconv(name, xshape, wshape, xdt=np.uint8, wdt=np.int8, ydt=np.uint8, per_channel=True, bias=True,
                w_input=False, **attrs):
    cout = wshape[0]
    x = rand_q(xdt, xshape)
    w = rand_q(wdt, wshape)
    xs = np.array(0.02, np.float32)
    ws = (rng.uniform(0.002, 0.01, size=(cout,)) if per_channel else np.array([0.005])).astype(np.float32)
    k = int(np.prod(wshape[1:]))
    ys = np.array(0.02 * 0.005 * np.sqrt(k) * 150, np.float32)
    xz = q_zero(xdt)
    wz = np.zeros((cout,) if per_channel else (), dtype=wdt) if wdt == np.int8 else q_zero(wdt, cout if per_channel else None)
    yz = q_zero(ydt)
    consts = [("x_scale", xs), ("x_zero_point", xz), ("w_scale", ws), ("w_zero_point", wz), ("y_scale", ys), ("y_zero_point", yz)]
    inputs = [("x", x)]
    if w_input:
        inputs.append(("w", w))
    else:
        consts.append(("w", w))
    order = ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point"]
    if bias:
        consts.append(("B", rng.integers(-3000, 3000, size=(cout,)).astype(np.int32)))
        order.append("B")
    attrs["_order"] = order
    run_case(name, build(name, "QLinearConv", inputs, consts, ydt, attrs), inputs)


def convinteger(name, xshape, wshape, wz_per_channel=False, **attrs):
    x = rand_q(np.uint8, xshape)
    w = rand_q(np.uint8, wshape)
    consts = [("w", w), ("x_zero_point", q_zero(np.uint8)),
              ("w_zero_point", q_zero(np.uint8, wshape[0] if wz_per_channel else None))]
    attrs["_order"] = ["x", "w", "x_zero_point", "w_zero_point"]
    run_case(name, build(name, "ConvInteger", [("x", x)], consts, np.int32, attrs), [("x", x)])


def qlinearmatmul(name, ashape, bshape, adt=np.uint8, bdt=np.int8, ydt=np.uint8, per_column=False, b_input=False):
    a = rand_q(adt, ashape)
    b = rand_q(bdt, bshape)
    n = bshape[-1]
    k = ashape[-1]
    bs = (rng.uniform(0.002, 0.01, size=(n,)) if per_column else np.array([0.005])).astype(np.float32)
    bz = q_zero(bdt, n) if per_column else q_zero(bdt, 1)
    consts = [("a_scale", np.array([0.03], np.float32)), ("a_zero_point", q_zero(adt, 1)), ("b_scale", bs),
              ("b_zero_point", bz), ("y_scale", np.array([0.03 * 0.005 * np.sqrt(k) * 150], np.float32)),
              ("y_zero_point", q_zero(ydt, 1))]
    inputs = [("a", a)]
    if b_input:
        inputs.append(("b", b))
    else:
        consts.append(("b", b))
    attrs = {"_order": ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"]}
    run_case(name, build(name, "QLinearMatMul", inputs, consts, ydt, attrs), inputs)


def matmulinteger(name, ashape, bshape, adt=np.uint8, bdt=np.int8, per_column=False, b_input=False, per_row=False):
    a = rand_q(adt, ashape)
    b = rand_q(bdt, bshape)
    consts = [("a_zero_point", q_zero(adt, ashape[-2]) if per_row else q_zero(adt)),
              ("b_zero_point", q_zero(bdt, bshape[-1]) if per_column else q_zero(bdt))]
    inputs = [("a", a)]
    if b_input:
        inputs.append(("b", b))
    else:
        consts.append(("b", b))
    attrs = {"_order": ["a", "b", "a_zero_point", "b_zero_point"]}
    ref = None
    if per_row:
        # ONNX Runtime accepts only a scalar a_zero_point; the per-row form
        # is computed from the spec's definition in int64 numpy.
        az, bz = consts[0][1].astype(np.int64), consts[1][1].astype(np.int64)
        ref = lambda: ((a.astype(np.int64) - az[:, None]) @ (b.astype(np.int64) - bz)).astype(np.int32)
    run_case(name, build(name, "MatMulInteger", inputs, consts, np.int32, attrs), inputs, ref)


def qlinearadd(name, ashape, bshape, dt=np.uint8, c_scale=0.05, op="QLinearAdd"):
    a = rand_q(dt, ashape)
    b = rand_q(dt, bshape)
    consts = [("a_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("a_zero_point", q_zero(dt)),
              ("b_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("b_zero_point", q_zero(dt)),
              ("c_scale", np.array(c_scale, np.float32)), ("c_zero_point", q_zero(dt))]
    inputs = [("a", a), ("b", b)]
    attrs = {"_order": ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "c_scale", "c_zero_point"]}
    run_case(name, build(name, op, inputs, consts, dt, attrs, domain="com.microsoft"), inputs)


def qgemm(name, m, k, n, adt=np.uint8, bdt=np.int8, ydt=np.uint8, per_column=False, bias_shape=None,
          trans_a=0, trans_b=0, alpha=1.0, float_out=False):
    a = rand_q(adt, [k, m] if trans_a else [m, k])
    b = rand_q(bdt, [n, k] if trans_b else [k, n])
    bs = (rng.uniform(0.002, 0.01, size=(n,)) if per_column else np.array(0.005)).astype(np.float32)
    bz = q_zero(bdt, n) if per_column else q_zero(bdt)
    if bdt == np.int8 and not per_column:
        bz = np.array(0, np.int8)
    consts = [("a_scale", np.array(0.03, np.float32)), ("a_zero_point", q_zero(adt)), ("b", b),
              ("b_scale", bs), ("b_zero_point", bz)]
    order = ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point"]
    if bias_shape is not None:
        consts.append(("c", rng.integers(-20000, 20000, size=bias_shape).astype(np.int32)))
        order.append("c")
    elif not float_out:
        order.append(None)
    if not float_out:
        consts += [("y_scale", np.array(0.03 * 0.005 * np.sqrt(k) * 150 * alpha, np.float32)), ("y_zero_point", q_zero(ydt))]
        order += ["y_scale", "y_zero_point"]
    attrs = {"_order": order, "transA": trans_a, "transB": trans_b, "alpha": alpha}
    inputs = [("a", a)]
    out_dt = np.float32 if float_out else ydt
    run_case(name, build(name, "QGemm", inputs, consts, out_dt, attrs, domain="com.microsoft"), inputs)


def qlinearleakyrelu(name, shape, dt=np.uint8, alpha=None, op="QLinearLeakyRelu", scales=None):
    # Every byte value once, then random ones: the whole table is checked.
    x = np.concatenate([np.arange(256, dtype=np.uint8).view(dt), rand_q(dt, [int(np.prod(shape)) - 256])]).reshape(shape)
    consts = [("x_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("x_zero_point", q_zero(dt)),
              ("y_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("y_zero_point", q_zero(dt))]
    if scales is not None:
        consts = [("x_scale", np.array(scales[0], np.float32)), ("x_zero_point", np.array(scales[1], dt)),
                  ("y_scale", np.array(scales[2], np.float32)), ("y_zero_point", np.array(scales[3], dt))]
    attrs = {"_order": ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"]}
    if alpha is not None:
        attrs["alpha"] = alpha
    inputs = [("x", x)]
    run_case(name, build(name, op, inputs, consts, dt, attrs, domain="com.microsoft"), inputs)


def qlinearconcat(name, shapes, axis, dt=np.uint8, same_as_output=()):
    ys, yz = np.array(rng.uniform(0.02, 0.1), np.float32), q_zero(dt)
    consts = [("y_scale", ys), ("y_zero_point", yz)]
    inputs, order = [], ["y_scale", "y_zero_point"]
    for i, shape in enumerate(shapes):
        x = rand_q(dt, shape)
        inputs.append((f"x{i}", x))
        if i in same_as_output:
            consts += [(f"s{i}", ys.copy()), (f"z{i}", yz.copy())]
        else:
            consts += [(f"s{i}", np.array(rng.uniform(0.02, 0.1), np.float32)), (f"z{i}", q_zero(dt))]
        order += [f"x{i}", f"s{i}", f"z{i}"]
    attrs = {"_order": order, "axis": axis}
    run_case(name, build(name, "QLinearConcat", inputs, consts, dt, attrs, domain="com.microsoft"), inputs)


def qlineargap(name, shape, dt=np.uint8, channels_last=0):
    x = rand_q(dt, shape)
    consts = [("x_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("x_zero_point", q_zero(dt)),
              ("y_scale", np.array(rng.uniform(0.005, 0.05), np.float32)), ("y_zero_point", q_zero(dt))]
    attrs = {"_order": ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"], "channels_last": channels_last}
    inputs = [("x", x)]
    run_case(name, build(name, "QLinearGlobalAveragePool", inputs, consts, dt, attrs, domain="com.microsoft"), inputs)


def qlinearavgpool(name, shape, dt=np.uint8, **attrs):
    x = rand_q(dt, shape)
    consts = [("x_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("x_zero_point", q_zero(dt)),
              ("y_scale", np.array(rng.uniform(0.01, 0.1), np.float32)), ("y_zero_point", q_zero(dt))]
    attrs["_order"] = ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"]
    inputs = [("x", x)]
    run_case(name, build(name, "QLinearAveragePool", inputs, consts, dt, attrs, domain="com.microsoft"), inputs)


def main():
    if not os.path.exists(ORT):
        sys.exit(f"{ORT} not found: run from a qtool checkout with tools/peers installed")
    shutil.rmtree(OUT, ignore_errors=True)
    qlinearconv("qlinearconv_3x3_pad1", [1, 5, 9, 8], [7, 5, 3, 3], pads=[1, 1, 1, 1])
    qlinearconv("qlinearconv_stride2_dil2_group2", [1, 4, 11, 10], [6, 2, 3, 3], wdt=np.uint8, per_channel=False,
                strides=[2, 2], dilations=[2, 2], pads=[2, 1, 0, 3], group=2)
    qlinearconv("qlinearconv_depthwise_s2", [1, 8, 9, 9], [8, 1, 3, 3], strides=[2, 2], pads=[1, 1, 1, 1], group=8)
    qlinearconv("qlinearconv_1d", [2, 3, 17], [4, 3, 5], strides=[2], pads=[2, 2])
    qlinearconv("qlinearconv_3d", [1, 2, 5, 6, 4], [3, 2, 3, 2, 3], pads=[1, 0, 1, 1, 1, 0])
    qlinearconv("qlinearconv_s8_s8_s8", [1, 6, 7, 7], [5, 6, 3, 3], xdt=np.int8, ydt=np.int8, pads=[1, 1, 1, 1])
    qlinearconv("qlinearconv_same_upper_5x5", [1, 3, 7, 7], [4, 3, 5, 5], auto_pad="SAME_UPPER", strides=[2, 2])
    qlinearconv("qlinearconv_1x1_cout70_batch2", [2, 33, 4, 5], [70, 33, 1, 1], bias=True)
    qlinearconv("qlinearconv_k576_cout64", [1, 64, 10, 10], [64, 64, 3, 3], pads=[1, 1, 1, 1])
    qlinearconv("qlinearconv_w_input", [1, 4, 6, 6], [3, 4, 2, 2], w_input=True, bias=False)
    convinteger("convinteger_group_stride", [1, 4, 8, 8], [6, 2, 3, 3], group=2, strides=[2, 1], pads=[1, 0, 1, 2])
    convinteger("convinteger_1x1", [2, 16, 3, 3], [65, 16, 1, 1])
    qlinearmatmul("qlinearmatmul_3d_percol", [3, 5, 37], [37, 70], per_column=True)
    qlinearmatmul("qlinearmatmul_s8_s8", [4, 9], [9, 6], adt=np.int8, ydt=np.int8)
    qlinearmatmul("qlinearmatmul_u8_u8", [7, 130], [130, 65], bdt=np.uint8)
    qlinearmatmul("qlinearmatmul_broadcast_b_input", [2, 1, 4, 9], [3, 9, 6], b_input=True)
    matmulinteger("matmulinteger_k300", [4, 300], [300, 65])
    matmulinteger("matmulinteger_u8u8_percol", [3, 2, 20], [20, 9], bdt=np.uint8, per_column=True)
    matmulinteger("matmulinteger_s8s8_batched", [2, 3, 8], [2, 8, 5], adt=np.int8, b_input=True)
    matmulinteger("matmulinteger_a_per_row", [5, 12], [12, 7], per_row=True)
    matmulinteger("matmulinteger_a_1d", [12], [12, 7])
    matmulinteger("matmulinteger_b_1d", [2, 4, 12], [12])
    qlinearmatmul("qlinearmatmul_a_1d", [40], [40, 9])
    qlinearadd("qlinearadd_same_u8", [2, 8, 5, 7], [2, 8, 5, 7])
    qlinearadd("qlinearadd_same_s8", [3, 77], [3, 77], dt=np.int8)
    qlinearadd("qlinearadd_scalar_b", [4, 33], [1])
    qlinearadd("qlinearadd_scalar_a_s8", [], [5, 19], dt=np.int8)
    qlinearadd("qlinearadd_channel_bcast", [2, 6, 4, 5], [1, 6, 1, 1])
    qlinearadd("qlinearadd_inner_bcast", [3, 1, 9], [3, 10, 9], dt=np.int8)
    qlinearadd("qlinearadd_both_bcast", [4, 1], [1, 21], c_scale=0.2)
    qlinearadd("qlinearmul_same_u8", [2, 8, 5, 7], [2, 8, 5, 7], op="QLinearMul", c_scale=0.3)
    qlinearadd("qlinearmul_scalar_a_s8", [], [5, 19], dt=np.int8, op="QLinearMul", c_scale=0.3)
    qlinearadd("qlinearmul_channel_bcast", [2, 6, 4, 5], [1, 6, 1, 1], op="QLinearMul", c_scale=0.3)
    qgemm("qgemm_u8s8_bias_n", 7, 50, 70, bias_shape=[70])
    qgemm("qgemm_trans_alpha_percol", 5, 33, 20, trans_a=1, trans_b=1, alpha=0.5, per_column=True, bias_shape=[1, 20])
    qgemm("qgemm_s8s8_scalar_bias", 9, 17, 66, adt=np.int8, ydt=np.int8, bias_shape=[])
    qgemm("qgemm_float_out_bias_mn", 4, 40, 12, bias_shape=[4, 12], float_out=True)
    qgemm("qgemm_u8u8_bias_m1", 6, 30, 10, bdt=np.uint8, bias_shape=[6, 1])
    qgemm("qgemm_no_bias", 3, 64, 65)
    qlinearleakyrelu("qlinearleakyrelu_u8", [4, 256])
    qlinearleakyrelu("qlinearleakyrelu_s8_alpha", [2, 3, 100], dt=np.int8, alpha=0.3)
    qlinearleakyrelu("qlinearsigmoid_u8", [2, 256], op="QLinearSigmoid")
    qlinearleakyrelu("qlinearsigmoid_s8", [3, 128], dt=np.int8, op="QLinearSigmoid")
    # Fine output steps (1/256 over [0, 1)) over x in [-8, 8): every table
    # entry is sensitive to the last bits of the approximation.
    qlinearleakyrelu("qlinearsigmoid_fine", [1, 256], op="QLinearSigmoid", scales=(16 / 256, 128, 1 / 256, 0))
    qlinearconcat("qlinearconcat_channels", [[2, 3, 4, 5], [2, 6, 4, 5], [2, 1, 4, 5]], 1, same_as_output=(1,))
    qlinearconcat("qlinearconcat_last_s8", [[3, 7], [3, 2]], -1, dt=np.int8)
    qlineargap("qlinearglobalaveragepool_u8", [2, 5, 7, 7])
    qlineargap("qlinearglobalaveragepool_s8_nhwc", [1, 3, 4, 6], dt=np.int8, channels_last=1)
    qlineargap("qlinearglobalaveragepool_1d", [2, 3, 10])
    qlinearavgpool("qlinearaveragepool_3x3_pad", [1, 3, 9, 8], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    qlinearavgpool("qlinearaveragepool_s2_include_pad_s8", [2, 2, 9, 9], dt=np.int8, kernel_shape=[3, 3],
                   strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    qlinearavgpool("qlinearaveragepool_ceil", [1, 2, 8, 8], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    qlinearavgpool("qlinearaveragepool_1d", [2, 3, 11], kernel_shape=[4], strides=[3], pads=[2, 1])
    qlinearavgpool("qlinearaveragepool_3d", [1, 2, 4, 5, 6], kernel_shape=[2, 3, 2], pads=[0, 1, 1, 1, 0, 0])
    qlinearavgpool("qlinearaveragepool_nhwc", [1, 7, 6, 5], kernel_shape=[2, 2], strides=[2, 1], channels_last=1)
    qlinearavgpool("qlinearaveragepool_same_upper", [1, 3, 7, 7], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")


if __name__ == "__main__":
    main()
