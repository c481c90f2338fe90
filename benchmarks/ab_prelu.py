"""A/B in one process: the SRGAN (bubbliiiing) generator at 64x64 with Keras' PReLU against
common.layers.OnePassPReLU, same weights (random slopes), timed in turns; prints the largest output
difference (0: same values) and both medians.

    python benchmarks/ab_prelu.py [mixed_bfloat16 | float32]
"""
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import keras
from keras import layers
keras.config.set_dtype_policy(sys.argv[1] if len(sys.argv) > 1 else "mixed_bfloat16")
import srgan.model as sm
from common.inference import graph_call
new = sm.build_generator(preset="bubbliiiing")
real = sm.OnePassPReLU
sm.OnePassPReLU = layers.PReLU
old = sm.build_generator(preset="bubbliiiing")
sm.OnePassPReLU = real
old.set_weights(new.get_weights())
rng = np.random.default_rng(0)
for w in new.weights:
    if "alpha" in w.path:
        w.assign(rng.normal(0.2, 0.1, size=w.shape).astype("float32"))
old.set_weights(new.get_weights())
x = rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
a, b = graph_call(old, x), graph_call(new, x)
print("max abs diff", float(np.abs(a - b).max()))
ta, tb = [], []
for _ in range(25):
    t = time.perf_counter(); graph_call(old, x); ta.append(time.perf_counter() - t)
    t = time.perf_counter(); graph_call(new, x); tb.append(time.perf_counter() - t)
ma, mb = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
print(f"keras PReLU {ma:.1f} ms, OnePassPReLU {mb:.1f} ms, {ma / mb:.3f}x")
