"""How far the mixed_bfloat16 output of each generator is from its float32 output (issue 10).

    python benchmarks/precision_agreement.py                       # every family and preset, random weights
    python benchmarks/precision_agreement.py --family srgan --time 5
    python benchmarks/precision_agreement.py --weights dgf_deblur=runs/learning/dgf_deblur-keras/run

For each generator variant ``predict.py`` can load, the same weights are built twice (under the
float32 and the mixed_bfloat16 dtype policy) and run through the family's ``inference.run`` (what
``predict.py`` writes) on natural photos from scikit-image (astronaut, chelsea): DeblurGAN and
DGF on a Gaussian-blurred 256x256 photo, SRGAN on a 64x64 one (x4), GLCIC on a 256x256 photo with
a 96x96 hole. Printed: PSNR of the bf16 uint8 output against the float32 uint8 output (GLCIC: over
the hole only, the rest is the input in both), the worst photo; ``inf`` = identical.

Random weights are the family's own initialisers (seeded). Random networks give degenerate
outputs (some nearly constant), so ``--fit-steps N`` first trains the float32 generator N Adam steps
(``--fit-lr``) on an L1 loss towards the sharp / HR / whole photo, on random 64x64 crops of two
other photos (coffee, rocket), in training mode (BatchNorm statistics move): weights "trained a
little", with image-like outputs. ``--weights FAMILY=RUN`` loads a run (or weights file)
instead, through ``inference.load`` as predict.py does. ``--time N``: median
seconds of N calls of each precision, in turns (run at the same niceness for relative figures).
``--policy mixed_float16`` compares a GPU's auto policy instead (on a CPU: its numbers, slowly).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# (family, preset, Config overrides) of every generator variant predict.py can build; DeblurGAN's
# paper-corrected preset has the paper generator.
VARIANTS = [
    ("deblur_gan", "paper", {}),
    ("deblur_gan", "keras-port", {}),
    ("deblur_gan", "keras-port", {"upsampling": "nearest"}),
    ("srgan", "bubbliiiing", {}),
    ("srgan", "paper", {}),
    ("dgf_deblur", "keras", {}),
    ("dgf_deblur", "paper", {}),
    ("glcic_inpaint", "paper", {}),
    ("glcic_inpaint", "tadax", {}),
]
PHOTOS = ("astronaut", "chelsea")
FIT_PHOTOS = ("coffee", "rocket")


def variant_name(preset: str, overrides: dict) -> str:
    return preset + "".join(f" {k}={v}" for k, v in overrides.items())


def photo(name: str, size: int, blur: float = 0.0) -> np.ndarray:
    """A centre square of a scikit-image photo resized to ``size`` (bicubic), optionally blurred."""
    from PIL import Image, ImageFilter
    from skimage import data

    image = getattr(data, name)()
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    pil = Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), Image.BICUBIC)
    if blur:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(pil)


def case_inputs(family: str, size: int) -> list[tuple[np.ndarray, dict]]:
    """(uint8 image, run() options) per photo, at the family's test size."""
    cases = []
    for name in PHOTOS:
        if family == "srgan":
            cases.append((photo(name, size // 4), {}))
        elif family == "glcic_inpaint":
            mask = np.zeros((size, size), np.float32)
            hole = size * 3 // 8
            start = (size - hole) // 2
            mask[start:start + hole, start:start + hole] = 1.0
            cases.append((photo(name, size), {"mask": mask}))
        else:
            cases.append((photo(name, size, blur=1.5), {"tile": 0}))
    return cases


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def random_loaded(family: str, preset: str, overrides: dict, weights=None):
    """A ``Loaded`` of the family's generator (random weights, or ``weights`` copied in)."""
    from common.weights import Loaded

    config_module = importlib.import_module(f"{family}.config")
    model_module = importlib.import_module(f"{family}.model")
    if family == "glcic_inpaint":
        config = config_module.get_config(preset, **overrides)
        mean = (0.45, 0.42, 0.38) if config.value_range == "unit" else (-0.1, -0.16, -0.24)
        config = config_module.get_config(preset, mean_color=mean, **overrides)
        model = model_module.build_inpainter(model_module.build_completion_network(config), config,
                                             config.mean_color)
    else:
        config = config_module.get_config(preset, **overrides)
        model = (model_module.build_generator(preset=config) if family == "srgan"
                 else model_module.build_generator(config))
    if weights is not None:
        model.set_weights(weights)
    return Loaded(model, config, None, f"random {family} {preset}")


def fit(family: str, loaded, steps: int, lr: float, seed: int) -> float:
    """Train ``loaded.model`` (float32) ``steps`` Adam steps on L1 to the clean photo; final loss."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    crop = 64
    sources = [photo(name, 256) for name in FIT_PHOTOS]
    model, config = loaded.model, loaded.config
    optimizer = keras.optimizers.Adam(lr)

    def batch():
        from PIL import Image, ImageFilter

        xs, ys, ms = [], [], []
        for _ in range(2):
            src = sources[rng.integers(len(sources))]
            top, left = rng.integers(0, 256 - crop, 2)
            sharp = src[top:top + crop, left:left + crop]
            target = sharp.astype(np.float32) / 127.5 - 1.0
            if family == "srgan":
                from srgan.data import uint8_to_generator_input

                small = np.asarray(Image.fromarray(sharp).resize((crop // 4,) * 2, Image.BICUBIC))
                xs.append(uint8_to_generator_input(small, config.lr_range))
            elif family == "glcic_inpaint":
                from glcic_inpaint.inference import to_model

                mask = np.zeros((crop, crop, 1), np.float32)
                hole = int(rng.integers(16, 32))
                t, l = rng.integers(0, crop - hole, 2)
                mask[t:t + hole, l:l + hole] = 1.0
                xs.append(to_model(sharp, config))
                ms.append(mask)
                target = to_model(sharp, config)
            else:
                blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(1.5)))
                xs.append(blurred.astype(np.float32) / 127.5 - 1.0)
            ys.append(target)
        inputs = [np.stack(xs), np.stack(ms)] if ms else np.stack(xs)
        return inputs, np.stack(ys), (np.stack(ms) if ms else None)

    @tf.function
    def step(inputs, target, mask):
        with tf.GradientTape() as tape:
            out = model(inputs, training=True)
            error = tf.abs(out - target)
            loss = tf.reduce_mean(error) if mask is None else tf.reduce_sum(error * mask) / (
                3.0 * tf.reduce_sum(mask))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    loss = float("nan")
    for _ in range(steps):
        inputs, target, mask = batch()
        loss = float(step(inputs, target, mask))
    # BatchNorm moving statistics of a short fit lag behind (momentum 0.99 in some presets): set
    # them from a few training-mode passes, as a longer training would have them
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.5
    try:
        for _ in range(8 if norms else 0):
            inputs, _, _ = batch()
            model(inputs, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return loss


def build_pair(family: str, preset: str, overrides: dict, run: str | None, seed: int,
               fit_steps: int = 0, fit_lr: float = 1e-4, policy: str = "mixed_bfloat16"):
    """``{"float32": ..., policy: ...}``: two versions of one generator, same weights (and the
    fit's final L1 loss, None without a fit)."""
    import keras

    inference = importlib.import_module(f"{family}.inference")
    pair = {}
    weights = fit_loss = None
    try:
        for name in ("float32", policy):
            keras.config.set_dtype_policy(name)
            if run is not None:
                pair[name] = inference.load(run)
            else:
                if weights is None:
                    keras.utils.set_random_seed(seed)
                pair[name] = random_loaded(family, preset, overrides, weights)
                if weights is None and fit_steps:
                    fit_loss = fit(family, pair[name], fit_steps, fit_lr, seed)
                weights = pair[name].model.get_weights()
    finally:
        keras.config.set_dtype_policy("float32")
    return pair, fit_loss


def measure(family: str, preset: str, overrides: dict, *, run: str | None, size: int, seed: int,
            repeats: int, fit_steps: int = 0, fit_lr: float = 1e-4,
            policy: str = "mixed_bfloat16") -> dict:
    inference = importlib.import_module(f"{family}.inference")
    pair, fit_loss = build_pair(family, preset, overrides, run, seed, fit_steps, fit_lr, policy)
    scores, spread, whole = [], [], []
    for image, options in case_inputs(family, size):
        outputs = {p: inference.run(loaded, image, **options) for p, loaded in pair.items()}
        a, b = outputs["float32"], outputs[policy]
        whole.append(psnr_uint8(b, a))
        if family == "glcic_inpaint":
            hole = options["mask"] > 0.5
            a, b = a[hole], b[hole]
        scores.append(psnr_uint8(b, a))
        spread.append(float(np.std(a.astype(np.float64))))
    record = {"family": family, "variant": variant_name(pair["float32"].config.preset, overrides)
              if run is None else f"{pair['float32'].config.preset} ({run})",
              "psnr_db": min(scores), "psnr_per_photo": dict(zip(PHOTOS, scores)),
              "psnr_whole_image_db": min(whole),
              "policy": policy, "output_std": min(spread), "fit_steps": fit_steps if run is None else 0,
              "fit_l1": fit_loss}
    if repeats:
        image, options = case_inputs(family, size)[0]
        times = {p: [] for p in pair}
        for p, loaded in pair.items():
            inference.run(loaded, image, **options)  # warm-up (trace)
        for _ in range(repeats):
            for p, loaded in pair.items():
                started = time.perf_counter()
                inference.run(loaded, image, **options)
                times[p].append(time.perf_counter() - started)
        record["seconds"] = {p: statistics.median(t) for p, t in times.items()}
        record["input"] = "x".join(map(str, image.shape[:2]))
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/precision_agreement.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    p.add_argument("--preset", action="append", help="only this preset (repeatable)")
    p.add_argument("--weights", action="append", default=[],
                   help="FAMILY=RUN_OR_FILE: measure these weights (through inference.load) too")
    p.add_argument("--size", type=int, default=256, help="photo side (SRGAN input: a quarter)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-steps", type=int, default=0,
                   help="train the random generator this many L1 steps first (see above)")
    p.add_argument("--fit-lr", type=float, default=1e-4, help="Adam learning rate of the fit")
    p.add_argument("--policy", default="mixed_bfloat16", choices=("mixed_bfloat16", "mixed_float16"),
                   help="the 16-bit policy compared with float32 (mixed_float16 runs on a CPU too, "
                        "slowly: its numbers, not its speed, are what a GPU gets)")
    p.add_argument("--time", type=int, default=0, metavar="N", help="also time N calls of each precision")
    p.add_argument("--json", help="write the records here")
    args = p.parse_args(argv)

    jobs = [(f, pr, o, None) for f, pr, o in VARIANTS
            if (not args.family or f in args.family) and (not args.preset or pr in args.preset)]
    for item in args.weights:
        family, _, path = item.partition("=")
        jobs.append((family, None, {}, path))
    records = []
    print(f"| family | variant | PSNR {args.policy} vs float32 (worst photo) | per photo | output std | "
          f"time float32 | time {args.policy} |")
    print("|---|---|---|---|---|---|---|")
    for family, preset, overrides, run in jobs:
        record = measure(family, preset, overrides, run=run, size=args.size, seed=args.seed,
                         repeats=args.time, fit_steps=args.fit_steps, fit_lr=args.fit_lr,
                         policy=args.policy)
        records.append(record)
        per = ", ".join(f"{k} {v:.1f}" for k, v in record["psnr_per_photo"].items())
        sec = record.get("seconds", {})
        timing = [f"{sec[p] * 1000:.0f} ms" if p in sec else "" for p in ("float32", args.policy)]
        print(f"| {family} | {record['variant']} | {record['psnr_db']:.1f} dB | {per} | "
              f"{record['output_std']:.1f} | "
              + " | ".join(timing) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
