"""Deblur images at full resolution with a trained DeblurGAN generator.

    python deblur_gan/predict.py                                  # newest run, bundled blurred samples
    python deblur_gan/predict.py --weights runs/deblur_gan/paper --input photo.jpg --output out/
    python deblur_gan/predict.py --weights latest_net_G.pth --input photos/   # official PyTorch release
    python deblur_gan/predict.py --weights generator.h5 --input DIR           # the Keras port's release

Any image size: sides are padded to a multiple of 4 and cropped back; --tile N bounds memory on
large images. --grid also writes Blurred | Deblurred comparisons to OUTPUT/grids/. The architecture
of an upstream file is detected from the file (one `weights:` line says what was found).
"""

from __future__ import annotations

from pathlib import Path

from common.cli import predict_parser, run_cli

FAMILY = "deblur_gan"


def main(argv=None) -> int:
    from deblur_gan.inference import add_model_flags

    p = predict_parser(FAMILY, "Deblur images with DeblurGAN.")
    add_model_flags(p)
    p.add_argument("--grid", action="store_true", help="also write side-by-side comparisons to OUTPUT/grids/")
    args = p.parse_args(argv)

    from common.grids import save_grid
    from common.inference import collect_inputs, process_files
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from deblur_gan.inference import load_from_args, run

    set_inference_precision(args.precision, "deblur_gan")
    loaded = load_from_args(args)
    source = Path(args.input) if args.input else sample_dir("blurred_pairs") / "test" / "A"
    inputs = collect_inputs(source)
    out = Path(args.output) if args.output else Path("outputs") / FAMILY / "predict"

    def transform(image):
        return run(loaded, image, tile=args.tile, stochastic=args.stochastic)

    def write_grid(path, image, result):
        save_grid(out / "grids" / f"{path.stem}.png", [[image, result]], ["Blurred", "Deblurred"],
                  title=path.name)

    _, failures = process_files(inputs, out, transform, desc="deblurring",
                                      on_result=write_grid if args.grid else None)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
