#!/usr/bin/python3
"""Writes depthwise_torch.json: PyTorch 1.13 depthwise conv2d outputs, the
reference for TestDepthwiseTorch. Run with /usr/bin/python3 from this folder.

Each case: NCHW input of one image, weights [C, 1, KH, KW], bias, stride,
dilation, pads (top, left, bottom, right) and channel multiplier; the output
is F.conv2d(F.pad(x, pads), w, b, stride, 0, dilation, groups=C/mult).
Values are float32, written with repr() of their exact float64 value.
"""
import json

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []
for cin, mult, h, w, k, s, d, pads in [
    (3, 1, 9, 11, 3, 1, 1, (1, 1, 1, 1)),
    (3, 1, 9, 11, 3, 2, 1, (1, 1, 1, 1)),
    (2, 1, 8, 8, 3, 2, 1, (0, 0, 1, 1)),
    (2, 1, 10, 9, 5, 1, 1, (2, 2, 2, 2)),
    (2, 1, 11, 10, 5, 2, 1, (2, 2, 2, 2)),
    (2, 1, 9, 9, 3, 1, 2, (2, 2, 2, 2)),
    (2, 2, 6, 7, 3, 1, 1, (1, 0, 0, 1)),
    (1, 1, 5, 37, 3, 2, 1, (1, 1, 1, 1)),
    (1, 1, 3, 70, 3, 1, 1, (1, 1, 1, 1)),
]:
    c = cin * mult
    x = torch.randn(1, cin, h, w)
    wt = torch.randn(c, 1, k, k)
    b = torch.randn(c)
    t, l, bo, r = pads
    y = F.conv2d(F.pad(x, (l, r, t, bo)), wt, b, stride=s, dilation=d, groups=cin)
    cases.append({
        "cin": cin, "mult": mult, "h": h, "w": w, "k": k, "stride": s, "dil": d,
        "pads": list(pads), "out": list(y.shape[2:]),
        "x": x.flatten().tolist(), "weight": wt.flatten().tolist(),
        "bias": b.tolist(), "y": y.flatten().tolist(),
    })
with open("depthwise_torch.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
