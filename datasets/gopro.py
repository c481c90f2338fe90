"""Organise the GoPro deblurring data set into A/B folders.

    python datasets/gopro.py --input GOPRO_Large --output data/gopro [--gamma] [--link]

GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/<frame>.png becomes
data/gopro/{train,test}/{A,B}/<sequence>_<frame>.png with A = blurred (blur/, or blur_gamma/ with
--gamma) and B = sharp, the layout DeblurGAN's Keras port trains on (--data data/gopro).
"""

from __future__ import annotations

import argparse

from common.cli import run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python datasets/gopro.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="the extracted GOPRO_Large folder")
    parser.add_argument("--output", required=True, help="output folder (gets train/ and test/)")
    parser.add_argument("--gamma", action="store_true",
                        help="use blur_gamma/ (gamma-corrected blur) instead of blur/ (linear)")
    parser.add_argument("--link", action="store_true",
                        help="hard-link the frames instead of copying them (same disk only)")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty --output")
    args = parser.parse_args(argv)

    from common.datasets_tools import organize_gopro

    counts = organize_gopro(args.input, args.output, gamma=args.gamma,
                            mode="link" if args.link else "copy", overwrite=args.overwrite)
    for split, count in counts.items():
        print(f"{split}: {count} pairs -> {args.output}/{split}/A (blurred), {args.output}/{split}/B (sharp)")
    return 0


if __name__ == "__main__":
    run_cli(main)
