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
