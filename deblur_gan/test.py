"""Evaluate a DeblurGAN generator on blurred/sharp pairs at full resolution.

    python deblur_gan/test.py                                   # newest run, bundled sample test pairs
    python deblur_gan/test.py --weights runs/deblur_gan/paper --data data/gopro

Writes to --output (default outputs/deblur_gan/test): metrics.csv (PSNR / SSIM per image, of the
deblurred image and of the blurred input as a baseline, and their means), images/ (the deblurred
images) and grids/ (Blurred | Deblurred | Sharp with scores).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.cli import run_cli, test_parser
from common.errors import UserError

FAMILY = "deblur_gan"


def main(argv=None) -> int:
    from deblur_gan.inference import add_model_flags

    p = test_parser(FAMILY, "Evaluate DeblurGAN: PSNR / SSIM per image, result grids.")
    add_model_flags(p)
    p.add_argument("--tile", type=int, help="process large images in overlapping tiles of this size")
    p.add_argument("--side-by-side", default="degraded_left", choices=("degraded_left", "target_left"),
                   help="for a folder of side-by-side images: which half is blurred")
    p.add_argument("--rows-per-grid", type=int, default=4, help="images per grid file")
    args = p.parse_args(argv)

    from common.data import open_pairs
    from common.grids import metric_caption, save_grid
    from common.image_io import write_image
    from common.inference import Batch
    from common.reports import DEBLUR_HEADER, deblur_record, deblur_row, finish_deblur_report
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from deblur_gan.inference import load_from_args, run

    set_inference_precision(args.precision, "deblur_gan")
    loaded = load_from_args(args)
    cfg = loaded.config
    data = Path(args.data) if args.data else sample_dir("blurred_pairs")
    source = open_pairs(data, split="test", side_by_side=args.side_by_side)
    count = len(source) if args.limit is None else min(len(source), max(0, args.limit))
    if count == 0:
        raise UserError(f"{data}: no test pairs")
    out = Path(args.output) if args.output else Path("outputs") / FAMILY / "test"
    (out / "images").mkdir(parents=True, exist_ok=True)

    records, rows, captions, grid_index = [], [], [], 0

    def flush_grid():
        nonlocal rows, captions, grid_index
        if rows:
            save_grid(out / "grids" / f"grid_{grid_index:03d}.png", rows, ["Blurred", "Deblurred", "Sharp"],
                      captions=captions, title=f"DeblurGAN ({cfg.preset})")
            grid_index += 1
            rows, captions = [], []

    batch = Batch()  # one failing pair is one line; the others go on
    print(DEBLUR_HEADER)
    for i in range(count):
        name = source.names[i]
        with batch.item(name):
            blurred, sharp = source.load(i)
            batch.shape = blurred.shape
            restored = run(loaded, blurred, tile=args.tile, stochastic=args.stochastic)
            if restored.shape != sharp.shape:
                raise UserError(f"blurred {blurred.shape[:2]} and sharp {sharp.shape[:2]} sizes differ")
            # metrics on the saved 8-bit images, RGB in [0, 1] (the corrected official protocol)
            record = deblur_record(name, restored, sharp, blurred)
            records.append(record)
            print(deblur_row(record))
            write_image(out / "images" / f"{name}.png", restored)
            rows.append([blurred, restored, sharp])
            captions.append([metric_caption(record["blurred_psnr"], record["blurred_ssim"]),
                             metric_caption(record["psnr"], record["ssim"]), None])
            if len(rows) >= max(1, args.rows_per_grid):
                flush_grid()
    flush_grid()

    if records:
        finish_deblur_report(out / "metrics.csv", records)
        print(f"{len(records)} images; metrics.csv, images/ and grids/ in {out}", file=sys.stderr)
    return batch.finish()


if __name__ == "__main__":
    run_cli(main)
