"""Deblur images at full resolution with a trained DeblurGAN generator.

    python deblur_gan/predict.py                                  # newest run, bundled blurred samples
    python deblur_gan/predict.py --weights runs/deblur_gan/paper --input photo.jpg --output out/
    python deblur_gan/predict.py --weights generator.h5 --preset keras-port --upsampling nearest --input DIR

Any image size: sides are padded to a multiple of 4 and cropped back; --tile N bounds memory on
large images. --grid also writes Blurred | Deblurred comparisons to OUTPUT/grids/.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import predict_parser, run_cli

FAMILY = "deblur_gan"


def main(argv=None) -> int:
    from deblur_gan.test import add_model_flags, load_generator

    p = predict_parser(FAMILY, "Deblur images with DeblurGAN.")
    add_model_flags(p)
    p.add_argument("--grid", action="store_true", help="also write side-by-side comparisons to OUTPUT/grids/")
    args = p.parse_args(argv)

    import numpy as np

    from common.grids import save_grid
    from common.image_io import signed_to_uint8, uint8_to_signed
    from common.inference import collect_inputs, process_files, restore_array
    from common.precision import set_precision
    from common.sample_data import sample_dir

    set_precision(args.precision)
    generator, cfg, _ = load_generator(args)
    source = Path(args.input) if args.input else sample_dir("blurred_pairs") / "test" / "A"
    inputs = collect_inputs(source)
    out = Path(args.output) if args.output else Path("outputs") / FAMILY / "predict"

    def transform(image):
        restored = restore_array(generator, uint8_to_signed(image), multiple=cfg.multiple, tile=args.tile,
                                 training=args.stochastic)
        return np.asarray(signed_to_uint8(np.clip(restored, -1.0, 1.0)))

    def write_grid(path, image, result):
        save_grid(out / "grids" / f"{path.stem}.png", [[image, result]], ["Blurred", "Deblurred"],
                  title=path.name)

    written, failures = process_files(inputs, out, transform, desc="deblurring",
                                      on_result=write_grid if args.grid else None)
    print(f"wrote {written} image(s) to {out}" + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
