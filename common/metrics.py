"""Image quality metrics (NumPy, built on ``skimage.metrics``).

Every function takes two images of the same shape:

* float arrays with values in [0, 1] (the data range is taken as 1), or
* ``uint8`` arrays (divided by 255 first),

shaped ``(H, W, 3)`` (RGB), ``(H, W, C)`` or ``(H, W)`` (grayscale).

Two protocols are provided:

* :func:`psnr` / :func:`ssim` on all channels (what DeblurGAN and the deblurring papers report
  on GoPro).  :func:`ssim` uses scikit-image's defaults (uniform 7x7 window, sample covariance),
  per channel and averaged.
* :func:`psnr_y` / :func:`ssim_y` on the BT.601 luma channel with ``border`` pixels cropped from
  every side: the super-resolution protocol (SRGAN, Ledig et al. 2017, Sec. 3.1: PSNR and SSIM
  on the Y channel with a 4-pixel strip removed from each border, i.e. ``border = scale``).
  :func:`ssim_y` follows the MATLAB ``ssim`` of Wang et al. 2004 as the SR evaluation scripts use
  it: gaussian window with sigma 1.5, population (not sample) covariance, data range 1 (the same
  as 255 on 8-bit values).  Y is kept as a float (not rounded to 8 bits as MATLAB's
  ``rgb2ycbcr`` on uint8 would do); the difference is typically a few hundredths of a dB.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "psnr_y",
    "ssim_y",
    "mean_metrics",
]

# Values a little outside [0, 1] (float rounding of a model output) are tolerated; anything
# further out is almost certainly a [-1, 1] or [0, 255] image passed by mistake.
_RANGE_TOLERANCE = 1e-3

# ITU-R BT.601 luma for RGB in [0, 1], as MATLAB's rgb2ycbcr (the SR papers' evaluation code):
# Y = 16 + (65.481 R + 128.553 G + 24.966 B) on the 0..255 scale.
_Y_OFFSET = 16.0 / 255.0
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0

# skimage's smallest SSIM window (7x7).
_SSIM_MIN_SIDE = 7


def _as_unit_float(img, name: str = "image") -> np.ndarray:
    """Return ``img`` as float64 in [0, 1] (uint8 is divided by 255)."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"{name}: dtype {arr.dtype} is not supported; pass uint8 or float in [0, 1]"
        )
    arr = arr.astype(np.float64)
    if arr.size:
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{name}: contains NaN or infinite values")
        if lo < -_RANGE_TOLERANCE or hi > 1.0 + _RANGE_TOLERANCE:
            raise ValueError(
                f"{name}: float values span [{lo:.3g}, {hi:.3g}], expected [0, 1]; convert "
                "[-1, 1] images with common.image_io.signed_to_unit or pass uint8"
            )
    return arr


def _check_image_shape(arr: np.ndarray, name: str) -> None:
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name}: expected an image shaped (H, W) or (H, W, C), got {arr.shape}")


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float [0, 1], checked to have the same image shape."""
    a = _as_unit_float(a, "first image")
    b = _as_unit_float(b, "second image")
    _check_image_shape(a, "first image")
    _check_image_shape(b, "second image")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}; compare images of the same size")
    return a, b


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    # Identical images: PSNR is +inf; skimage would also warn about the division by zero.
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def _check_ssim_size(a: np.ndarray) -> None:
    if min(a.shape[0], a.shape[1]) < _SSIM_MIN_SIDE:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_MIN_SIDE}x{_SSIM_MIN_SIDE} pixels, "
            f"got {a.shape[0]}x{a.shape[1]} (after any border crop)"
        )


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (data range 1).

    Returns ``inf`` for identical images. Raises ``ValueError`` when the shapes differ.
    """
    a, b = _pair(a, b)
    return _psnr(a, b)


def ssim(a, b) -> float:
    """Structural similarity (skimage defaults: 7x7 uniform window, data range 1).

    Colour images are compared per channel (``channel_axis=-1``) and the channel means averaged;
    2-D images are compared directly. Raises ``ValueError`` when the shapes differ.
    """
    a, b = _pair(a, b)
    _check_ssim_size(a)
    channel_axis = -1 if a.ndim == 3 else None
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=channel_axis))


def rgb_to_y(img) -> np.ndarray:
    """BT.601 luma of an RGB image, float in [16/255, 235/255] (MATLAB ``rgb2ycbcr`` / 255).

    ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 1].
    ``img`` is float in [0, 1] or uint8, shaped ``(..., 3)``; a grayscale image ``(H, W)`` or
    ``(H, W, 1)`` is treated as R = G = B (``Y = 16/255 + 219/255 * gray``). Returns ``(H, W)``.
    """
    arr = _as_unit_float(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim < 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"rgb_to_y: expected (H, W, 3), (H, W, 1) or (H, W), got {np.shape(img)}")
    if arr.shape[-1] == 1:
        return _Y_OFFSET + float(_Y_WEIGHTS.sum()) * arr[..., 0]
    return _Y_OFFSET + arr @ _Y_WEIGHTS


def _crop_border(y: np.ndarray, border: int) -> np.ndarray:
    if border != int(border) or border < 0:
        raise ValueError(f"border must be a non-negative integer, got {border!r}")
    border = int(border)
    if border == 0:
        return y
    h, w = y.shape[:2]
    if 2 * border >= h or 2 * border >= w:
        raise ValueError(f"border {border} leaves nothing of a {h}x{w} image; use a smaller border")
    return y[border:h - border, border:w - border]


def _y_pair(a, b, border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _pair(a, b)
    return _crop_border(rgb_to_y(a), border), _crop_border(rgb_to_y(b), border)


def psnr_y(a, b, border: int = 0) -> float:
    """PSNR (dB) on the BT.601 Y channel after removing ``border`` pixels on each side.

    The super-resolution protocol (SRGAN Sec. 3.1 crops ``border = scale`` = 4 pixels).
    """
    ya, yb = _y_pair(a, b, border)
    return _psnr(ya, yb)


def ssim_y(a, b, border: int = 0) -> float:
    """SSIM on the BT.601 Y channel after removing ``border`` pixels on each side.

    Uses the common SR evaluation settings (Wang et al. 2004 / MATLAB ``ssim``):
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``.
    """
    ya, yb = _y_pair(a, b, border)
    _check_ssim_size(ya)
    return float(
        structural_similarity(
            ya,
            yb,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def mean_metrics(records: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average a list of ``{"psnr": ..., "ssim": ...}`` dicts key by key.

    Keys missing from some records are averaged over the records that have them. Non-numeric
    values (e.g. file names) are ignored. An empty list gives ``{}``.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for record in records:
        for key, value in record.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}
