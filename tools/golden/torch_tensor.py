#!/usr/bin/python3
"""Golden files for internal/tensor from real PyTorch 1.13.

Run from the repository root with Debian's python (python3-torch):

    /usr/bin/python3 tools/golden/torch_tensor.py [section ...]

Sections: qparams, quantize, ops (default: all). Output goes to
internal/tensor/testdata/*.json. Every float32 is stored as its IEEE bit
pattern (uint32) so the Go tests compare exactly; integers are stored as is.
Inputs are generated here with a fixed seed and stored in the files, so the Go
tests never need to reproduce NumPy's generator.
"""
import json
import os
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "tensor", "testdata")

DT = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32}
SCHEMES = {
    "per_tensor_affine": torch.per_tensor_affine,
    "per_tensor_symmetric": torch.per_tensor_symmetric,
    "per_channel_affine": torch.per_channel_affine,
    "per_channel_symmetric": torch.per_channel_symmetric,
    "per_channel_affine_float_qparams": torch.per_channel_affine_float_qparams,
}


def bits(a):
    """float32 array-like -> list of uint32 bit patterns."""
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def write(name, obj):
    path = os.path.normpath(os.path.join(OUT, name))
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


class Obs(torch.ao.quantization.observer.UniformQuantizationObserverBase):
    """The abstract observer base with a trivial forward, so that
    _calculate_qparams is exercised without MinMaxObserver's extra checks."""

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise NotImplementedError


def qparams_cases():
    f32 = np.float32
    ranges = [
        (0.0, 0.0), (1.0, 1.0), (-1.0, -1.0), (-3.0, -1.0), (1.0, 3.0), (-1.0, 2.0),
        (-2.5, 7.25), (-0.0, 0.0), (-7.0, 7.0), (-1e-10, 2e-10), (1e-45, 3e-45),
        (-1e-38, 1e-38), (-3e38, 3e38), (-3.4e38, 0.0), (0.0, 3.4e38), (-1e6, 1e6),
        (-0.1, 0.1), (-0.3, 0.6), (-5.1, 0.2), (-0.2, 5.1), (-1.0, 0.0), (0.0, 1.0),
        (-128.0, 127.0), (0.0, 255.0), (-65504.0, 65504.0), (-1.1920929e-07, 0.0),
        (-2**31, 2**31), (-1.5, 1e-7),
    ]
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = sorted((rng.standard_normal(2) * 10 ** rng.uniform(-4, 4)).astype(f32).tolist())
        ranges.append((a, b))
    ranges.append((2.0, 1.0))  # min > max: torch asserts
    return [(f32(a).item(), f32(b).item()) for a, b in ranges]


def gen_qparams():
    ranges = qparams_cases()
    custom = {
        "quint8": [None, (0, 255), (0, 127), (0, 15), (0, 1000), (-1, 255), (0, 0)],
        "qint8": [None, (-128, 127), (-64, 63), (-8, 7), (-1, 1), (-3, 0), (-128, 128), (1, 5)],
        "qint32": [None, (-1000, 1000), (-(2**30), 2**30 - 1), (-(2**31), 2**31 - 1), (0, 2**31 - 1)],
    }
    cases = []
    for dname, dt in DT.items():
        for sname in ["per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                      "per_channel_symmetric", "per_channel_affine_float_qparams"]:
            for rr in (False, True):
                for cr in custom[dname]:
                    for eps in (None, 1e-3, 0.5):
                        if eps is not None and cr is not None:
                            continue
                        kw = dict(dtype=dt, qscheme=SCHEMES[sname], reduce_range=rr)
                        if cr is not None:
                            kw["quant_min"], kw["quant_max"] = cr
                        if eps is not None:
                            kw["eps"] = eps
                        case = {"dtype": dname, "scheme": sname, "reduce_range": rr,
                                "has_range": cr is not None, "qmin": cr[0] if cr else 0,
                                "qmax": cr[1] if cr else 0,
                                "eps": bits([eps])[0] if eps is not None else 0}
                        try:
                            obs = Obs(**kw)
                        except (AssertionError, ValueError, RuntimeError) as e:
                            case["error"] = str(e).split("\n")[0][:80]
                            cases.append(case)
                            continue
                        case["actual_qmin"], case["actual_qmax"] = int(obs.quant_min), int(obs.quant_max)
                        mins = [a for a, b in ranges]
                        maxs = [b for a, b in ranges]
                        res = []
                        if sname.startswith("per_tensor"):
                            for a, b in ranges:
                                try:
                                    s, z = obs._calculate_qparams(torch.tensor(a, dtype=torch.float32),
                                                                  torch.tensor(b, dtype=torch.float32))
                                    res.append([bits([a])[0], bits([b])[0], bits(s)[0], int(z[0])])
                                except AssertionError:
                                    res.append([bits([a])[0], bits([b])[0], "error"])
                        else:
                            good = [(a, b) for a, b in ranges if a <= b]
                            s, z = obs._calculate_qparams(torch.tensor([a for a, b in good], dtype=torch.float32),
                                                          torch.tensor([b for a, b in good], dtype=torch.float32))
                            for (a, b), si, zi in zip(good, s.tolist(), z.tolist()):
                                zz = bits([zi])[0] if sname.endswith("float_qparams") else int(zi)
                                res.append([bits([a])[0], bits([b])[0], bits([si])[0], zz])
                        case["results"] = res
                        cases.append(case)
    write("qparams.json", {"torch": torch.__version__, "cases": cases})


def adversarial(scale, zp, qmin, qmax):
    """Values that probe rounding and saturation for one (scale, zp)."""
    f32 = np.float32
    s = f32(scale)
    k = np.arange(-6, 6, dtype=np.float64)
    v = []
    # exact ties and their neighbours, around 0 and at both range ends
    for base in (0, qmin - zp, qmax - zp):
        t = ((base + k + 0.5) * float(s)).astype(f32)
        v += t.tolist() + np.nextafter(t, f32(np.inf)).tolist() + np.nextafter(t, f32(-np.inf)).tolist()
        v += ((base + k) * float(s)).astype(f32).tolist()
    v += [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38, 3.4028235e38, -3.4028235e38,
          1e30, -1e30, 1e19, 9.3e18, 9.2e18, -9.3e18, 2.0**63, 2.0**62, 2.0**24 + 2, 2.0**24 + 3, 1e10, -1e10,
          float("inf"), float("-inf"), float("nan")]
    # values where x * (1/scale) and x / scale round differently
    rng = np.random.default_rng(int(scale * 1e6) % 1000)
    x = (rng.uniform(-1, 1, 200000) * float(s) * (qmax - qmin + 8)).astype(f32)
    with np.errstate(all="ignore"):
        d = x[np.rint(x * (f32(1) / s)) != np.rint(x / s)]
    v += d[:16].tolist()
    return np.array(v, dtype=f32)


QRANGE = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-(2**31), 2**31 - 1)}


def gen_quantize():
    f32 = np.float32
    rng = np.random.default_rng(2)
    per_tensor = []
    params = {
        "quint8": [(0.1, 0), (0.0123, 3), (1.0, 128), (0.5, 255), (2.0**-10, 17), (3.7, 0), (1e-6, 100)],
        "qint8": [(0.1, 0), (0.0123, 3), (1.0, -128), (0.5, 127), (2.0**-10, -17), (3.7, 0), (1e-6, 5)],
        "qint32": [(0.1, 0), (0.0123, 3), (1.0, 2**24 + 1), (0.5, -(2**31)), (2.0**-10, 2**31 - 1), (1e-6, -5)],
    }
    for dname, plist in params.items():
        qmin, qmax = QRANGE[dname]
        for scale, zp in plist:
            scale = float(f32(scale))
            x = np.concatenate([adversarial(scale, zp, qmin, qmax),
                                (rng.standard_normal(64) * scale * 60).astype(f32)])
            qt = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, DT[dname])
            per_tensor.append({"dtype": dname, "scale": bits([scale])[0], "zero_point": zp,
                               "x": bits(x), "q": qt.int_repr().to(torch.int64).tolist(),
                               "dq": bits(qt.dequantize().numpy())})
    # dequantize of every integer value at the ends of the int32 range
    for scale, zp in [(0.37, -7), (1.0, 2**31 - 1), (2.0**-20, -(2**31))]:
        scale = float(f32(scale))
        q = torch.tensor([2**31 - 1, -(2**31), 5, 0, -1, 2**24 + 1, -(2**24) - 3], dtype=torch.int32)
        qt = torch._make_per_tensor_quantized_tensor(q, scale, zp)
        per_tensor.append({"dtype": "qint32", "scale": bits([scale])[0], "zero_point": zp, "dequantize_only": True,
                           "q": q.tolist(), "dq": bits(qt.dequantize().numpy())})
    per_channel = []
    for dname in DT:
        qmin, qmax = QRANGE[dname]
        for shape, axis in [((4, 3, 5), 0), ((4, 3, 5), 1), ((4, 3, 5), 2), ((2, 3, 4, 6), 1), ((2, 3, 4, 6), 3), ((7,), 0)]:
            c = shape[axis]
            scales = (np.exp(rng.uniform(-6, 1, c))).astype(f32)
            zps = rng.integers(max(qmin, -100), min(qmax, 100) + 1, c)
            x = (rng.standard_normal(shape) * 40 * scales.reshape([-1 if i == axis else 1 for i in range(len(shape))])).astype(f32)
            # ties and saturation for channel 0
            flat = x.reshape(-1)
            flat[:4] = [0.5 * scales[0], 1e30, -1e30, np.nan] if flat.size >= 4 else flat[:4]
            qt = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                            torch.from_numpy(zps), axis, DT[dname])
            per_channel.append({"dtype": dname, "shape": list(shape), "axis": axis, "scales": bits(scales),
                                "zero_points": zps.tolist(), "x": bits(x),
                                "q": qt.int_repr().to(torch.int64).reshape(-1).tolist(),
                                "dq": bits(qt.dequantize().numpy())})
    # per-channel dequantize at the ends of the int32 range (q - zp overflow)
    q = torch.tensor([[2**31 - 1, -(2**31), 7], [2**31 - 1, -(2**31), -3]], dtype=torch.int32)
    scales = np.array([0.37, 2.0**-20], dtype=f32)
    zps = np.array([-7, 2**31 - 1])
    qt = torch._make_per_channel_quantized_tensor(q, torch.from_numpy(scales.astype(np.float64)), torch.from_numpy(zps), 0)
    per_channel.append({"dtype": "qint32", "shape": [2, 3], "axis": 0, "scales": bits(scales), "zero_points": zps.tolist(),
                        "dequantize_only": True, "q": q.reshape(-1).tolist(), "dq": bits(qt.dequantize().numpy())})
    write("quantize.json", {"torch": torch.__version__, "per_tensor": per_tensor, "per_channel": per_channel})


QSCHEME_NAMES = {torch.per_tensor_affine: "per_tensor_affine", torch.per_tensor_symmetric: "per_tensor_symmetric",
                 torch.per_channel_affine: "per_channel_affine", torch.per_channel_symmetric: "per_channel_symmetric"}
DT_NAMES = {v: k for k, v in DT.items()}


def qdesc(t):
    """A quantized tensor as plain JSON: integers, shape and qparams."""
    d = {"dtype": DT_NAMES[t.dtype], "shape": list(t.shape), "scheme": QSCHEME_NAMES[t.qscheme()],
         "q": t.int_repr().to(torch.int64).reshape(-1).tolist()}
    if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        d["scales"] = bits(t.q_per_channel_scales().numpy())
        d["zero_points"] = t.q_per_channel_zero_points().tolist()
        d["axis"] = int(t.q_per_channel_axis())
    else:
        d["scales"] = bits([t.q_scale()])
        d["zero_points"] = [int(t.q_zero_point())]
        d["axis"] = 0
    return d


def gen_ops():
    f32 = np.float32
    rng = np.random.default_rng(3)
    cases = []

    def run(inp, op, args, fn):
        case = {"input": qdesc(inp), "op": op, "args": args}
        try:
            r = fn(inp)
            if isinstance(r, tuple):
                case["result"] = qdesc(r[0])
                case["indices"] = r[1].reshape(-1).tolist()
            else:
                if r.is_quantized:
                    r.dequantize()  # a per-channel result torch cannot use counts as refused
                case["result"] = qdesc(r)
        except (RuntimeError, IndexError, ValueError) as e:
            case["error"] = str(e).split("\n")[0][:100]
        if op == "resize_" and "result" in case:
            # storage grown by resize_ is uninitialized: keep what is defined
            case["result"]["q"] = case["result"]["q"][:len(case["input"]["q"])]
        cases.append(case)

    def pt(shape, dt, scale=0.05, zp=None, spread=4.0):
        if zp is None:
            zp = {"quint8": 128, "qint8": 0, "qint32": 7}[dt]
        x = torch.from_numpy((rng.standard_normal(shape) * spread).astype(f32))
        return torch.quantize_per_tensor(x, float(f32(scale)), zp, DT[dt])

    def pc(shape, axis, dt="qint8"):
        c = shape[axis]
        sc = np.exp(rng.uniform(-4, -1, c)).astype(f32).astype(np.float64)
        zp = rng.integers(-5, 6, c) if dt != "quint8" else rng.integers(100, 150, c)
        x = torch.from_numpy((rng.standard_normal(shape) * 2).astype(f32))
        return torch.quantize_per_channel(x, torch.from_numpy(sc), torch.from_numpy(zp), axis, DT[dt])

    inputs = [pt((2, 3, 4), "quint8"), pt((2, 3, 4), "qint8"), pt((3, 4), "qint32", 0.01), pc((2, 3, 4), 1), pc((2, 3, 4), 0, "quint8"), pc((2, 3, 4), 2)]
    for t in inputs:
        run(t, "reshape", {"shape": [6, 4]}, lambda t: t.reshape(6, 4))
        run(t, "reshape", {"shape": [2, 3, 2, 2]}, lambda t: t.reshape(2, 3, 2, 2))
        run(t, "reshape", {"shape": [-1]}, lambda t: t.reshape(-1))
        run(t, "reshape", {"shape": [4, -1]}, lambda t: t.reshape(4, -1))
        run(t, "flatten", {"start": 0, "end": -1}, lambda t: t.flatten())
        if t.dim() > 2:
            run(t, "flatten", {"start": 1, "end": 2}, lambda t: t.flatten(1, 2))
        run(t, "flatten", {"start": 0, "end": 1}, lambda t: t.flatten(0, 1))
        run(t, "as_strided", {"size": [2, 2], "stride": [1, 2], "offset": 1}, lambda t: t.as_strided((2, 2), (1, 2), 1))
        run(t, "select", {"dim": 0, "index": 1}, lambda t: t.select(0, 1))
        run(t, "select", {"dim": 1, "index": -1}, lambda t: t.select(1, -1))
        run(t, "select", {"dim": -1, "index": 2}, lambda t: t.select(-1, 2))
        run(t, "slice", {"dim": 1, "start": 1, "stop": 3, "step": 1}, lambda t: t[:, 1:3])
        run(t, "slice", {"dim": 0, "start": -1, "stop": 100, "step": 1}, lambda t: t[-1:100])
        run(t, "slice", {"dim": -1, "start": 0, "stop": 4, "step": 2}, lambda t: t[..., 0:4:2])
        run(t, "slice", {"dim": 1, "start": 2, "stop": 1, "step": 1}, lambda t: t[:, 2:1])
        run(t, "transpose", {"d0": 0, "d1": 1}, lambda t: t.transpose(0, 1))
        run(t, "permute", {"dims": list(range(t.dim()))[::-1]}, lambda t: t.permute(*list(range(t.dim()))[::-1]))
        run(t, "max", {}, lambda t: t.max())
        run(t, "min", {}, lambda t: t.min())
        run(t, "resize_", {"shape": [3, 8]}, lambda t: t.clone().resize_(3, 8))
        run(t, "resize_", {"shape": [2, 2]}, lambda t: t.clone().resize_(2, 2))
        run(t, "clone", {}, lambda t: t.clone())
    for shape in [(2, 3, 1), (4, 1), (1, 3)]:
        for t in [pt(shape, "quint8"), pt(shape, "qint8")]:
            run(t, "expand", {"shape": [2, -1, 3][-len(shape):] if len(shape) == 3 else [4, 5]}, lambda t: t.expand(*([2, -1, 3][-len(shape):] if len(shape) == 3 else [4, 5])))
            run(t, "expand", {"shape": [2] + list(shape)}, lambda t: t.expand(2, *shape))
    run(pc((2, 3, 1), 1), "expand", {"shape": [2, 3, 5]}, lambda t: t.expand(2, 3, 5))
    # mean: small integer spreads make .5 ties common
    for dt in ["quint8", "qint8", "qint32"]:
        for shape in [(2, 3, 4), (4, 5), (3, 1, 6), (2, 3, 4, 5), (7,), (6, 40), (3, 2, 40), (40, 6), (20, 3, 9), (5, 70)]:
            for spread in (0.1, 3.0):
                t = pt(shape, dt, 0.05, spread=spread)
                nd = len(shape)
                if shape[0] >= 5 and nd == 2:
                    dims_list = [[0]]
                elif shape[0] >= 3 and shape[-1] >= 9:
                    dims_list = [[0, nd - 1]]
                else:
                    dims_list = [None, [nd - 1], [0]]
                if nd >= 2 and len(dims_list) > 1:
                    dims_list += [[nd - 2, nd - 1], [nd - 2]]
                if nd >= 3 and len(dims_list) > 1:
                    dims_list += [[0, nd - 1], [0, 1], [1]]
                for dims in dims_list:
                    for keep in (False, True):
                        if dims is None:
                            if keep:
                                continue
                            run(t, "mean", {"dims": [], "keepdim": False}, lambda t: t.mean())
                        else:
                            run(t, "mean", {"dims": dims, "keepdim": keep}, lambda t: t.mean(dims, keepdim=keep))
                if len(dims_list) == 1:
                    continue
                run(t, "max", {}, lambda t: t.max())
                run(t, "min", {}, lambda t: t.min())
                for dim in sorted({-1, 0}):
                    for desc in (False, True):
                        run(t, "sort", {"dim": dim, "descending": desc}, lambda t: tuple(t.sort(dim, descending=desc)))
                    for k in sorted({1, min(3, shape[dim])}):
                        for largest in (True, False):
                            run(t, "topk", {"k": k, "dim": dim, "largest": largest}, lambda t: tuple(t.topk(k, dim, largest)))
    # qint32 means at the ends of the range (float32 rounding of the sum,
    # conversion of 2^31 back to int32)
    for vals, scale in [([2**31 - 1] * 3 + [2**31 - 2], 0.5), ([-(2**31)] * 3 + [2**31 - 1], 0.5),
                        ([16777217, 16777216, 3, 4, 2**30, 2**30 + 1, 5, 6], 1.0)]:
        t = torch._make_per_tensor_quantized_tensor(torch.tensor(vals, dtype=torch.int32).reshape(2, -1), scale, 0)
        for dims in ([], [1], [0]):
            run(t, "mean", {"dims": dims, "keepdim": False}, lambda t: t.mean(dims) if dims else t.mean())
    run(pc((2, 3, 4), 1), "mean", {"dims": [], "keepdim": False}, lambda t: t.mean())
    run(pc((2, 3, 4), 1), "sort", {"dim": 0, "descending": False}, lambda t: tuple(t.sort(0)))
    run(pc((2, 3, 4), 1), "topk", {"k": 1, "dim": 0, "largest": True}, lambda t: tuple(t.topk(1, 0)))
    # copy_: quantized source takes over its qparams; float source is requantized
    copies = []
    for dst, src in [(pt((2, 3), "quint8"), pt((2, 3), "quint8", 0.3, 5)), (pc((2, 3), 1), pt((2, 3), "qint8")),
                     (pt((2, 3), "qint8"), pc((2, 3), 0))]:
        d = dst.clone()
        entry = {"dst": qdesc(dst), "src": qdesc(src)}
        try:
            d.copy_(src)
            entry["result"] = qdesc(d)
        except RuntimeError as e:
            entry["error"] = str(e)[:100]
        copies.append(entry)
    for dst in [pt((2, 3), "quint8"), pc((2, 3), 1), pc((2, 3), 0, "quint8")]:
        x = torch.from_numpy((rng.standard_normal((2, 3)) * 3).astype(f32))
        d = dst.clone()
        d.copy_(x)
        copies.append({"dst": qdesc(dst), "float_src": bits(x.numpy()), "result": qdesc(d)})
    equals = []
    a = pt((2, 3), "quint8")
    for b in [a.clone(), torch.quantize_per_tensor(a.dequantize(), a.q_scale(), a.q_zero_point() + 1, torch.quint8),
              torch.quantize_per_tensor(a.dequantize(), a.q_scale() * 2, a.q_zero_point(), torch.quint8), a.reshape(3, 2)]:
        equals.append({"a": qdesc(a), "b": qdesc(b), "equal": bool(torch.equal(a, b))})
    c = pc((2, 3), 1)
    equals.append({"a": qdesc(c), "b": qdesc(c.clone()), "equal": bool(torch.equal(c, c.clone()))})
    # float16 conversions (round half to even, overflow to inf, subnormals)
    h = np.concatenate([np.array([0.0, -0.0, 1.0, 65504.0, 65520.0, 65519.996, 1e-8, 5.96e-8, 2.98e-8, 2.9802322e-08, 2.9802326e-08,
                                  1.0009765625, 1.00048828125, 1.00146484375, np.inf, -np.inf, -70000.0], dtype=f32),
                        (rng.standard_normal(64) * 100).astype(f32)])
    half = torch.from_numpy(h).half()
    f16 = {"x": bits(h), "half": half.view(torch.int16).numpy().view(np.uint16).tolist(),
           "back": bits(half.float().numpy())}
    write("ops.json", {"torch": torch.__version__, "cases": cases, "copies": copies, "equals": equals, "float16": f16})


SECTIONS = {"qparams": gen_qparams, "quantize": gen_quantize, "ops": gen_ops}

if __name__ == "__main__":
    names = sys.argv[1:] or list(SECTIONS)
    for n in names:
        SECTIONS[n]()
