"""Evaluate a DGF generator on blurred / sharp pairs: PSNR / SSIM, a CSV and result grids.

    python dgf_deblur/test.py                                   # newest run, bundled sample test pairs
    python dgf_deblur/test.py --weights runs/dgf_deblur/keras --data data/deshake_256
    python dgf_deblur/test.py --weights runs/dgf_deblur/paper --data data/data.h5

--data takes the same layouts as train.py (its test split is used). Images are evaluated at their
own size (the generator is fully convolutional). Writes to --output (default
outputs/dgf_deblur/test): metrics.csv (per image: PSNR / SSIM of the deblurred image and of the
blurred input as the baseline; then the means), images/ (the deblurred images) and grids/
(Sharp | Blurred | Generated, the tutorial's order, with scores).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.cli import run_cli, test_parser
from common.errors import UserError
from dgf_deblur.inference import FAMILY, add_model_flags

COLUMNS = ("Sharp", "Blurred", "Generated")  # leftthomas main.py test(): [sharp | blur | generated]


def main(argv=None) -> int:
    p = test_parser(FAMILY, "Evaluate DGF: PSNR / SSIM per image against the sharp images, grids.")
    add_model_flags(p)
    p.add_argument("--side-by-side", choices=("target_left", "degraded_left"),
                   help="for side-by-side images: which half is sharp (default: the run's, "
                        "target_left for the DGF data)")
    p.add_argument("--rows-per-grid", type=int, default=4, help="images per grid file")
    args = p.parse_args(argv)

    from common.data import open_pairs
    from common.grids import metric_caption, save_grid
    from common.image_io import write_image
    from common.inference import Batch
    from common.reports import DEBLUR_HEADER, deblur_record, deblur_row, finish_deblur_report
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from dgf_deblur.inference import load_from_args, run

    set_inference_precision(args.precision, "dgf_deblur")
    loaded = load_from_args(args)
    cfg = loaded.config
    data = Path(args.data) if args.data else sample_dir("side_by_side")
    source = open_pairs(data, split="test", side_by_side=args.side_by_side or cfg.side_by_side)
    count = len(source) if args.limit is None else min(len(source), max(0, args.limit))
    if count == 0:
        raise UserError(f"{data}: no test pairs found")
    out = Path(args.output) if args.output else Path("outputs") / FAMILY / "test"
    (out / "images").mkdir(parents=True, exist_ok=True)

    records, rows, captions, grids = [], [], [], 0

    def flush():
        nonlocal rows, captions, grids
        if rows:
            save_grid(out / "grids" / f"grid_{grids:03d}.png", rows, list(COLUMNS), captions=captions,
                      title=f"DGF ({cfg.preset})")
            grids += 1
            rows, captions = [], []

    batch = Batch()  # one failing pair is one line; the others go on
    print(DEBLUR_HEADER)
    for i in range(count):
        name = source.names[i]
        with batch.item(name):
            blurred, sharp = source.load(i)
            batch.shape = blurred.shape
            if blurred.shape != sharp.shape:
                raise UserError(f"{data}: pair {name} has blurred {blurred.shape[:2]} and sharp "
                                f"{sharp.shape[:2]}; both images of a pair must have the same size")
            restored = run(loaded, blurred, tile=args.tile, train_mode=args.train_mode)
            # Scores on the saved 8-bit images, RGB in [0, 1].
            record = deblur_record(name, restored, sharp, blurred)
            records.append(record)
            print(deblur_row(record))
            write_image(out / "images" / f"{name}.png", restored)
            rows.append([sharp, blurred, restored])
            captions.append([None, metric_caption(record["blurred_psnr"], record["blurred_ssim"]),
                             metric_caption(record["psnr"], record["ssim"])])
            if len(rows) >= max(1, args.rows_per_grid):
                flush()
    flush()

    if records:
        finish_deblur_report(out / "metrics.csv", records)
        print(f"{len(records)} images; metrics.csv, images/ and grids/ in {out}", file=sys.stderr)
    return batch.finish()


if __name__ == "__main__":
    run_cli(main)
