#!/usr/bin/env python3
"""Golden files for GridSample, computed by PyTorch 1.13's grid_sample.

Run: /usr/bin/python3 gen_gridsample.py   (writes gridsample.npz here)

Cases cover what the ONNX node tests do not: 3-D (5-D tensors: trilinear
and nearest), 2-D bicubic with border/reflection padding, and grids
reaching well outside [-1, 1]. Each case i stores x_i, grid_i, y_i and
attrs_i = [mode (0 nearest, 1 linear, 2 cubic), padding (0 zeros,
1 border, 2 reflection), align_corners].
"""
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
modes = ["nearest", "bilinear", "bicubic"]
pads = ["zeros", "border", "reflection"]
out = {}
i = 0
for nd in (2, 3):
    for mi, mode in enumerate(modes):
        if nd == 3 and mode == "bicubic":
            continue
        for pi, pad in enumerate(pads):
            for ac in (0, 1):
                if nd == 2:
                    x = torch.randn(2, 3, 5, 6)
                    grid = torch.rand(2, 4, 7, 2) * 3.2 - 1.6
                else:
                    x = torch.randn(1, 2, 4, 5, 3)
                    grid = torch.rand(1, 3, 4, 2, 3) * 3.2 - 1.6
                y = F.grid_sample(x, grid, mode=mode, padding_mode=pad, align_corners=bool(ac))
                out["x_%d" % i] = x.numpy()
                out["grid_%d" % i] = grid.numpy()
                out["y_%d" % i] = y.numpy()
                out["attrs_%d" % i] = np.array([mi, pi, ac], dtype=np.int64)
                i += 1
np.savez("gridsample.npz", **out)
print(i, "cases")
