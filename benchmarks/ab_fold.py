"""A/B in one process: each family's generator as trained (BatchNormalization layers) against the
copy inference runs (common.folding: each BatchNormalization folded into the conv before it),
same weights (random, with random BatchNormalization statistics), timed in turns; prints the
largest output difference and both medians.

    python benchmarks/ab_fold.py [--policy mixed_bfloat16 | float32] [--family F ...] [--rounds 25]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# family -> (preset, input height and width): README "Performance"'s first standard sizes
CASES = {
    "srgan": ("bubbliiiing", 64),
    "glcic_inpaint": ("paper", 256),
    "deblur_gan": ("keras-port", 256),
    "dgf_deblur": ("keras", 256),
}


def randomize_batch_norm(model, seed: int = 1) -> None:
    """Moving statistics, gamma and beta away from their initial values (a fresh layer's identity
    map would hide a wrong fold)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.0, 0.3, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.7, 1.3, n))
            if layer.center:
                layer.beta.assign(rng.normal(0.0, 0.2, n))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default="mixed_bfloat16", choices=["mixed_bfloat16", "float32"])
    p.add_argument("--family", nargs="+", choices=sorted(CASES), default=list(CASES))
    p.add_argument("--rounds", type=int, default=25)
    args = p.parse_args(argv)

    import keras

    from benchmarks.run import build_generator
    from common.folding import fold_batch_norm, foldable_pairs
    from common.inference import graph_call
    from common.precision import set_precision

    set_precision(args.policy)
    print(f"policy {args.policy}, {args.rounds} rounds in turns, medians")
    for family in args.family:
        preset, size = CASES[family]
        keras.utils.set_random_seed(0)
        model, _ = build_generator(family, preset)
        randomize_batch_norm(model)
        folded = fold_batch_norm(model)
        channels = int(model.inputs[0].shape[-1])
        x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, channels)).astype("float32")
        a, b = graph_call(model, x), graph_call(folded, x)
        times = {"as trained": [], "folded": []}
        for _ in range(args.rounds):
            for name, network in (("as trained", model), ("folded", folded)):
                started = time.perf_counter()
                graph_call(network, x)
                times[name].append(time.perf_counter() - started)
        slow, fast = (statistics.median(times[k]) * 1e3 for k in ("as trained", "folded"))
        print(f"{family} ({preset}) {size}x{size}: {len(foldable_pairs(model))} BatchNormalization folded, "
              f"max |diff| {float(np.abs(a - b).max()):.2e}; as trained {slow:.1f} ms, folded {fast:.1f} ms, "
              f"{slow / fast:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
