#!/usr/bin/python3
"""Golden outputs of torchvision's image preprocessing for calibrate's
image loader (TestPreprocessMatchesTorchvision).

Run from this folder with Debian's PyTorch/torchvision:
    /usr/bin/python3 gen_preprocess.py
It writes preprocess/img.png (a deterministic 37x23 RGB image: gradients
plus noise, so that resampling errors show) and one .npy per case: the
float32 tensor torchvision's transforms produce from the PNG.
"""
import os

import numpy as np
from PIL import Image
import torchvision.transforms as T

os.makedirs("preprocess", exist_ok=True)
rng = np.random.default_rng(5)
h, w = 23, 37
y, x = np.mgrid[0:h, 0:w]
img = np.stack([x * 255 / (w - 1), y * 255 / (h - 1), (x + y) % 7 * 36], axis=-1)
img = np.clip(img + rng.integers(-40, 41, size=img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img, "RGB").save("preprocess/img.png")

im = Image.open("preprocess/img.png").convert("RGB")
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
cases = {
    # name: (transforms, color)
    "shorter16_crop12x14_norm": T.Compose([T.Resize(16), T.CenterCrop((12, 14)), T.ToTensor(), T.Normalize(mean, std)]),
    "exact20x11": T.Compose([T.Resize((20, 11)), T.ToTensor()]),
    "up40_crop40": T.Compose([T.Resize(40), T.CenterCrop(40), T.ToTensor()]),
}
for name, tf in cases.items():
    np.save(f"preprocess/{name}.npy", tf(im).numpy().astype(np.float32))
gray = Image.open("preprocess/img.png").convert("L")
np.save("preprocess/gray_shorter10.npy", T.Compose([T.Resize(10), T.ToTensor()])(gray).numpy().astype(np.float32))

# JPEG decoding as PIL (libjpeg-turbo) does it: the PNG saved as JPEG with
# 4:2:0, 4:2:2 and 4:4:4 chroma, and the pixels PIL decodes from each.
for name, sub in [("420", 2), ("422", 1), ("444", 0)]:
    path = f"preprocess/img{name}.jpg"
    Image.open("preprocess/img.png").convert("RGB").save(path, quality=75, subsampling=sub)
    np.save(f"preprocess/img{name}_pil.npy", np.asarray(Image.open(path).convert("RGB")).astype(np.uint8))

# Gray conversion on noise (PIL's fixed-point luma differs from the
# textbook /1000 formula on about 0.06% of colours).
noise = np.random.default_rng(6).integers(0, 256, size=(128, 128, 3)).astype(np.uint8)
Image.fromarray(noise, "RGB").save("preprocess/noise.png")
np.save("preprocess/noise_gray_pil.npy", np.asarray(Image.open("preprocess/noise.png").convert("L")).astype(np.uint8))
