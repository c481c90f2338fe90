"""Convert between A/B folders and side-by-side images.

    python datasets/side_by_side.py combine --a DIR_A --b DIR_B --output DIR [--order degraded_left]
    python datasets/side_by_side.py split --input DIR --output DIR [--order degraded_left]

"degraded_left" is DeblurGAN's combine_A_and_B.py layout (blurred left, sharp right);
"target_left" is the DGF tutorial data (sharp left, blurred right). Folders holding train/ and
test/ sub-folders are converted split by split. Images are written as PNG.
"""

from __future__ import annotations

import argparse

from common.cli import run_cli

ORDERS = ("degraded_left", "target_left")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python datasets/side_by_side.py",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    combine = commands.add_parser("combine", help="A/ + B/ folders -> side-by-side images")
    combine.add_argument("--a", required=True, help="degraded images (e.g. blurred)")
    combine.add_argument("--b", required=True, help="target images with the same file names")
    split = commands.add_parser("split", help="side-by-side images -> A/ + B/ folders")
    split.add_argument("--input", required=True, help="folder of side-by-side images")
    for sub in (combine, split):
        sub.add_argument("--output", required=True, help="output folder")
        sub.add_argument("--order", choices=ORDERS, default="degraded_left",
                         help="which half holds the degraded image")
        sub.add_argument("--overwrite", action="store_true", help="allow a non-empty --output")
    args = parser.parse_args(argv)

    from common.datasets_tools import combine_side_by_side, split_side_by_side

    if args.command == "combine":
        count = combine_side_by_side(args.a, args.b, args.output, args.order, args.overwrite)
        print(f"{count} side-by-side images ({args.order}) -> {args.output}")
    else:
        count = split_side_by_side(args.input, args.output, args.order, args.overwrite)
        print(f"{count} pairs -> {args.output} (A = degraded, B = target)")
    return 0


if __name__ == "__main__":
    run_cli(main)
