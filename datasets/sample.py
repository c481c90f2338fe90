"""Build the bundled sample data sets (from scikit-image's photos, no download) and say where they are.

    python datasets/sample.py [--kind all|blurred_pairs|side_by_side|hr_images|lr_images|inpaint] [--force]

The sets go to datasets/sample/<kind>/ (or $GAN_RESTORATION_SAMPLE_DIR/<kind>/); the training
scripts build the one they need on first use.
"""

from __future__ import annotations

import argparse
import time

from common.cli import run_cli
from common.sample_data import SAMPLE_KINDS, sample_dir


def _describe(folder) -> str:
    from common.image_io import list_images

    parts = []
    for sub in sorted(p for p in [folder, *folder.rglob("*")] if p.is_dir()):
        count = len(list_images(sub))
        if count:
            name = sub.relative_to(folder).as_posix()
            parts.append(f"{'.' if name == '.' else name + '/'} {count}")
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python datasets/sample.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("all", *SAMPLE_KINDS), default="all", help="which set")
    parser.add_argument("--force", action="store_true", help="rebuild even if already built")
    args = parser.parse_args(argv)
    kinds = SAMPLE_KINDS if args.kind == "all" else (args.kind,)
    for kind in kinds:
        start = time.perf_counter()
        folder = sample_dir(kind, force=args.force)
        print(f"{kind}: {folder} ({_describe(folder)}; {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    run_cli(main)
