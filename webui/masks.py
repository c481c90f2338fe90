"""GLCIC's hole: painted on the photo in the page's editor, or an uploaded mask (white = hole)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError


def _rgba(layer) -> np.ndarray:
    if isinstance(layer, (str, Path)):
        with Image.open(layer) as image:
            return np.asarray(image.convert("RGBA"))
    array = np.asarray(layer)
    if array.ndim == 3 and array.shape[2] == 4:
        return array
    raise ValueError(f"an editor layer must be RGBA, got shape {array.shape}")


def painted_mask(layers, shape) -> np.ndarray | None:
    """(H, W) float32 mask, 1 where any brush layer is painted (alpha > 0); None when nothing is.

    ``layers``: the editor's layers (file paths or RGBA arrays), resized (nearest) to ``shape``
    (the photo's height and width) if the editor's canvas differs.
    """
    height, width = shape[:2]
    mask = np.zeros((height, width), bool)
    for layer in layers or []:
        alpha = _rgba(layer)[..., 3] > 0
        if alpha.shape != (height, width):
            alpha = np.asarray(Image.fromarray(alpha).resize((width, height), Image.NEAREST))
        mask |= alpha
    return mask.astype(np.float32) if mask.any() else None


def uploaded_mask(path, shape) -> np.ndarray:
    """(H, W) float32 mask from a mask file of the photo's size (glcic_inpaint.masks.load_mask)."""
    from glcic_inpaint.masks import load_mask

    return load_mask(path, shape[:2])[..., 0]


def editor_parts(value) -> tuple:
    """``(photo, layers)`` from the ImageEditor's value (a dict, or an EditorValue)."""
    if value is None:
        return None, []
    get = value.get if isinstance(value, dict) else (lambda key: getattr(value, key, None))
    return get("background"), list(get("layers") or [])


def choose_mask(layers, mask_file, shape) -> np.ndarray:
    """The uploaded mask when there is one, else the painted layers; neither is a UserError."""
    if mask_file:
        return uploaded_mask(mask_file, shape)
    mask = painted_mask(layers, shape)
    if mask is None:
        raise UserError("no hole: paint over the part to fill with the brush, or upload a mask "
                        "(white = hole, the photo's size)")
    return mask
