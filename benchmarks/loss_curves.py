"""DeblurGAN paper training: the loss curves of a mixed_bfloat16 run and a float32 run, one plot.

    python benchmarks/loss_curves.py [--steps 200] [--crop 128] [--out benchmarks/figures/deblurgan_bf16_vs_float32.png]

Both runs train the paper preset from the same seed on the bundled sample pairs with a random VGG
(no ImageNet download; the curves compare precisions, not image quality), logging every 5 steps.
``--logs BF16_LOG F32_LOG`` only plots two existing logs of deblur_gan/train.py --no-progress.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^step (\d+)/\d+\s+(.*?)\s+[\d.]+ steps/s")


def parse(log: str) -> dict[str, list[tuple[int, float]]]:
    """{loss name: [(step, value)]} from the plain log lines (``step N/T  name value ...``)."""
    curves: dict[str, list] = {}
    for line in log.splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        step, fields = int(match.group(1)), match.group(2).split()
        for name, value in zip(fields[::2], fields[1::2]):
            curves.setdefault(name, []).append((step, float(value)))
    return curves


def train(policy: str, steps: int, crop: int, folder: Path) -> str:
    command = [sys.executable, "deblur_gan/train.py", "--preset", "paper", "--precision", policy, "--epochs", "1",
               "--steps-per-epoch", str(steps), "--crop", str(crop), str(crop), "--log-every", "5",
               "--no-progress", "--vgg-weights", "random", "--seed", "0", "--decay-epochs", "0",
               "--save-every", str(10 * steps), "--out", str(folder / policy)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{policy} run failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout + done.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--logs", nargs=2, metavar=("BF16_LOG", "F32_LOG"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "figures" / "deblurgan_bf16_vs_float32.png"))
    args = parser.parse_args(argv)
    if args.logs:
        logs = [Path(p).read_text() for p in args.logs]
    else:
        with tempfile.TemporaryDirectory() as folder:
            logs = [train(p, args.steps, args.crop, Path(folder)) for p in ("mixed_bfloat16", "float32")]
    curves = dict(zip(("mixed_bfloat16", "float32"), (parse(log) for log in logs)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("d_loss", "g_adv", "gp", "g_content")
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2))
    for axis, name in zip(axes, names):
        for policy, style in (("float32", "-"), ("mixed_bfloat16", "--")):
            points = curves[policy].get(name, [])
            axis.plot([s for s, _ in points], [v for _, v in points], style, label=policy)
        axis.set_title(name)
        axis.set_xlabel("step")
    axes[0].legend()
    figure.suptitle("DeblurGAN paper preset, same seed: mixed_bfloat16 vs float32")
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80)
    for name in names:
        pairs = list(zip(curves["float32"].get(name, []), curves["mixed_bfloat16"].get(name, [])))
        if pairs:
            gap = sum(abs(a[1] - b[1]) for a, b in pairs) / len(pairs)
            print(f"{name}: mean |bf16 - float32| over {len(pairs)} logged steps = {gap:.4g}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
