#!/usr/bin/python3
"""PyTorch peer for tools/benchpeers: times the torchvision models that
../shared/models/torchvision-random/export_onnx.py exported to ONNX, built
here the same way (same constructors, seeds and, for MobileNetV2, the same
BatchNorm re-estimation), so PyTorch runs the model qtool and ONNX Runtime
run. int8 is PyTorch's own eager-mode static quantization (onednn engine,
per-channel weights) of torchvision's quantizable variants, as in that
script: the same architecture, not the same int8 graph as qtool's.

It is a server so that torch is imported once and the driver can interleave
single inferences of the peers: it reads one JSON request per line on stdin
and answers one JSON line:
    {"op": "load", "model": "resnet18"|"mobilenet_v2", "variant": "float"|"int8"} -> {"ok": true, ...}
    {"op": "run", "model": ..., "variant": ..., "n": N}                          -> {"ms": [N latencies]}
Errors answer {"error": "..."}.
Run: /usr/bin/python3 torch_bench.py THREADS [CHECK_DIR]
With CHECK_DIR (the folder of the exported .onnx and *_output.npy files),
loading a float model also reports the largest difference
between this model's output and the exported one's ("max_abs_diff"): a check
that the weights are the same.
"""
import copy
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
import torch.ao.quantization as tq
import torchvision

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
CHECK = sys.argv[2] if len(sys.argv) > 2 else None
torch.set_num_threads(THREADS)
torch.manual_seed(0)
X = torch.randn(1, 3, 224, 224)  # export_onnx.py's input, drawn first after seed 0

CTORS = {"resnet18": (torchvision.models.resnet18, torchvision.models.quantization.resnet18),
         "mobilenet_v2": (torchvision.models.mobilenet_v2, torchvision.models.quantization.mobilenet_v2)}
OUTPUTS = {"resnet18": "resnet18_fp32_output.npy", "mobilenet_v2": "mobilenet_v2_fp32_bnrecal_output.npy"}
cache = {}


def build(name, variant):
    ctor, qctor = CTORS[name]
    if variant == "float":
        torch.manual_seed(0)
        m = ctor(weights=None).eval()
        if name == "mobilenet_v2":
            # export_onnx.py's bnrecal copy: BN statistics re-estimated on random data.
            m = copy.deepcopy(m)
            g = torch.Generator().manual_seed(123)
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.reset_running_stats()
                    mod.momentum = None
            m.train()
            with torch.no_grad():
                for _ in range(8):
                    m(torch.randn(4, 3, 224, 224, generator=g))
            m.eval()
        return m
    torch.backends.quantized.engine = "onednn"
    torch.manual_seed(0)
    qm = qctor(weights=None, quantize=False).eval()
    qm.fuse_model()
    qm.qconfig = tq.get_default_qconfig("onednn")
    tq.prepare(qm, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            qm(torch.randn(2, 3, 224, 224))
    tq.convert(qm, inplace=True)
    return qm


def handle(req):
    name, variant = req["model"], req["variant"]
    if name not in CTORS or variant not in ("float", "int8"):
        return {"error": f"unknown model/variant {name}/{variant}"}
    key = (name, variant)
    if req["op"] == "load":
        out = {"ok": True, "torch": torch.__version__}
        if key not in cache:
            cache[key] = build(name, variant)
            if CHECK and variant == "float":
                ref = os.path.join(CHECK, OUTPUTS[name])
                if os.path.exists(ref):
                    with torch.no_grad():
                        y = cache[key](X).numpy()
                    out["max_abs_diff"] = float(np.abs(y - np.load(ref)).max())
        return out
    if req["op"] == "run":
        if key not in cache:
            return {"error": f"{name} {variant} not loaded"}
        m = cache[key]
        t = []
        with torch.no_grad():
            for _ in range(int(req.get("n", 1))):
                s = time.perf_counter()
                m(X)
                t.append((time.perf_counter() - s) * 1e3)
        return {"ms": t}
    return {"error": f"unknown op {req['op']}"}


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        res = handle(json.loads(line))
    except Exception as e:  # reported to the caller, which skips this peer
        res = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
    print(json.dumps(res), flush=True)
