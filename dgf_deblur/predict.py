"""Deblur photos at full resolution with a trained DGF generator.

    python dgf_deblur/predict.py                                    # newest run, bundled blurred samples
    python dgf_deblur/predict.py --weights runs/dgf_deblur/keras --input photo.jpg --output out/
    python dgf_deblur/predict.py --input DIR --tile 512             # e.g. 4032x3024 phone photos
    python dgf_deblur/predict.py --weights generator_weights.h5 --input DIR   # leftthomas' Keras 2 file

Any image size. Large images (over 1024 x 1024) are processed in overlapping 512-px tiles
blended together, so memory stays bounded (leftthomas' test_pictures() ran out of memory on
4032 x 3024 photos); --tile N sets the tile size, --tile 0 runs whole images. --grid also writes
Blurred | Deblurred comparisons to OUTPUT/grids/.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import predict_parser, run_cli
from dgf_deblur.inference import FAMILY


def main(argv=None) -> int:
    from dgf_deblur.inference import add_model_flags

    p = predict_parser(FAMILY, "Deblur images with DGF.")  # its --tile: unset = auto, 0 = never
    add_model_flags(p, tile=False)
    p.add_argument("--grid", action="store_true", help="also write comparisons to OUTPUT/grids/")
    args = p.parse_args(argv)

    from common.grids import save_grid
    from common.inference import collect_inputs, process_files
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from dgf_deblur.inference import load_from_args, run

    set_inference_precision(args.precision, "dgf_deblur")
    loaded = load_from_args(args)
    source = Path(args.input) if args.input else sample_dir("blurred_pairs") / "test" / "A"
    inputs = collect_inputs(source)
    out = Path(args.output) if args.output else Path("outputs") / FAMILY / "predict"

    def write_grid(path, image, result):
        save_grid(out / "grids" / f"{path.stem}.png", [[image, result]], ["Blurred", "Deblurred"],
                  title=path.name)

    _, failures = process_files(inputs, out, lambda image: run(loaded, image, tile=args.tile, train_mode=args.train_mode),
                                      desc="deblurring", on_result=write_grid if args.grid else None)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
