"""Learning curves: train a family's recipe from scratch and watch it pass its baseline.

    python benchmarks/learning.py --family srgan                      # paper preset, SRResNet stage
    python benchmarks/learning.py --family deblur_gan --minutes 15
    python benchmarks/learning.py --family dgf_deblur --eval-every 25
    python benchmarks/learning.py --family glcic_inpaint              # paper preset, phase 1 only
    python benchmarks/learning.py --family srgan -- --precision float32   # flags after -- go to train.py

The run goes through the family's own ``train.py`` (``main``, so ``common.training.train`` with its
TrainJob: the same train_step, data pipeline, LR schedule and checkpoints), on the benchmark's
training photos (``benchmarks/learning_data.py``: scikit-image photos, crops and rotations, never
downloaded), with one addition (``common.learning_curves``): every ``--eval-every`` steps the
generator's weights are copied into a float32 copy and scored on the held-out photos with the test
scripts' metrics against the family's baseline:

- srgan: PSNR on Y with a ``scale``-pixel border (paper protocol) vs bicubic upscaling;
- deblur_gan / dgf_deblur: PSNR (RGB) of the deblurred image vs the blurred input;
- glcic_inpaint: PSNR inside the holes vs mean fill (glcic_inpaint/test.py's evaluation).

After ``--minutes`` of training (evaluation time excluded) the run stops. Written to --out
(default runs/learning/<family>-<preset>): curve.csv (``# key: value`` lines, then ``step, seconds,
metric, baseline``), curve.png (or --plot), data/ and run/ (the training run directory). Prints
where the curve crossed the baseline, or its trend and a projected crossing.

VGG: the benchmark's data is made from the bundled sample photos, so the demos' rule applies:
without ImageNet weights the perceptual term is replaced by L1 (recorded in the CSV header);
``--vgg-weights PATH`` uses the real perceptual loss.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learning_data, when imported by path

from common.cli import RUNS_ROOT, run_cli  # noqa: E402
from common.errors import TrainingInterrupted, UserError  # noqa: E402

RUN_MARKER = ".learning-benchmark"


# ----------------------------------------------------------------------------- families
@dataclass(frozen=True)
class Family:
    name: str
    default_preset: str
    data_kind: str  # learning_data kind
    metric_label: str
    baseline_label: str
    eval_every: int
    # train.py flags the benchmark adds (recorded in the CSV header); flags after -- override them.
    # Smaller crops / batches than the papers' where a 2-core CPU could not make a curve otherwise.
    train_flags: tuple
    schedule: str  # the recipe's own schedule, for the projection
    schedule_steps: int | None
    vgg: bool  # train.py has --vgg-weights


FAMILIES = {
    "srgan": Family(
        "srgan", "paper", "hr", "SRResNet PSNR-Y (dB, border = scale)", "bicubic", 100,
        ("--stage", "srresnet"),
        "paper Sec. 3.2: SRResNet 10^6 steps of batch 16", 1_000_000, True),
    "deblur_gan": Family(
        "deblur_gan", "paper", "pairs", "deblurred PSNR (dB, RGB)", "blurred input", 25,
        ("--no-resize", "--crop", "128", "128"),
        "paper: 300 epochs of the 2,103 GoPro pairs at batch 1 (630,900 steps)", 630_900, True),
    "dgf_deblur": Family(
        "dgf_deblur", "keras", "pairs", "deblurred PSNR (dB, RGB)", "blurred input", 20,
        ("--load-size", "0", "--crop-size", "64", "--epochs", "1000"),
        "tutorial: 10 epochs at batch 2 over its training set", None, True),
    "glcic_inpaint": Family(
        "glcic_inpaint", "paper", "images", "completion PSNR in the hole (dB)", "mean fill", 20,
        ("--phase-steps", "90000,0,90000", "--image-size", "128", "--resize-short-side", "128,192",
         "--local-size", "64", "--hole-min", "48", "--hole-max", "64", "--batch-size", "4",
         "--set", "global_d_filters=64,128,256,512,512",
         "--set", "local_d_filters=64,128,256,512"),
        "paper: phase 1 (completion network, MSE) 90,000 steps of batch 96", 90_000, False),
}


def _read_test_images(data: Path):
    from common.data import open_images

    source = open_images(data, split="test")
    return [source.load(i) for i in range(len(source))]


def make_eval_model(family: str):
    """config -> a freshly built generator of the family (float32; weights copied in later)."""

    def build(config):
        if family == "srgan":
            from srgan.model import build_generator

            return build_generator(preset=config)
        if family == "deblur_gan":
            from deblur_gan.model import build_generator

            return build_generator(config)
        if family == "dgf_deblur":
            from dgf_deblur.model import build_generator

            return build_generator(config)
        from glcic_inpaint.model import build_completion_network, build_inpainter

        return build_inpainter(build_completion_network(config), config, config.mean_color)

    return build


def make_evaluate(family: str, data: Path):
    """(model, config) -> (metric, baseline): the test scripts' metrics on the held-out images."""
    import numpy as np

    from common.weights import Loaded

    if family == "srgan":
        from common.metrics import psnr_y
        from srgan.data import bicubic_upscale, downscale_uint8, mod_crop
        from srgan.inference import run

        cache = {}

        def evaluate(model, config):
            scale = config.scale
            if "pairs" not in cache:
                cache["pairs"] = []
                for image in _read_test_images(data):
                    hr = mod_crop(image, scale)
                    lr = downscale_uint8(hr, scale)
                    bicubic = psnr_y(bicubic_upscale(lr, scale), hr, border=scale)
                    cache["pairs"].append((lr, hr, bicubic))
            loaded = Loaded(model, config, None, "learning benchmark")
            scores = [(psnr_y(run(loaded, lr), hr, border=scale), bicubic)
                      for lr, hr, bicubic in cache["pairs"]]
            return tuple(np.mean(scores, axis=0))

        return evaluate

    if family in ("deblur_gan", "dgf_deblur"):
        from common.data import open_pairs
        from common.reports import deblur_record

        restore = importlib.import_module(f"{family}.inference").run
        source = open_pairs(data, split="test")
        pairs = [(source.names[i], *source.load(i)) for i in range(len(source))]

        def evaluate(model, config):
            loaded = Loaded(model, config, None, "learning benchmark")
            records = [deblur_record(name, restore(loaded, blurred), sharp, blurred)
                       for name, blurred, sharp in pairs]
            return (float(np.mean([r["psnr"] for r in records])),
                    float(np.mean([r["blurred_psnr"] for r in records])))

        return evaluate

    from common.data import open_images
    from glcic_inpaint.test import evaluate as glcic_evaluate

    source = open_images(data, split="test")

    def evaluate(model, config):
        loaded = Loaded(model, config, None, "learning benchmark")
        records, _, _ = glcic_evaluate(source, len(source), loaded, None, config, None,
                                       config.image_size, 0, "none")
        return (float(np.mean([r["glcic_psnr_hole"] for r in records])),
                float(np.mean([r["mean_fill_psnr_hole"] for r in records])))

    return evaluate


# ----------------------------------------------------------------------------- data and runs
def prepare_data(family: Family, out: Path, photos: int | None, test_images: int | None) -> Path:
    """Build (or reuse) the family's data set under out/data/<kind>."""
    import learning_data

    folder = out / "data" / family.data_kind
    recipe = {"kind": family.data_kind, "photos": photos, "test_images": test_images,
              "order_seed": learning_data.ORDER_SEED,
              "train_photos": list(learning_data.TRAIN_PHOTOS), "test_photos": list(learning_data.TEST_PHOTOS)}
    marker = folder / "recipe.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("recipe") == recipe:
                return folder
        except json.JSONDecodeError:
            pass
    if folder.exists():
        shutil.rmtree(folder)
    started = time.monotonic()
    counts = learning_data.build(family.data_kind, folder, photos=photos, test_images=test_images)
    marker.write_text(json.dumps({"recipe": recipe, "counts": counts}) + "\n")
    print(f"data: {folder} ({counts['train']} training, {counts['test']} held-out images; "
          f"{time.monotonic() - started:.0f} s)", flush=True)
    return folder


def fresh_run_dir(out: Path) -> Path:
    """out/run, emptied when it holds an earlier benchmark run (every curve starts from scratch)."""
    run_dir = out / "run"
    if run_dir.exists():
        if not (run_dir / RUN_MARKER).is_file():
            raise UserError(f"{run_dir}: exists and is not a learning-benchmark run; pass another --out")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / RUN_MARKER).write_text("made by benchmarks/learning.py; deleted by its next run\n")
    return run_dir


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def build_parser():
    p = argparse.ArgumentParser(
        prog="python benchmarks/learning.py", description=__doc__.splitlines()[0],
        epilog="Flags after -- are passed to the family's train.py (they override the benchmark's).")
    p.add_argument("--family", required=True, choices=sorted(FAMILIES))
    p.add_argument("--preset", help="recipe (default: srgan paper, deblur_gan paper, dgf_deblur keras, "
                                    "glcic_inpaint paper)")
    p.add_argument("--minutes", type=float, default=15.0, help="training minutes (evaluation excluded)")
    p.add_argument("--max-steps", type=int, help="also stop after this many steps")
    p.add_argument("--eval-every", type=int, help="steps between evaluations (default per family)")
    p.add_argument("--out", help="output folder (default runs/learning/<family>-<preset>)")
    p.add_argument("--plot", help="the plot's path (default OUT/curve.png)")
    p.add_argument("--vgg-weights", help="VGG notop .h5 for the perceptual loss (default: ImageNet "
                                         "from the Keras cache, else the demos' L1 fallback)")
    p.add_argument("--replot", action="store_true",
                   help="no training: redraw the plot and the result line from OUT/curve.csv")
    p.add_argument("--photos", type=int, help="use only the first N training photos (tests)")
    p.add_argument("--test-images", type=int, help="use only the first N held-out photos (tests)")
    return p


def _demo_vgg_rule(train_module):
    """train.py decides on VGG with ``resolve_vgg_choice(..., sample_demo)``; the benchmark's data
    is made from the bundled sample photos, so it is decided as for the demo (L1 fallback offline)."""
    real = train_module.resolve_vgg_choice

    def resolve(vgg_weights, network, sample_demo):
        return real(vgg_weights, network, True)

    train_module.resolve_vgg_choice = resolve
    return real


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "python benchmarks/learning.py " + " ".join(argv)
    passthrough = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    family = FAMILIES[args.family]
    preset = args.preset or family.default_preset
    out = Path(args.out) if args.out else RUNS_ROOT / "learning" / f"{family.name}-{preset}"
    eval_every = family.eval_every if args.eval_every is None else args.eval_every
    if args.minutes <= 0 or eval_every < 1 or (args.max_steps is not None and args.max_steps < 1):
        raise UserError("--minutes, --eval-every and --max-steps must be positive")
    out.mkdir(parents=True, exist_ok=True)

    from common import learning_curves as lc

    plot_path = Path(args.plot) if args.plot else out / "curve.png"
    if args.replot:
        if not (out / "curve.csv").is_file():
            raise UserError(f"{out / 'curve.csv'}: no such file; run the benchmark first (without --replot)")
        curve = lc.read_csv(out / "curve.csv")
        return finish(family, preset, curve, out, plot_path)

    data = prepare_data(family, out, args.photos, args.test_images)
    run_dir = fresh_run_dir(out)
    train_flags = ["--data", str(data), "--out", str(run_dir), "--preset", preset, "--no-progress",
                   "--log-every", str(eval_every), *family.train_flags]
    if family.vgg and args.vgg_weights:
        train_flags += ["--vgg-weights", args.vgg_weights]
    train_flags += passthrough

    train_module = importlib.import_module(f"{family.name}.train")
    counts = json.loads((data / "recipe.json").read_text())["counts"]

    def header() -> dict:
        """The facts above the CSV's columns (config.json is written when training starts)."""
        record = {}
        if (run_dir / "config.json").is_file():
            record = json.loads((run_dir / "config.json").read_text())
        info = record.get("info", {})
        return {
            "family": family.name, "preset": preset,
            "command": command,
            "train.py flags": " ".join(train_flags),
            "metric": f"{family.metric_label} on {counts['test']} held-out images; baseline: {family.baseline_label}",
            "data": f"{counts['train']} training / {counts['test']} held-out images (benchmarks/learning_data.py)",
            "precision": record.get("precision", "?"),
            "content loss": info.get("content_loss", "as the preset (no fallback)"),
            "warnings": " | ".join(record.get("warnings", [])) or "none",
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "schedule": family.schedule,
        }

    def save_so_far(curve) -> None:  # every evaluation: a killed run keeps its points
        curve.header = {**header(), "result": "(run in progress or killed: no result line yet)"}
        lc.write_csv(out / "curve.csv", curve)

    recorder = lc.CurveRecorder(make_eval_model(family.name), make_evaluate(family.name, data),
                                eval_every, args.minutes * 60, max_steps=args.max_steps,
                                log=lambda text: print(text, flush=True), on_point=save_so_far)
    print(f"python {family.name}/train.py {' '.join(train_flags)}", flush=True)
    real_vgg_rule = _demo_vgg_rule(train_module) if family.vgg else None
    stopped = None
    try:
        with lc.recording(recorder):
            train_module.main(train_flags)
    except lc.BudgetReached:
        pass
    except TrainingInterrupted as interrupted:  # Ctrl-C / SIGTERM: keep the curve made so far
        stopped = f"{interrupted.signal_name} at step {interrupted.step}, before the time budget"
        print(f"stopped by {stopped}; writing the curve so far", flush=True)
    finally:
        if real_vgg_rule is not None:
            train_module.resolve_vgg_choice = real_vgg_rule

    curve = recorder.curve
    curve.header = header()
    if stopped:
        curve.header["stopped"] = stopped
    return finish(family, preset, curve, out, plot_path)


def finish(family: Family, preset: str, curve, out: Path, plot_path: Path) -> int:
    """The result line (printed and in the CSV header), the CSV and the plot."""
    from common import learning_curves as lc

    text = lc.summary(curve, family.schedule_steps)
    curve.header["result"] = text
    lc.write_csv(out / "curve.csv", curve)
    lc.plot(plot_path, curve, f"{family.name} {preset}: held-out {family.metric_label.split(' (')[0]}",
            family.metric_label, family.baseline_label)
    print(f"{family.name} {preset}: {text}")
    print(f"wrote {out / 'curve.csv'} and {plot_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
