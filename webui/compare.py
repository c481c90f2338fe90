"""PSNR / SSIM against the user's reference (common.metrics: RGB, data range 1), and the table
of timings and scores shown under the result."""

from __future__ import annotations

import math
import re

import numpy as np

from common import metrics


def scores(image: np.ndarray, reference: np.ndarray) -> tuple[float, float | None]:
    """``(psnr, ssim)`` of ``image`` against ``reference``; SSIM is None below its 7 px window."""
    value = metrics.psnr(image, reference)
    try:
        return value, metrics.ssim(image, reference)
    except ValueError:  # smaller than the SSIM window
        return value, None


def size_problem(name: str, reference_name: str, reference_shape, result_shape) -> str | None:
    """The one line that says a reference cannot be compared (None when the sizes match)."""
    if tuple(reference_shape[:2]) == tuple(result_shape[:2]):
        return None
    (rh, rw), (h, w) = reference_shape[:2], result_shape[:2]
    return (f"error: {reference_name}: the reference is {rw}x{rh} but the result of {name} is "
            f"{w}x{h}; upload the original of this photo at the result's size to get PSNR / SSIM")


def code_line(text: str) -> str:
    """``text`` as one Markdown code span (fenced with more backticks than it contains)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _number(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}{unit}"


def table(rows: list[dict], baseline_label: str) -> str:
    """A Markdown table: per photo, its size, the time the model took, and (where a reference was
    given) PSNR / SSIM of the result and of the baseline.

    ``rows``: dicts with ``name``, ``size`` ((W, H) of the result), ``seconds`` and optionally
    ``result`` / ``baseline`` score pairs.
    """
    if not rows:
        return ""
    scored = any("result" in row for row in rows)
    header = ["Photo", "Size", "Time"]
    if scored:
        header += ["PSNR dB", f"PSNR {baseline_label}", "SSIM", f"SSIM {baseline_label}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["name"].replace("|", "\\|"), f"{row['size'][0]}x{row['size'][1]}",
                 _number(row["seconds"], " s")]
        if scored:
            result, baseline = row.get("result", (None, None)), row.get("baseline", (None, None))
            cells += [_number(result[0]), _number(baseline[0]),
                      _number(result[1], digits=4), _number(baseline[1], digits=4)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
