"""Upscale images with a trained SRGAN / SRResNet generator.

    python srgan/predict.py                                  # bundled sample LR photos, newest run
    python srgan/predict.py --weights runs/srgan/paper-srgan --input photo.png --output out/
    python srgan/predict.py --weights RUN --input big_photos/ --tile 128 --grid

Each output is exactly scale x the input size (PNG, named after the input). --grid also writes
Bicubic | SR comparisons to OUTPUT/grids/. --tile N processes the input in overlapping N x N tiles
(input pixels) so large images fit in memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.cli import predict_parser, run_cli
from srgan.config import DEFAULT_PRESET, PRESETS

DESCRIPTION = "Upscale images with a trained SRGAN generator."


def build_parser():
    p = predict_parser("srgan", DESCRIPTION)
    p.add_argument("--grid", action="store_true", help="also write Bicubic | SR comparison grids")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help="architecture and input range for a bare weights file (a run directory "
                        "records its own)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    from common.grids import save_grid
    from common.inference import collect_inputs, process_files
    from common.precision import set_precision
    from common.sample_data import sample_dir
    from srgan.data import bicubic_upscale
    from srgan.inference import load_generator, upscale

    inputs = collect_inputs(args.input if args.input else sample_dir("lr_images"))
    output_dir = Path(args.output) if args.output else Path("outputs") / "srgan" / "predict"
    set_precision(args.precision)
    generator, config, _, weights_file = load_generator(args.weights, args.preset)
    print(f"generator: {weights_file} (preset {config.preset}, stage {config.stage}, x{config.scale})",
          file=sys.stderr)
    label = "SRResNet" if config.stage == "srresnet" else "SRGAN"

    def on_result(path, image, result):
        if args.grid:
            save_grid(output_dir / "grids" / f"{path.stem}.png",
                      [[bicubic_upscale(image, config.scale), result]], ["Bicubic", label],
                      title=f"{path.name} x{config.scale}")

    written, failures = process_files(
        inputs, output_dir, lambda image: upscale(generator, config, image, args.tile),
        desc="upscaling", on_result=on_result)
    print(f"wrote {written} image(s) to {output_dir}" + (" (+ grids/)" if args.grid and written else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
