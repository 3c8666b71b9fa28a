#!/usr/bin/env python3
"""Writes PyTorch 1.13 observer and FakeQuantize goldens for internal/observe.

Every input batch is stored (float32 little-endian, base64) next to what
torch.ao.quantization computed from it, because Go cannot regenerate torch's
random streams. Floats that torch holds as float32 are written as JSON numbers
(the shortest double that round-trips, so exact as float32); non-finite values
as the strings "inf", "-inf", "nan".

Run with Debian's torch:
    /usr/bin/python3 tools/golden/torch_observers.py internal/observe/testdata
Files written:
    inputs.json      the batch sequences
    minmax.json      MinMax, MovingAverageMinMax, PerChannelMinMax,
                     MovingAveragePerChannelMinMax: min/max per batch (stats,
                     shared by every config of one kind, settings and
                     sequence) and [scales, zero_points] per batch
    histogram.json   HistogramObserver: min/max and a histogram checksum per
                     batch, the final histogram, qparams per batch
    fakequant.json   FakeQuantize module outputs and the bare
                     fake_quantize_per_{tensor,channel}_affine functions
"""
import base64
import hashlib
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import (
    HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)
from torch.ao.quantization.fake_quantize import FakeQuantize

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

OUT = sys.argv[1] if len(sys.argv) > 1 else "internal/observe/testdata"
os.makedirs(OUT, exist_ok=True)


def f32(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def b64(t):
    a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
    return base64.b64encode(a.tobytes()).decode()


def hist_digest(h):
    a = np.ascontiguousarray(h.detach().numpy().astype("<f4"))
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


g = torch.Generator().manual_seed(20240527)
SHAPE = (2, 4, 6, 6)


def randn(shape=SHAPE):
    return torch.randn(shape, generator=g)


def student_t(shape=SHAPE, df=2.0):
    # t = z / sqrt(chi2/df), chi2 from a sum of squared normals (df=2)
    z = torch.randn(shape, generator=g)
    c = torch.randn(shape, generator=g) ** 2 + torch.randn(shape, generator=g) ** 2
    return (z / torch.sqrt(c / df)).clamp(-1e3, 1e3)


def cauchy(shape=SHAPE):
    u = torch.rand(shape, generator=g)
    return torch.tan(math.pi * (u - 0.5)).clamp(-1e4, 1e4)


SEQS = {
    "normal": [randn() * s for s in (1.0, 0.8, 1.3, 1.1)],
    "heavy_t": [student_t() for _ in range(4)],
    "cauchy": [cauchy() for _ in range(3)],
    "relu": [torch.relu(randn() * 2.0) for _ in range(4)],
    "offset_positive": [randn() * 0.1 + 3.0 for _ in range(3)],
    "negative": [-torch.relu(randn()) - 0.25 for _ in range(3)],
    "constant": [torch.full(SHAPE, 0.5) for _ in range(3)],
    "zeros": [torch.zeros(SHAPE) for _ in range(2)],
    "constant_then_normal": [torch.full(SHAPE, -1.5), torch.full(SHAPE, -1.5), randn(), randn()],
    "tiny": [randn() * 1e-8 for _ in range(3)],
    "small": [randn() * 0.01 for _ in range(4)],
    "widen_late": [randn(), randn(), randn() * 0.5, randn() * 25.0, randn()],
    "shrinking": [randn() * 40.0, randn() * 4.0, randn(), randn() * 0.1],
    "big": [randn((1, 16, 16, 16)) * s + o for s, o in ((1.0, 0.0), (1.5, 0.3), (0.7, -0.2), (3.0, 1.0))],
    "big_relu": [torch.relu(randn((1, 16, 16, 16)) * s) for s in (1.0, 2.0, 0.5, 6.0)],
}
SEQS = {k: [v.to(torch.float32).contiguous() for v in vs] for k, vs in SEQS.items()}



def synth(seed, n):
    """Counter-based splitmix64 draws turned into Irwin-Hall normals with
    exact float64 arithmetic (twelve 32-bit uniforms sum exactly), so that
    internal/observe's tests regenerate identical float32 batches without
    storing them (see synth in golden_test.go)."""
    with np.errstate(over="ignore"):
        i = np.arange(12 * n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000000)
        z = i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(32)).astype(np.float64) * 2.0 ** -32
    return u.reshape(n, 12).sum(axis=1) - 6.0


# name -> list of (seed, shape, scale, offset, kind); values are
# float32(float64(normal) * scale + offset), kind "heavy" divides two draws.
SYNTH = {
    "syn_act": [(1, (1, 64, 56, 56), 1.0, 0.0, "normal"), (2, (1, 64, 56, 56), 1.2, 0.1, "normal"),
                (3, (1, 64, 56, 56), 0.9, -0.1, "normal"), (4, (1, 64, 56, 56), 2.5, 0.0, "normal"),
                (5, (1, 64, 56, 56), 1.0, 0.0, "normal")],
    "syn_relu": [(11, (1, 32, 28, 28), 1.0, 0.0, "relu"), (12, (1, 32, 28, 28), 3.0, 0.0, "relu"),
                 (13, (1, 32, 28, 28), 0.5, 0.0, "relu"), (14, (1, 32, 28, 28), 1.5, 0.2, "relu")],
    "syn_heavy": [(21, (1, 16, 32, 32), 1.0, 0.0, "heavy"), (22, (1, 16, 32, 32), 1.0, 0.0, "heavy"),
                  (23, (1, 16, 32, 32), 1.0, 0.0, "heavy")],
    "syn_drift": [(31 + k, (1, 8, 32, 32), 0.3 * (k + 1), 0.05 * k, "normal") for k in range(8)],
}


def synth_batch(seed, shape, scale, offset, kind):
    n = int(np.prod(shape))
    a = synth(seed, n)
    if kind == "heavy":
        b = synth(seed + 1000, n)
        a = a / (np.abs(b) + 0.05)
    v = a * scale + offset
    if kind == "relu":
        v = np.maximum(v, 0.0)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


for name, spec in SYNTH.items():
    SEQS[name] = [synth_batch(*sp) for sp in spec]

inputs = {name: [{"shape": list(b.shape), "data": b64(b)} for b in batches]
          for name, batches in SEQS.items() if name not in SYNTH}
inputs_synth = {name: [{"seed": sp[0], "shape": list(sp[1]), "scale": sp[2], "offset": sp[3], "kind": sp[4],
                        "sha": hashlib.sha256(np.ascontiguousarray(b.numpy().astype("<f4")).tobytes()).hexdigest()[:16]}
                       for sp, b in zip(spec, SEQS[name])]
                for name, spec in SYNTH.items()}

DTYPES = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32}
PT = {"per_tensor_affine": torch.per_tensor_affine, "per_tensor_symmetric": torch.per_tensor_symmetric}
PC = {"per_channel_affine": torch.per_channel_affine, "per_channel_symmetric": torch.per_channel_symmetric}


def configs(schemes, custom=True):
    out = []
    for dn in DTYPES:
        for sn in schemes:
            for rr in (False, True):
                out.append({"dtype": dn, "qscheme": sn, "reduce_range": rr})
    if custom:
        out += [
            {"dtype": "qint8", "qscheme": s, "reduce_range": False, "quant_min": -127, "quant_max": 127}
            for s in schemes]
        out += [
            {"dtype": "quint8", "qscheme": s, "reduce_range": False, "quant_min": 0, "quant_max": 15}
            for s in schemes]
        out += [
            {"dtype": "qint8", "qscheme": s, "reduce_range": True, "quant_min": -100, "quant_max": 100}
            for s in schemes]
    return out


def make(cls, cfg, **extra):
    kw = dict(dtype=DTYPES[cfg["dtype"]], qscheme={**PT, **PC}[cfg["qscheme"]],
              reduce_range=cfg["reduce_range"])
    if "quant_min" in cfg:
        kw["quant_min"] = cfg["quant_min"]
        kw["quant_max"] = cfg["quant_max"]
    if "eps" in cfg:
        kw["eps"] = cfg["eps"]
    kw.update(extra)
    return cls(**kw)


def qparams(obs):
    s, z = obs.calculate_qparams()
    return {"scales": [f32(v) for v in s.flatten().tolist()],
            "zero_points": [int(v) for v in z.flatten().tolist()]}


PER_CHANNEL_KINDS = ("per_channel_minmax", "moving_average_per_channel_minmax")
PER_CHANNEL_SEQS = ("normal", "heavy_t", "relu", "negative", "constant", "zeros", "tiny",
                    "widen_late", "big")


def run_minmax_family():
    cases = []
    stats = {}
    fams = [
        ("minmax", MinMaxObserver, PT, [{}]),
        ("moving_average_minmax", MovingAverageMinMaxObserver, PT,
         [{"averaging_constant": 0.01}, {"averaging_constant": 0.3}]),
        ("per_channel_minmax", PerChannelMinMaxObserver, PC,
         [{"ch_axis": 0}, {"ch_axis": 1}, {"ch_axis": -1}]),
        ("moving_average_per_channel_minmax", MovingAveragePerChannelMinMaxObserver, PC,
         [{"ch_axis": 1, "averaging_constant": 0.01}, {"ch_axis": 0, "averaging_constant": 0.5}]),
    ]
    for kind, cls, schemes, extras in fams:
        cfgs = configs(schemes) + [{"dtype": "quint8", "qscheme": list(schemes)[0],
                                    "reduce_range": False, "eps": 1e-3}]
        for extra in extras:
            for cfg in cfgs:
                for seq, batches in SEQS.items():
                    if kind in PER_CHANNEL_KINDS and seq not in PER_CHANNEL_SEQS:
                        continue
                    try:
                        obs = make(cls, cfg, **extra)
                    except (NotImplementedError, AssertionError) as e:
                        cases.append({"kind": kind, "config": {**cfg, **extra}, "seq": seq,
                                      "error": type(e).__name__})
                        break
                    steps = []
                    key = "%s|%s|%s" % (kind, json.dumps(extra, sort_keys=True), seq)
                    record_stats = key not in stats
                    st_list = []
                    for b in batches:
                        obs(b)
                        if record_stats:
                            st_list.append({"min": [f32(v) for v in obs.min_val.flatten().tolist()],
                                            "max": [f32(v) for v in obs.max_val.flatten().tolist()]})
                        q = qparams(obs)
                        steps.append([q["scales"], q["zero_points"]])
                    if record_stats:
                        stats[key] = st_list
                    cases.append({"kind": kind, "config": {**cfg, **extra}, "seq": seq,
                                  "stats": key, "steps": steps})
    return {"stats": stats, "cases": cases}


def run_histogram():
    states = {}
    for seq, batches in SEQS.items():
        obs = HistogramObserver()
        steps = []
        err = None
        for b in batches:
            try:
                obs(b)
            except Exception as e:  # torch's own failure is part of the golden
                err = "%s: %s" % (type(e).__name__, str(e).splitlines()[0])
                break
            h = obs.histogram
            steps.append({"min": f32(obs.min_val), "max": f32(obs.max_val),
                          "hist_sum": float(h.double().sum()),
                          "hist_moment": float((h.double() * torch.arange(2048, dtype=torch.double)).sum()),
                          "hist_sha": hist_digest(h)})
        states[seq] = {"steps": steps, "final_hist": b64(obs.histogram), "error": err}
    cases = []
    cfgs = configs(PT) + [{"dtype": "quint8", "qscheme": "per_tensor_affine", "reduce_range": False, "eps": 1e-3}]
    for cfg in cfgs:
        try:
            make(HistogramObserver, cfg)
        except (NotImplementedError, AssertionError) as e:
            cases.append({"config": cfg, "error": type(e).__name__})
            continue
        for seq, batches in SEQS.items():
            obs = make(HistogramObserver, cfg)
            steps = []
            for b in batches:
                try:
                    obs(b)
                except Exception:
                    break
                steps.append(qparams(obs))
            cases.append({"config": cfg, "seq": seq, "steps": steps})
    return {"states": states, "cases": cases}


def run_fakequant():
    cases = []

    def module_case(name, seq, ctor, toggles=None):
        fq = ctor()
        steps = []
        for i, b in enumerate(SEQS[seq]):
            if toggles and i in toggles:
                obs_on, fq_on = toggles[i]
                fq.enable_observer(obs_on)
                fq.enable_fake_quant(fq_on)
            y = fq(b)
            steps.append({"out": b64(y),
                          "scales": [f32(v) for v in fq.scale.flatten().tolist()],
                          "zero_points": [int(v) for v in fq.zero_point.flatten().tolist()],
                          "observer_enabled": bool(fq.observer_enabled[0]),
                          "fake_quant_enabled": bool(fq.fake_quant_enabled[0])})
        cases.append({"name": name, "seq": seq, "steps": steps})

    for seq in ("normal", "widen_late", "relu", "heavy_t", "constant", "tiny"):
        module_case("default_fake_quant", seq, lambda: FakeQuantize(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
            dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=True))
        module_case("minmax_qint8_symmetric", seq, lambda: FakeQuantize(
            observer=MinMaxObserver, quant_min=-128, quant_max=127,
            dtype=torch.qint8, qscheme=torch.per_tensor_symmetric))
        module_case("per_channel_qint8_symmetric_axis1", seq, lambda: FakeQuantize(
            observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=1))
        module_case("per_channel_quint8_affine_axis0", seq, lambda: FakeQuantize(
            observer=PerChannelMinMaxObserver, quant_min=0, quant_max=255,
            dtype=torch.quint8, qscheme=torch.per_channel_affine, ch_axis=0))
    module_case("toggles", "widen_late", lambda: FakeQuantize(
        observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
        dtype=torch.quint8, qscheme=torch.per_tensor_affine),
        toggles={2: (False, True), 3: (False, False), 4: (True, True)})

    # The bare functions on values chosen to hit the rounding: exact halves
    # of the scale (ties go to even under nearbyint), the clamp edges, values
    # far outside the range, and qint32's wide range where zp + round(x/s) is a
    # float32 sum.
    funcs = []
    for scale, zp, qmin, qmax in ((0.1, 0, -128, 127), (0.25, 3, 0, 255), (0.0078125, 128, 0, 255),
                                  (1e-3, -5, -128, 127), (3.7e-5, 0, -2**31, 2**31 - 1),
                                  (0.37, 17, 0, 15)):
        k = torch.arange(-300, 301, dtype=torch.float32)
        x = torch.cat([(k + 0.5) * scale, k * scale * 1.0000001, torch.tensor(
            [0.0, -0.0, 1e9, -1e9, 1e30, -1e30, 123456.789, -98765.4321, 7e4, 8.1e4])]).to(torch.float32)
        y = torch.fake_quantize_per_tensor_affine(
            x, torch.tensor([scale], dtype=torch.float32), torch.tensor([zp], dtype=torch.int32), qmin, qmax)
        funcs.append({"fn": "per_tensor", "scale": f32(torch.tensor(scale, dtype=torch.float32)),
                      "zero_point": zp, "quant_min": qmin, "quant_max": qmax,
                      "x": b64(x), "out": b64(y)})
    x = (torch.randn((3, 5, 7), generator=g) * 2.0).to(torch.float32)
    for axis, scales, zps, qmin, qmax in ((0, [0.01, 0.02, 0.05], [0, 10, -3], -128, 127),
                                          (1, [0.1, 0.02, 0.3, 0.04, 0.005], [128, 0, 100, 255, 7], 0, 255),
                                          (2, [0.03] * 7, [0] * 7, -64, 63)):
        s = torch.tensor(scales, dtype=torch.float32)
        z = torch.tensor(zps, dtype=torch.int32)
        y = torch.fake_quantize_per_channel_affine(x, s, z, axis, qmin, qmax)
        funcs.append({"fn": "per_channel", "axis": axis, "shape": list(x.shape),
                      "scales": [f32(v) for v in s.tolist()], "zero_points": zps,
                      "quant_min": qmin, "quant_max": qmax, "x": b64(x), "out": b64(y)})
    return {"modules": cases, "functions": funcs}


def dump(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


meta = {"torch": torch.__version__, "generator": "tools/golden/torch_observers.py"}
def run_sums():
    # torch.sum's float32 cascade order, which the histogram search's error
    # sums must reproduce.
    out = []
    for seed, n in ((101, 2048), (102, 2048), (103, 1000), (104, 4099), (105, 17), (106, 65536)):
        v = torch.from_numpy((np.abs(synth(seed, n)) ** 5 * 37.0).astype(np.float32))
        out.append({"seed": seed, "n": n, "sum": f32(torch.sum(v))})
    return out


dump("inputs.json", {"meta": meta, "seqs": inputs, "synth": inputs_synth, "sums": run_sums()})
dump("minmax.json", {"meta": meta, **run_minmax_family()})
dump("histogram.json", {"meta": meta, **run_histogram()})
dump("fakequant.json", {"meta": meta, **run_fakequant()})
