"""A/B: the DeblurGAN ``paper`` training step of two checkouts, timed in turns in one run.

    git worktree add /tmp/base HEAD~3        # the "before" tree (any commit)
    python benchmarks/ab_train_step.py --base /tmp/base [--rounds 15] [--size 256] [--precision auto]

Each tree runs in its own worker process (its own modules, dtype policy and thread pools), builds
the step as ``benchmarks/run.py`` does (256x256, batch 1, random VGG19, compiled ``train_on_batch``),
takes two warm-up steps, and then the workers run one step each in turns, round after round, so
outside load hits both alike. Prints each tree's median and the ratio base / this tree. Thread
counts come from the environment (``TF_NUM_INTRAOP_THREADS``), the same for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@"

WORKER = r"""
import importlib.util, sys, time
root, precision, size, helper = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, root)  # that tree's modules; the step is built by this tree's helper
spec = importlib.util.spec_from_file_location("deblurgan_step_profile", helper)
profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile)
policy, gan, x, y = profile.build(precision, size)
for _ in range(2):
    gan.train_on_batch(x, y, return_dict=True)
print("@@ready", policy, flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    logs = gan.train_on_batch(x, y, return_dict=True)
    print(f"@@{time.perf_counter() - start:.6f} {logs['g_total']:.6g}", flush=True)
"""


def _reply(proc) -> str:
    for line in proc.stdout:
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    raise SystemExit(f"worker {proc.args[3]} ended: see its messages above")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the other checkout (e.g. a git worktree of HEAD)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    trees = {"base": str(Path(args.base).resolve()), "this tree": str(ROOT)}
    procs = {name: subprocess.Popen([sys.executable, "-c", WORKER, root, args.precision, str(args.size),
                                     str(ROOT / "benchmarks" / "deblurgan_step_profile.py")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
                                    env={**os.environ, "PYTHONPATH": root})
             for name, root in trees.items()}
    for name, proc in procs.items():
        print(f"{name} ({trees[name]}): {_reply(proc)}", flush=True)
    times = {name: [] for name in procs}
    for r in range(args.rounds):
        for name, proc in (procs.items() if r % 2 == 0 else reversed(procs.items())):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            seconds, g_total = _reply(proc).split()
            times[name].append(float(seconds))
        print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()), flush=True)
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"{name:10s} median {m:.3f} s per step ({args.rounds} steps)")
    print(f"base / this tree: {medians['base'] / medians['this tree']:.3f}x")


if __name__ == "__main__":
    main()
