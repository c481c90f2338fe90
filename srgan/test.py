"""Evaluate a trained SRGAN / SRResNet generator: PSNR / SSIM against HR images, and bicubic.

    python srgan/test.py                                     # newest run, bundled sample test photos
    python srgan/test.py --weights RUN --data data/Set5/HR --lr-dir data/Set5/LR_bicubic/X4

Metrics (per image and mean), for the model and for bicubic upscaling of the same LR images:
- psnr_y / ssim_y: Y channel (BT.601), ``scale`` pixels removed on each side: the paper's protocol.
- psnr_rgb / ssim_rgb: RGB, whole image (krasserm/super-resolution's protocol).
Without --lr-dir the LR images are made from the HR images (cropped to a multiple of the scale) by
the same antialiased bicubic as in training. With --lr-dir the given LR images are used as they
are (matched by file name, or by the name with HR replaced by LR), and each HR image is cropped to
scale x its LR image. Writes OUTPUT/metrics.csv and a Bicubic | SR | HR grid per image.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from common.cli import run_cli, test_parser
from common.errors import UserError

DESCRIPTION = "PSNR / SSIM of a trained SRGAN generator (Y channel with border, and RGB)."
METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


def build_parser():
    p = test_parser("srgan", DESCRIPTION)
    p.add_argument("--lr-dir", dest="lr_dir",
                   help="folder of the matching LR images (e.g. the standard Set5 x4 images); "
                        "default: made from --data")
    p.add_argument("--tile", type=int, help="process large images in overlapping tiles of this size")
    from srgan.inference import add_model_flags

    return add_model_flags(p)


def match_lr(hr_files: list[Path], lr_dir: Path) -> dict[Path, Path]:
    """HR file -> LR file, matched by stem (or the stem with HR replaced by LR)."""
    from common.image_io import list_images

    lr_files = {p.stem: p for p in list_images(lr_dir)}
    if not lr_files:
        raise UserError(f"{lr_dir}: no images in the --lr-dir folder")
    pairs, missing = {}, []
    for hr in hr_files:
        for stem in (hr.stem, hr.stem.replace("HR", "LR"), hr.stem.replace("hr", "lr")):
            if stem in lr_files:
                pairs[hr] = lr_files[stem]
                break
        else:
            missing.append(hr.name)
    if missing:
        shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise UserError(f"{lr_dir}: no LR image for {shown}; LR files must have the HR file's name "
                        "(or with HR replaced by LR)")
    return pairs


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    import numpy as np

    from common.data import open_images
    from common.grids import save_grid
    from common.image_io import read_image, write_image
    from common.inference import Batch
    from common.metrics import psnr, psnr_y, ssim, ssim_y
    from common.precision import set_inference_precision
    from common.sample_data import sample_dir
    from srgan.data import downscale_uint8, mod_crop
    from srgan.inference import label, load_from_args, run
    from srgan.samples import compare_row

    data_path = Path(args.data) if args.data else sample_dir("hr_images")
    hr_files = open_images(data_path, split="test").files
    if args.limit:
        hr_files = hr_files[: args.limit]
    lr_pairs = match_lr(hr_files, Path(args.lr_dir)) if args.lr_dir else None
    output_dir = Path(args.output) if args.output else Path("outputs") / "srgan" / "test"
    set_inference_precision(args.precision, "srgan")
    loaded = load_from_args(args)
    config = loaded.config
    scale = config.scale
    print(f"data: {data_path}" + (f", LR: {args.lr_dir}" if args.lr_dir else " (LR made by bicubic)"),
          file=sys.stderr)

    def unit(image):
        return np.asarray(image, np.float32) / 255.0

    def scores(image, hr):
        a, b = unit(image), unit(hr)
        return {"psnr_y": psnr_y(a, b, border=scale), "ssim_y": ssim_y(a, b, border=scale),
                "psnr_rgb": psnr(a, b), "ssim_rgb": ssim(a, b)}

    records = []
    batch = Batch()  # one failing image is one line; the others go on
    for hr_file in hr_files:
        with batch.item(hr_file):
            hr = read_image(hr_file)
            batch.shape = hr.shape
            if lr_pairs:
                lr = read_image(lr_pairs[hr_file])
                h, w = lr.shape[0] * scale, lr.shape[1] * scale
                if hr.shape[0] < h or hr.shape[1] < w:
                    raise UserError(f"{lr_pairs[hr_file]}: LR image {lr.shape[1]}x{lr.shape[0]} times "
                                    f"{scale} is larger than its HR image {hr_file} "
                                    f"({hr.shape[1]}x{hr.shape[0]}); is the scale right?")
                hr = hr[:h, :w]
            else:
                hr = mod_crop(hr, scale)
                lr = downscale_uint8(hr, scale)
            if min(lr.shape[:2]) < 4:
                batch.skip(hr_file, f"too small for x{scale}")
                continue
            sr = run(loaded, lr, tile=args.tile)
            write_image(output_dir / "images" / f"{hr_file.stem}.png", sr)
            cells, captions = compare_row(lr, sr, hr, scale)
            save_grid(output_dir / "grids" / f"{hr_file.stem}.png", [cells], ["Bicubic", label(config), "HR"],
                      captions=[captions], title=f"{hr_file.name} x{scale} (PSNR / SSIM on Y)")
            record = {"image": hr_file.name}
            for prefix, image in (("sr", sr), ("bicubic", cells[0])):
                record.update({f"{prefix}_{k}": v for k, v in scores(image, hr).items()})
            records.append(record)
    if not records:
        if batch.failures:
            return batch.finish()
        raise UserError(f"{data_path}: no image large enough to evaluate at x{scale}")

    columns = ["image"] + [f"{p}_{m}" for p in ("sr", "bicubic") for m in METRICS]
    mean = {"image": "mean", **{c: float(np.mean([r[c] for r in records])) for c in columns[1:]}}
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in [*records, mean]:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})

    print(f"{'image':<24} {'PSNR-Y':>7} {'SSIM-Y':>7} {'PSNR':>7} {'SSIM':>7}   bicubic PSNR-Y / SSIM-Y")
    for row in [*records, mean]:
        print(f"{row['image'][:24]:<24} {row['sr_psnr_y']:7.2f} {row['sr_ssim_y']:7.4f} "
              f"{row['sr_psnr_rgb']:7.2f} {row['sr_ssim_rgb']:7.4f}   "
              f"{row['bicubic_psnr_y']:.2f} / {row['bicubic_ssim_y']:.4f}")
    print(f"wrote {output_dir / 'metrics.csv'}, grids/ and images/ ({len(records)} images)")
    return batch.finish()


if __name__ == "__main__":
    run_cli(main)
