#!/usr/bin/env python3
"""Exports small PyTorch models that keep their BatchNormalization nodes, for
internal/fuse's tests (torch.onnx.export folds BN into Conv by default, so the
torchvision models in ../shared have none left to fold).

Each model covers one family of fusion patterns with few channels, random
weights and non-trivial BN statistics, and is exported at opset 13 with
constant folding off so that Conv -> BatchNormalization -> Relu/ReLU6 stay
separate nodes. The file `<name>.input.npy` is a fixed input and
`<name>.output.npy` PyTorch's output for it: the reference both the unfused
and the fused model must match.

Run: /usr/bin/python3 tools/golden/fuse_models.py internal/fuse/testdata
With --full DIR it also writes torchvision ResNet-18 and MobileNetV2 (random
weights, BN kept; 45 MB and 14 MB, not committed) for a local check.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            n = mod.num_features
            mod.weight.data = torch.rand(n) + 0.5
            mod.bias.data = torch.randn(n) * 0.1
            mod.running_mean.data = torch.randn(n) * 0.1
            mod.running_var.data = torch.rand(n) + 0.5
    return m


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + x)


class MiniResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(ResBlock(8), ResBlock(8))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, e):
        super().__init__()
        h = c * e
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


class MiniMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(8, 4), InvertedResidual(8, 2))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.head(y.mean((2, 3)))


class Variety(nn.Module):
    """Conv1d/Conv3d/ConvTranspose/grouped/biased convs and Linear+BN1d."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.BatchNorm1d(6), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv3d(4, 4, 3, padding=1, groups=2), nn.BatchNorm3d(4), nn.LeakyReLU(0.1))
        self.ct = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), nn.BatchNorm2d(6))
        self.lin = nn.Sequential(nn.Linear(12, 7), nn.BatchNorm1d(7), nn.ReLU())

    def forward(self, x1, x3, x2, xl):
        return self.c1(x1), self.c3(x3), self.ct(x2), self.lin(xl)


def export(model, inputs, names, path):
    model = randomize_bn(model).eval()
    with torch.no_grad():
        outs = model(*inputs)
    if not isinstance(outs, tuple):
        outs = (outs,)
    torch.onnx.export(model, tuple(inputs), path, opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=names,
                      output_names=[f"out{i}" for i in range(len(outs))])
    base = path[:-len(".onnx")]
    for n, x in zip(names, inputs):
        np.save(f"{base}.{n}.npy", x.numpy())
    for i, o in enumerate(outs):
        np.save(f"{base}.out{i}.npy", o.numpy())


def main():
    args = sys.argv[1:]
    full = None
    if "--full" in args:
        i = args.index("--full")
        full = args[i + 1]
        del args[i:i + 2]
    out = args[0] if args else "internal/fuse/testdata"
    os.makedirs(out, exist_ok=True)
    export(MiniResNet(), [torch.randn(2, 3, 16, 16)], ["x"], os.path.join(out, "mini_resnet.onnx"))
    export(MiniMobileNet(), [torch.randn(2, 3, 16, 16)], ["x"], os.path.join(out, "mini_mobilenet.onnx"))
    export(Variety(), [torch.randn(2, 4, 9), torch.randn(2, 4, 5, 5, 5), torch.randn(2, 4, 6, 6), torch.randn(3, 12)],
           ["x1", "x3", "x2", "xl"], os.path.join(out, "variety.onnx"))
    if full:
        import torchvision
        os.makedirs(full, exist_ok=True)
        for name, ctor in [("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)]:
            export(ctor(), [torch.randn(1, 3, 224, 224)], ["input"], os.path.join(full, f"{name}_bn.onnx"))


if __name__ == "__main__":
    main()
