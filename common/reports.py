"""Metric tables written by every test.py: a CSV with one row per image and a mean row."""

from __future__ import annotations

import csv
from pathlib import Path

from common.metrics import mean_metrics


def write_metrics_csv(path: Path, records: list[dict], fields: list[str] | None = None) -> dict:
    """Write ``records`` (dicts with an "image" key and float metrics) plus a "mean" row.

    Returns the means. Floats are written with 4 decimals.
    """
    if fields is None:
        fields = list(records[0].keys()) if records else ["image"]
    means = mean_metrics(records)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for record in records:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in record.items()})
        writer.writerow({"image": "mean", **{k: f"{v:.4f}" for k, v in means.items() if k in fields}})
    return means


# --------------------------------------------------------------------- deblurring evaluation
# Shared by deblur_gan/test.py and dgf_deblur/test.py: the restored image and the blurred input
# are both scored against the sharp image, on the saved 8-bit images as RGB in [0, 1].
DEBLUR_FIELDS = ["image", "psnr", "ssim", "blurred_psnr", "blurred_ssim"]
DEBLUR_HEADER = f"{'image':<32} {'PSNR':>7} {'SSIM':>6}   {'blurred PSNR':>12} {'SSIM':>6}"


def deblur_record(name: str, restored, sharp, blurred) -> dict:
    """PSNR / SSIM of ``restored`` and of ``blurred`` against ``sharp`` (uint8 images)."""
    from common.image_io import uint8_to_unit
    from common.metrics import psnr, ssim

    r, s, b = uint8_to_unit(restored), uint8_to_unit(sharp), uint8_to_unit(blurred)
    return {"image": name, "psnr": psnr(r, s), "ssim": ssim(r, s),
            "blurred_psnr": psnr(b, s), "blurred_ssim": ssim(b, s)}


def deblur_row(record: dict) -> str:
    """One line of the printed table (also the mean row)."""
    return (f"{record['image'][:32]:<32} {record['psnr']:7.2f} {record['ssim']:6.3f}   "
            f"{record['blurred_psnr']:12.2f} {record['blurred_ssim']:6.3f}")


def finish_deblur_report(path: Path, records: list[dict]) -> dict:
    """Write the CSV, print the mean row, return the means."""
    means = write_metrics_csv(path, records, DEBLUR_FIELDS)
    print(deblur_row({"image": "mean", **means}))
    return means
