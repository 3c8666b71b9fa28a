#!/usr/bin/env python3
"""Writes 16-bit activation observer goldens (PyTorch 1.13) for internal/observe.

PyTorch 1.13 has no 16-bit quantized dtypes, but its observers accept a
custom quant_min/quant_max: quint16 is taken as torch.quint8 with
quant_min=0, quant_max=65535 and qint16 as torch.qint32 with
quant_min=-32768, quant_max=32767 (torch.qint8 refuses ranges over 256
values). _calculate_qparams then runs unchanged with the 16-bit range.

One deviation from stock torch, stated here and in the JSON: the
HistogramObserver's L2 search sizes its destination histogram by the dtype
(dst_nbins = 2**bits: 256 for quint8, 2**32 for qint32), not by the custom
range, so the script sets obs.dst_nbins = 65536 after construction. That
is the search at 16 bits, the rule internal/observe implements.

The input batches are the ones of tools/golden/torch_observers.py, read
back from internal/observe/testdata/inputs.json (stored ones) and
regenerated with its counter-based synth (synthetic ones).

Run with Debian's torch:
    /usr/bin/python3 tools/golden/torch_observers16.py internal/observe/testdata
"""
import base64
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import (
    HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver)

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

OUT = sys.argv[1] if len(sys.argv) > 1 else "internal/observe/testdata"


def f32(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def synth(seed, n):
    with np.errstate(over="ignore"):
        i = np.arange(12 * n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000000)
        z = i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(32)).astype(np.float64) * 2.0 ** -32
    return u.reshape(n, 12).sum(axis=1) - 6.0


def synth_batch(sp):
    shape = sp["shape"]
    n = int(np.prod(shape))
    a = synth(sp["seed"], n)
    if sp["kind"] == "heavy":
        a = a / (np.abs(synth(sp["seed"] + 1000, n)) + 0.05)
    v = a * sp["scale"] + sp["offset"]
    if sp["kind"] == "relu":
        v = np.maximum(v, 0.0)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


with open(os.path.join(OUT, "inputs.json")) as f:
    inp = json.load(f)
SEQS = {}
for name in ("normal", "heavy_t", "relu", "negative", "constant", "zeros", "tiny", "widen_late", "big_relu"):
    SEQS[name] = [torch.from_numpy(np.frombuffer(base64.b64decode(b["data"]), dtype="<f4").copy().reshape(b["shape"]))
                  for b in inp["seqs"][name]]
for name in ("syn_relu", "syn_heavy", "syn_drift"):
    SEQS[name] = [synth_batch(sp) for sp in inp["synth"][name]]

# dtype name -> torch constructor arguments
TORCH = {"quint16": dict(dtype=torch.quint8, quant_min=0, quant_max=65535),
         "qint16": dict(dtype=torch.qint32, quant_min=-32768, quant_max=32767)}
SCHEMES = {"per_tensor_affine": torch.per_tensor_affine, "per_tensor_symmetric": torch.per_tensor_symmetric}
KINDS = {"minmax": (MinMaxObserver, {}),
         "moving_average_minmax": (MovingAverageMinMaxObserver, {"averaging_constant": 0.3}),
         "histogram": (HistogramObserver, {})}


def qparams(obs):
    s, z = obs.calculate_qparams()
    return [[f32(v) for v in s.flatten().tolist()], [int(v) for v in z.flatten().tolist()]]


cases = []
for kind, (cls, extra) in KINDS.items():
    for dn, targs in TORCH.items():
        for sn, sch in SCHEMES.items():
            for seq, batches in SEQS.items():
                obs = cls(qscheme=sch, **targs, **extra)
                if kind == "histogram":
                    obs.dst_nbins = 65536
                steps = []
                for b in batches:
                    obs(b)
                    steps.append(qparams(obs))
                cases.append({"kind": kind, "config": {"dtype": dn, "qscheme": sn, **extra},
                              "seq": seq, "steps": steps})

meta = {"torch": torch.__version__, "generator": "tools/golden/torch_observers16.py",
        "note": "quint16 = torch.quint8 with quant_min=0, quant_max=65535; qint16 = torch.qint32 with "
                "quant_min=-32768, quant_max=32767; HistogramObserver.dst_nbins set to 65536"}
path = os.path.join(OUT, "observers16.json")
with open(path, "w") as f:
    json.dump({"meta": meta, "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print("wrote", path, os.path.getsize(path), "bytes")
