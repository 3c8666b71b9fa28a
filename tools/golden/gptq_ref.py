#!/usr/bin/env python3
"""Golden cases for internal/convert's GPTQ weight rounding.

The reference is the GPTQ paper's own algorithm (Frantar et al. 2022,
reference implementation gptq.py `fasterquant`, one block, no act-order)
written with PyTorch 1.13, and torch's per-channel / per-tensor observers
for the scales (qtool's ChooseQParams is torch's bit for bit). Conv input
statistics come from torch.nn.functional.unfold.

    /usr/bin/python3 tools/golden/gptq_ref.py internal/convert/testdata/gptq_golden.json
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

torch.manual_seed(7)


def qparams(w, per_channel, dtype=torch.qint8):
    if per_channel:
        o = PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=torch.per_channel_symmetric)
    else:
        o = MinMaxObserver(dtype=dtype, qscheme=torch.per_tensor_symmetric)
    o(w)
    s, z = o.calculate_qparams()
    rows = w.shape[0]
    s = s.double().expand(rows) if s.numel() == 1 else s.double()
    z = z.double().expand(rows) if z.numel() == 1 else z.double()
    return s, z


def gptq(W, H, s, z, qmin=-128, qmax=127, percdamp=0.01, act_order=False):
    W = W.clone().double()
    H = H.clone().double()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if act_order:  # as the reference gptq.py's --act-order
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)
    damp = percdamp * torch.mean(torch.diag(H))
    H += damp * torch.eye(H.shape[0], dtype=H.dtype)
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    Q = torch.zeros_like(W)
    for i in range(W.shape[1]):
        w = W[:, i]
        d = Hinv[i, i]
        q = torch.clamp(torch.round(w / s) + z, qmin, qmax)
        Q[:, i] = q
        err = (w - (q - z) * s) / d
        W[:, i:] -= err.unsqueeze(1).matmul(Hinv[i, i:].unsqueeze(0))
    if act_order:
        Q = Q[:, invperm]
    return Q


def correlated(n, k):
    base = torch.randn(n, k // 4)
    mix = torch.randn(k // 4, k)
    return (base @ mix + 0.1 * torch.randn(n, k)).float()


cases = []
for name, rows, k, per_channel, dead, act_order in [
    ("per_channel", 8, 32, True, [], False),
    ("per_tensor", 6, 24, False, [], False),
    ("dead_inputs", 5, 16, True, [3, 9], False),
    ("act_order", 8, 32, True, [], True),
    ("act_order_dead", 5, 16, True, [3, 9], True),
]:
    X = correlated(150, k) * torch.linspace(0.1, 3.0, k)  # unequal input energy
    for d in dead:
        X[:, d] = 0
    W = (torch.randn(rows, k) * torch.linspace(0.2, 2.0, rows).unsqueeze(1)).float()
    s, z = qparams(W, per_channel)
    H = X.double().t() @ X.double()
    rtn = torch.clamp(torch.round(W.double() / s.unsqueeze(1)) + z.unsqueeze(1), -128, 127)
    Q = gptq(W, H, s.unsqueeze(1)[:, 0], z.unsqueeze(1)[:, 0], act_order=act_order)
    # The point of GPTQ: a smaller layer output error than round-to-nearest.
    def out_err(q):
        wq = (q - z.unsqueeze(1)) * s.unsqueeze(1)
        return float(((X.double() @ (W.double() - wq).t()) ** 2).sum())
    cases.append({
        "name": name, "rows": rows, "k": k, "per_channel": per_channel, "act_order": act_order,
        "x": X.flatten().tolist(), "w": W.flatten().tolist(),
        "scales": s.tolist(), "q": [int(v) for v in Q.flatten().tolist()],
        "rtn_err": out_err(rtn), "gptq_err": out_err(Q),
    })

# Conv input statistics: H of a grouped, strided, dilated conv with
# asymmetric pads, from unfold.
x = torch.randn(2, 4, 9, 8)
pads = [1, 0, 2, 1]  # ONNX order: top, left, bottom, right
groups, kh, kw, stride, dil = 2, 3, 2, (2, 1), (1, 2)
xp = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
conv_h = []
cin = x.shape[1] // groups
for g in range(groups):
    cols = F.unfold(xp[:, g * cin:(g + 1) * cin], (kh, kw), dilation=dil, stride=stride)  # N, cin*kh*kw, L
    a = cols.permute(1, 0, 2).reshape(cin * kh * kw, -1).double()
    conv_h.append((a @ a.t()).flatten().tolist())
conv = {"x": x.flatten().tolist(), "shape": list(x.shape), "groups": groups, "kernel": [kh, kw],
        "strides": list(stride), "dilations": list(dil), "pads": pads, "h": conv_h}

# The same for a 3-D conv. torch has no 3-D unfold: the patches come from
# conv3d with one-hot kernels (output channel i copies patch element i).
x3 = torch.randn(2, 4, 5, 6, 5)
pads3 = [1, 0, 2, 0, 1, 1]  # ONNX order: d, h, w begins, then ends
groups3, k3, stride3, dil3 = 2, (2, 3, 2), (1, 2, 1), (2, 1, 1)
xp3 = F.pad(x3, (pads3[2], pads3[5], pads3[1], pads3[4], pads3[0], pads3[3]))
cin3 = x3.shape[1] // groups3
kk = cin3 * k3[0] * k3[1] * k3[2]
onehot = torch.eye(kk, dtype=torch.float64).reshape(kk, cin3, *k3)
conv3_h = []
for g in range(groups3):
    cols = F.conv3d(xp3[:, g * cin3:(g + 1) * cin3].double(), onehot, stride=stride3, dilation=dil3)  # N, kk, D, H, W
    a = cols.permute(1, 0, 2, 3, 4).reshape(kk, -1)
    conv3_h.append((a @ a.t()).flatten().tolist())
conv3d = {"x": x3.flatten().tolist(), "shape": list(x3.shape), "groups": groups3, "kernel": list(k3),
          "strides": list(stride3), "dilations": list(dil3), "pads": pads3, "h": conv3_h}

with open(sys.argv[1], "w") as f:
    json.dump({"generator": "tools/golden/gptq_ref.py (torch %s)" % torch.__version__, "cases": cases, "conv": conv,
               "conv3d": conv3d}, f)
