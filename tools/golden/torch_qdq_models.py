#!/usr/bin/python3
"""QDQ ONNX models exported by PyTorch 1.13, for qtool's QDQ execution tests.

    /usr/bin/python3 tools/golden/torch_qdq_models.py OUTDIR      # resnet18/mobilenet_v2 (large, not committed)
    /usr/bin/python3 tools/golden/torch_qdq_models.py --small DIR # mini ResNet (committed: internal/runtime/qdq/testdata)

Eager-mode static quantization (qnnpack engine: uint8 affine activations,
int8 weights), random weights, calibrated on random data; torch.onnx.export
of the quantized module at opset 13 writes QuantizeLinear/DequantizeLinear
around float Conv/Gemm/Add/pool nodes (QDQ form). Each model is written
with an input .npy (float32) beside it.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.ao.quantization as tq

torch.backends.quantized.engine = "qnnpack"


class MiniBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.add = nn.quantized.FloatFunctional()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(self.add.add(y, idt))


class MiniResNet(nn.Module):
    """Two residual blocks, a max pool, a depthwise conv, global pooling and a
    linear layer: every QDQ pattern the big models use, in a few KB."""

    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.b1 = MiniBlock(8, 8, 1)
        self.b2 = MiniBlock(8, 16, 2)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.dwrelu = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.pool(self.relu(self.bn(self.stem(x))))
        x = self.b2(self.b1(x))
        x = self.dwrelu(self.dw(x))
        x = torch.flatten(self.gap(x), 1)
        return self.dequant(self.fc(x))

    def fuse(self):
        tq.fuse_modules(self, [["stem", "bn", "relu"], ["dw", "dwrelu"]], inplace=True)
        for b in (self.b1, self.b2):
            tq.fuse_modules(b, [["conv1", "bn1", "relu1"], ["conv2", "bn2"]], inplace=True)
            if b.down is not None:
                tq.fuse_modules(b.down, [["0", "1"]], inplace=True)


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) + 0.5
            mod.bias.data = torch.randn(mod.bias.shape, generator=g) * 0.1
            mod.running_mean = torch.randn(mod.running_mean.shape, generator=g) * 0.1
            mod.running_var = torch.rand(mod.running_var.shape, generator=g) + 0.5


def quantize(model, shape, g):
    model.eval()
    randomize_bn(model, g)
    model.fuse()
    model.qconfig = tq.get_default_qconfig("qnnpack")
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(shape, generator=g))
    tq.convert(model, inplace=True)
    return model


def export(model, shape, path, g):
    x = torch.randn(shape, generator=g)
    torch.onnx.export(model, (x,), path, opset_version=13, input_names=["input"], output_names=["output"],
                      do_constant_folding=True)
    np.save(path[:-5] + ".input.npy", x.numpy().astype(np.float32))


def tv_model(name):
    import torchvision.models.quantization as qm
    if name == "resnet18":
        m = qm.resnet18(weights=None, quantize=False)
    else:
        m = qm.mobilenet_v2(weights=None, quantize=False)
    m.fuse = lambda: m.fuse_model()
    return m


def main():
    args = sys.argv[1:]
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    if args and args[0] == "--small":
        out = args[1]
        os.makedirs(out, exist_ok=True)
        m = quantize(MiniResNet(), (1, 3, 32, 32), g)
        export(m, (1, 3, 32, 32), os.path.join(out, "mini_resnet_qdq.onnx"), g)
        return
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.makedirs(out, exist_ok=True)
    for name in ("resnet18", "mobilenet_v2"):
        m = quantize(tv_model(name), (1, 3, 224, 224), g)
        export(m, (1, 3, 224, 224), os.path.join(out, name + "_qdq.onnx"), g)


if __name__ == "__main__":
    main()
