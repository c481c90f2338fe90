"""Make blurred/sharp training pairs with DeblurGAN's random-trajectory motion blur.

    python datasets/make_blurred.py --input SHARP_DIR --output OUT [--seed 0] [--expl 0.005 ...]

Writes OUT/A/<name>.png (blurred) and OUT/B/<name>.png (the sharp image, as PNG), the layout
``common.data.open_pairs`` and every DeblurGAN script read. The blur is the one DeblurGAN used
for its synthetic data (motion_blur/blur_image.py of KupynOrest/DeblurGAN): one random camera
trajectory per image, 10%, 50% or 100% of its exposure. See common/motion_blur.py.
"""

from __future__ import annotations

import argparse

from common.motion_blur import EXPL_CHOICES, PART_CHOICES, make_blurred_pairs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_blurred.py",
        description="Blur a folder of sharp images into OUT/A (blurred) and OUT/B (sharp copies).",
    )
    parser.add_argument("--input", required=True, help="folder of sharp images (not read recursively)")
    parser.add_argument("--output", required=True, help="output folder; A/ and B/ are created in it")
    parser.add_argument("--seed", type=int, default=0, help="random seed; each image's blur depends on the seed and its file name (default: 0)")
    parser.add_argument("--expl", type=float, nargs="+", default=list(EXPL_CHOICES), metavar="E",
                        help="trajectory 'exploration' values, one drawn per image; larger = shakier, "
                             f"more compact kernels (default: upstream's {' '.join(map(str, EXPL_CHOICES))})")
    parser.add_argument("--part", type=int, choices=range(4), default=None,
                        help="exposure kernel: 0/1/2/3 = 1/10/50/100%% of the trajectory "
                             f"(default: drawn per image from {list(PART_CHOICES)})")
    parser.add_argument("--max-len", type=float, default=60.0, help="trajectory length in pixels (default: 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    names = make_blurred_pairs(args.input, args.output, seed=args.seed, expl=args.expl, part=args.part,
                               max_len=args.max_len, progress=not args.quiet)
    print(f"wrote {len(names)} pairs: {args.output}/A (blurred), {args.output}/B (sharp)")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main)
