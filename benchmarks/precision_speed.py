"""Train-step speed of float32 vs mixed_bfloat16 (and mixed_float16 on a GPU).

    python benchmarks/precision_speed.py [--size 128] [--batch 2] [--steps 10]

Backs the ``--precision auto`` choice (common/precision.py): on CPUs with AMX / AVX-512 BF16
mixed_bfloat16 is expected to be faster. Prints ms per generator+critic step for each policy.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import sys, time, keras, numpy as np, tensorflow as tf
policy, size, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keras.config.set_dtype_policy(policy)
from common.layers import ReflectionPadding2D, instance_norm
from common import losses

def generator():
    x = inputs = keras.Input((None, None, 3))
    x = ReflectionPadding2D(3)(x); x = keras.layers.Conv2D(64, 7, name="stem")(x); x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(128, 3, strides=2, padding="same", name="down")(x); x = keras.layers.ReLU()(x)
    for i in range(4):
        y = ReflectionPadding2D(1)(x); y = keras.layers.Conv2D(128, 3, name=f"r{i}a")(y); y = instance_norm()(y)
        y = keras.layers.ReLU()(y); y = ReflectionPadding2D(1)(y); y = keras.layers.Conv2D(128, 3, name=f"r{i}b")(y)
        x = keras.layers.Add()([x, instance_norm()(y)])
    x = keras.layers.Conv2DTranspose(64, 3, strides=2, padding="same", name="up")(x); x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(3, 7, padding="same", name="out")(x)
    return keras.Model(inputs, keras.layers.Activation("tanh", dtype="float32")(x))

g = generator()
opt = keras.optimizers.Adam(1e-4)
if policy == "mixed_float16":
    opt = keras.mixed_precision.LossScaleOptimizer(opt)

@tf.function(jit_compile=False)
def step(x, y):
    with tf.GradientTape() as tape:
        loss = losses.l1(g(x, training=True), y)
        scaled = opt.scale_loss(loss) if hasattr(opt, "scale_loss") else loss
    opt.apply(tape.gradient(scaled, g.trainable_variables), g.trainable_variables)
    return loss

x = tf.random.uniform((batch, size, size, 3), -1, 1); y = tf.random.uniform((batch, size, size, 3), -1, 1)
step(x, y); step(x, y)
t = time.perf_counter()
for _ in range(steps):
    loss = step(x, y)
float(loss)
print(f"{(time.perf_counter() - t) / steps * 1000:.1f}")
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    args = parser.parse_args()
    print(f"{'policy':<16}{'ms/step':>10}   (size {args.size}, batch {args.batch}, {args.steps} steps)")
    for policy in args.policies.split(","):
        # a fresh process per policy: the dtype policy and XLA caches are process-wide
        out = subprocess.run([sys.executable, "-c", CHILD, policy, str(args.size), str(args.batch), str(args.steps)],
                             capture_output=True, text=True)
        value = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr.strip().splitlines()[-1]}"
        print(f"{policy:<16}{value:>10}")


if __name__ == "__main__":
    main()
