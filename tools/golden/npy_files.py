#!/usr/bin/env python3
"""Writes .npy/.npz files with NumPy itself for internal/npy's tests.

Every array holds np.arange(n) (cast to its dtype, reshaped), so the Go test
knows the expected values without copying qtool's output.
Run: python3 tools/golden/npy_files.py internal/npy/testdata
"""
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "internal/npy/testdata"
os.makedirs(out, exist_ok=True)
dtypes = ["float32", "float64", "float16", "int8", "uint8", "int16", "uint16",
          "int32", "uint32", "int64", "uint64", "bool"]
for dt in dtypes:
    a = (np.arange(24) % (2 if dt == "bool" else 100)).astype(dt).reshape(2, 3, 4)
    np.save(os.path.join(out, f"arange_{dt}.npy"), a)
np.save(os.path.join(out, "scalar_float32.npy"), np.array(7.5, dtype=np.float32))
np.save(os.path.join(out, "empty_float32.npy"), np.zeros((0, 3), dtype=np.float32))
np.save(os.path.join(out, "vector_float32.npy"), np.arange(5, dtype=np.float32))
np.save(os.path.join(out, "bigendian_float32.npy"), np.arange(4, dtype=">f4"))
np.save(os.path.join(out, "fortran_float32.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.savez(os.path.join(out, "stored.npz"), x=np.arange(6, dtype=np.float32).reshape(2, 3), y=np.arange(4, dtype=np.int64))
np.savez_compressed(os.path.join(out, "compressed.npz"), x=np.arange(6, dtype=np.float32).reshape(2, 3), y=np.arange(4, dtype=np.int64))
