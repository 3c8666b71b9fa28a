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


SECTIONS = {"qparams": gen_qparams}

if __name__ == "__main__":
    names = sys.argv[1:] or list(SECTIONS)
    for n in names:
        SECTIONS[n]()
