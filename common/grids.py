"""Result grids: rows of images with column titles and per-image captions, saved as PNG.

Drawn with matplotlib's object-oriented API on an Agg canvas (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``): nothing touches pyplot's global figure list or the user's backend, no
window opens, and each figure is released when :func:`save_grid` returns, so calling it every
few steps in a training loop does not leak memory.

Layout is computed in pixels so that images appear at (roughly) their native resolution: each
column is as wide as its widest image (or its title/captions), each row as tall as its tallest
image; smaller images are centred in their cell, never stretched. Very large grids are scaled
down so that the image area stays within ``max_size`` pixels; very small images (e.g. 32x32
test crops) are enlarged by an integer factor, drawn with nearest-neighbour interpolation, so
that captions fit under them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["save_grid", "metric_caption"]

# Layout constants, in output pixels.
_MARGIN = 10  # around the whole figure
_GAP = 8  # between cells
_TEXT_PAD = 4  # between an image and its caption / title
_FONT_PX = 14  # caption and column-title height (one line)
_TITLE_FONT_PX = 18
_CHAR_W = 0.6  # average glyph width as a fraction of the font size (DejaVu Sans)
_MIN_CELL = 96  # images narrower than this are enlarged by an integer factor (nearest)


def metric_caption(psnr: float, ssim: float | None = None) -> str:
    """``"PSNR 26.41 dB / SSIM 0.812"`` (or ``"PSNR 26.41 dB"`` without an SSIM)."""
    text = f"PSNR {float(psnr):.2f} dB"
    if ssim is not None:
        text += f" / SSIM {float(ssim):.3f}"
    return text


def _prepare(image, where: str) -> np.ndarray | None:
    """An image as something ``imshow`` draws faithfully: uint8 or float clipped to [0, 1]."""
    if image is None:
        return None
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"{where}: expected an image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{where}: empty image {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    raise ValueError(f"{where}: dtype {arr.dtype} is not supported; pass uint8 or float in [0, 1]")


def _lines(text) -> int:
    return 0 if not text else str(text).count("\n") + 1


def _text_width(text, font_px: float) -> float:
    if not text:
        return 0.0
    return max(len(line) for line in str(text).split("\n")) * font_px * _CHAR_W


def save_grid(
    path,
    rows: Sequence[Sequence],
    columns: Sequence[str] | None,
    captions: Sequence[Sequence[str | None]] | None = None,
    title: str | None = None,
    dpi: int = 100,
    max_size: int = 3000,
) -> Path:
    """Write a PNG grid of images and return its path.

    Args:
        path: output file (``.png``); parent folders are created.
        rows: list of rows, each a list of images (uint8, or float in [0, 1] which is clipped),
            shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Sizes may differ. ``None`` leaves
            a cell empty. Every row has the same number of cells.
        columns: one title per column, drawn above the first row (``None`` or ``""`` for none).
        captions: ``captions[i][j]`` is drawn under ``rows[i][j]`` (``None`` for none); may be
            ``None`` altogether. Multi-line captions are allowed.
        title: optional figure title.
        dpi: dots per inch stored in the PNG. The image pixels are drawn at native size whatever
            the dpi; text sizes are fixed in pixels too.
        max_size: the image area (without text) is scaled down to fit ``max_size`` pixels in
            width and height.
    """
    rows = [list(row) for row in rows]
    if not rows or not rows[0]:
        raise ValueError("save_grid: rows must be a non-empty list of non-empty lists of images")
    n_cols = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != n_cols:
            raise ValueError(f"save_grid: row {i} has {len(row)} images, row 0 has {n_cols}")
    if columns is not None:
        columns = list(columns)
        if len(columns) != n_cols:
            raise ValueError(f"save_grid: {len(columns)} column titles for {n_cols} columns")
    else:
        columns = [None] * n_cols
    if captions is not None:
        captions = [list(c) if c is not None else [None] * n_cols for c in captions]
        if len(captions) != len(rows) or any(len(c) != n_cols for c in captions):
            raise ValueError("save_grid: captions must have the same shape as rows (use None for no caption)")
    else:
        captions = [[None] * n_cols for _ in rows]

    images = [[_prepare(img, f"save_grid: rows[{i}][{j}]") for j, img in enumerate(row)] for i, row in enumerate(rows)]
    if all(img is None for row in images for img in row):
        raise ValueError("save_grid: every cell is None; pass at least one image")

    # Native image-area size of each column / row.
    col_px = [max((row[j].shape[1] for row in images if row[j] is not None), default=0) for j in range(n_cols)]
    row_px = [max((img.shape[0] for img in row if img is not None), default=0) for row in images]

    # Scale: enlarge tiny images by an integer factor, shrink huge grids to max_size.
    smallest = min(w for w in col_px if w > 0)
    scale = float(max(1, math.ceil(_MIN_CELL / smallest))) if smallest < _MIN_CELL else 1.0
    total_w, total_h = sum(col_px) * scale, sum(row_px) * scale
    scale = min(scale, max_size / max(total_w, 1.0), max_size / max(total_h, 1.0))
    interpolation = "nearest" if scale >= 1.0 else "antialiased"

    # Cell sizes in output pixels, including the text bands.
    line_px = _FONT_PX * 1.3
    header_px = max(_lines(c) for c in columns) * line_px
    header_px = header_px + _TEXT_PAD if header_px else 0.0
    title_px = _lines(title) * _TITLE_FONT_PX * 1.3
    title_px = title_px + _TEXT_PAD if title_px else 0.0
    cap_px = [max(_lines(c) for c in caps) * line_px for caps in captions]
    cap_px = [c + _TEXT_PAD if c else 0.0 for c in cap_px]
    cell_w = []
    for j in range(n_cols):
        text_w = max([_text_width(columns[j], _FONT_PX)] + [_text_width(caps[j], _FONT_PX) for caps in captions])
        cell_w.append(max(col_px[j] * scale, text_w, 1.0))
    cell_h = [max(h * scale, 1.0) for h in row_px]

    fig_w = 2 * _MARGIN + sum(cell_w) + _GAP * (n_cols - 1)
    fig_h = (
        2 * _MARGIN + title_px + header_px
        + sum(cell_h) + sum(cap_px) + _GAP * (len(rows) - 1)
    )
    fig_w, fig_h = math.ceil(fig_w), math.ceil(fig_h)

    fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    pt = 72.0 / dpi  # points per output pixel

    def box(x, y, w, h):
        """Axes rectangle from pixel coordinates measured from the top-left corner."""
        return [x / fig_w, 1.0 - (y + h) / fig_h, w / fig_w, h / fig_h]

    if title:
        fig.text(0.5, 1.0 - _MARGIN / fig_h, str(title), ha="center", va="top",
                 fontsize=_TITLE_FONT_PX * pt, fontweight="bold")

    x_left = [_MARGIN + sum(cell_w[:j]) + _GAP * j for j in range(n_cols)]
    y = _MARGIN + title_px
    for j, name in enumerate(columns):
        if name:
            fig.text((x_left[j] + cell_w[j] / 2) / fig_w, 1.0 - (y + header_px - _TEXT_PAD) / fig_h,
                     str(name), ha="center", va="bottom", fontsize=_FONT_PX * pt)
    y += header_px

    for i, row in enumerate(images):
        for j, img in enumerate(row):
            if img is not None:
                h, w = img.shape[0] * scale, img.shape[1] * scale
                x0 = x_left[j] + (cell_w[j] - w) / 2
                y0 = y + (cell_h[i] - h) / 2
                ax = fig.add_axes(box(x0, y0, w, h))
                ax.set_axis_off()
                if img.ndim == 2:
                    vmax = 255 if img.dtype == np.uint8 else 1.0
                    ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation=interpolation, aspect="auto")
                else:
                    ax.imshow(img, interpolation=interpolation, aspect="auto")
            caption = captions[i][j]
            if caption:
                fig.text((x_left[j] + cell_w[j] / 2) / fig_w, 1.0 - (y + cell_h[i] + _TEXT_PAD) / fig_h,
                         str(caption), ha="center", va="top", fontsize=_FONT_PX * pt, linespacing=1.2)
        y += cell_h[i] + cap_px[i] + _GAP

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white", format="png")
    fig.clear()
    return path
