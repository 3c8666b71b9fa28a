#!/usr/bin/env python3
"""Times PyTorch 1.13's observers on the batches internal/observe's
benchmarks use (1x64x56x56 synthetic activations from the goldens' exact
generator), single-threaded, and prints one JSON line of nanoseconds per
batch. internal/observe's BenchmarkHistogramObserve runs this itself when
/usr/bin/python3 has torch, so both figures come from the same run.

    /usr/bin/python3 tools/golden/bench_torch_observers.py [repeats]
"""
import json
import sys
import time
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver

warnings.filterwarnings("ignore")
torch.set_num_threads(1)


def synth(seed, n):
    with np.errstate(over="ignore"):
        i = np.arange(12 * n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000000)
        z = i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(32)).astype(np.float64) * 2.0 ** -32
    return u.reshape(n, 12).sum(axis=1) - 6.0


shape = (1, 64, 56, 56)
n = 64 * 56 * 56
batches = [torch.from_numpy((synth(1 + i, n) * (1 + 0.1 * (i % 3))).astype(np.float32).reshape(shape))
           for i in range(4)]
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 100


def best_of(fn, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(reps):
            fn(batches[i % len(batches)])
        best = min(best, (time.perf_counter() - t) / reps)
    return best * 1e9


h = HistogramObserver()
for b in batches:
    h(b)
m = MinMaxObserver()
res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
       "histogram_observe_ns": best_of(h),
       "minmax_observe_ns": best_of(m)}
t = time.perf_counter()
h.calculate_qparams()
res["histogram_qparams_ns"] = (time.perf_counter() - t) * 1e9
print(json.dumps(res))
