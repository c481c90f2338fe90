"""Upscale images with a trained SRGAN / SRResNet generator.

    python srgan/predict.py                                  # bundled sample LR photos, newest run
    python srgan/predict.py --weights runs/srgan/paper-srgan --input photo.png --output out/
    python srgan/predict.py --weights RUN --input big_photos/ --tile 128 --grid
    python srgan/predict.py --weights Generator_SRGAN.h5 --input photos/   # bubbliiiing's release
    python srgan/predict.py --weights pre_generator.h5 --input photos/     # krasserm's SRResNet

Each output is exactly scale x the input size (PNG, named after the input). --grid also writes
Bicubic | SR comparisons to OUTPUT/grids/. --tile N processes the input in overlapping N x N tiles
(input pixels) so large images fit in memory.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import predict_parser, run_cli

DESCRIPTION = "Upscale images with a trained SRGAN generator."


def build_parser():
    p = predict_parser("srgan", DESCRIPTION)
    p.add_argument("--grid", action="store_true", help="also write Bicubic | SR comparison grids")
    from srgan.inference import add_model_flags

    return add_model_flags(p)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    from common.grids import save_grid
    from common.inference import collect_inputs, process_files
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from srgan.data import bicubic_upscale
    from srgan.inference import label, load_from_args, run

    inputs = collect_inputs(args.input if args.input else sample_dir("lr_images"))
    output_dir = Path(args.output) if args.output else Path("outputs") / "srgan" / "predict"
    set_inference_precision(args.precision, "srgan")
    loaded = load_from_args(args)
    config = loaded.config

    def on_result(path, image, result):
        if args.grid:
            save_grid(output_dir / "grids" / f"{path.stem}.png",
                      [[bicubic_upscale(image, config.scale), result]], ["Bicubic", label(config)],
                      title=f"{path.name} x{config.scale}")

    _, failures = process_files(
        inputs, output_dir, lambda image: run(loaded, image, tile=args.tile),
        desc="upscaling", on_result=on_result)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
