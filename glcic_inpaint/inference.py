"""Loading any accepted GLCIC weights, completing images, Poisson post-processing, hole metrics.

    loaded = load("completionnet_places2.t7")      # the official Torch7 model, detected
    loaded = load("runs/glcic_inpaint/paper")
    completed = run(loaded, image_uint8, mask=mask, blend="poisson")

Images here are uint8 ``(H, W, 3)``; masks are ``(H, W)`` or ``(H, W, 1)`` with 1 = hole (see
masks.py). :func:`load` accepts None (the newest run in runs/glcic_inpaint), a run directory, our
``.weights.h5`` / ``.keras`` with the run's config.json next to it (the mean colour that fills the
holes is part of the model), a file written by ``python -m glcic_inpaint.convert``, and the official
``.t7`` files (:mod:`glcic_inpaint.convert`).
"""

from __future__ import annotations

import os

import numpy as np

from common.weights import Loaded, check_preset, describe, from_upstream, locate, own_origin
from glcic_inpaint.config import Config

FAMILY = "glcic_inpaint"


# ----------------------------------------------------------------------------- loading
def load(weights: str | os.PathLike | None = None, preset: str | None = None, *, source: str = "auto",
         **overrides) -> Loaded:
    """The inpainter ``[image, mask] -> completed`` of ``weights`` as a :class:`~common.weights.Loaded`.

    ``preset`` is only checked against the run or the file (a contradiction is a UserError naming
    both): a GLCIC model needs its recorded mean colour, so a bare weights file is refused.
    """
    from common.errors import UserError
    from glcic_inpaint.config import get_config
    from glcic_inpaint.model import build_completion_network, build_inpainter

    overrides = {k: v for k, v in overrides.items() if v is not None}
    run_dir, path, kind, recorded = locate(FAMILY, weights, source)
    if kind != "own":
        from glcic_inpaint.convert import load_upstream

        return from_upstream(path, kind, preset, overrides, overrides, load_upstream)
    if not recorded:
        raise UserError(f"{path}: no config.json next to it; pass the run directory "
                        "(runs/glcic_inpaint/<name>) with --weights, or a file written by "
                        "python -m glcic_inpaint.convert")
    check_preset(path, recorded.get("preset", "paper"), preset, f"a {recorded.get('preset')} run")
    config = get_config(recorded.get("preset"), **{k: v for k, v in recorded.items() if k != "preset"},
                        **overrides)
    inpainter = build_inpainter(build_completion_network(config), config, config.mean_color)
    origin = own_origin(inpainter, path, run_dir)
    return Loaded(inpainter, config, run_dir, describe(path, f"{origin}, preset {config.preset}"))


def run(loaded: Loaded, image: np.ndarray, *, tile: int | None = None, mask: np.ndarray | None = None,
        blend: str | None = None, **options) -> np.ndarray:
    """Complete the holes (``mask`` (H, W), 1 = hole) of a uint8 image at its own size; uint8 out.
    ``blend="poisson"``: the paper's post-processing. GLCIC has no tiling (it needs the whole context)."""
    from common.errors import UserError

    if options:
        raise TypeError(f"glcic_inpaint run(): unknown option(s) {', '.join(options)}")
    if mask is None:
        raise TypeError("glcic_inpaint run(): mask= is required (H, W), 1 = hole")
    if tile:
        raise UserError("--tile: GLCIC completes each image whole (its global discriminator and "
                        "dilated convs need the whole context); drop --tile")
    return complete(loaded.model, image, mask, loaded.config, blend)


def load_from_args(args) -> Loaded:
    """:func:`load` from --weights / --preset; prints the one ``weights:`` line."""
    import sys

    loaded = load(args.weights, getattr(args, "preset", None))
    print(loaded.description, file=sys.stderr)
    return loaded


def add_model_flags(p):
    """--preset of test.py and predict.py: only checked against the run or file."""
    from glcic_inpaint.config import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="only a check: an error when the run or file is of another preset "
                        "(the architecture is read from the run's config.json or detected from the file)")
    return p


# ----------------------------------------------------------------------------- value ranges, test crops
def to_model(image_uint8: np.ndarray, config: Config) -> np.ndarray:
    """uint8 -> float32 in the preset's range."""
    x = np.asarray(image_uint8, np.float32) / 255.0
    return x * 2.0 - 1.0 if config.value_range == "signed" else x


def to_unit(x: np.ndarray, config: Config) -> np.ndarray:
    """The preset's range -> float32 [0, 1] (clipped)."""
    x = np.asarray(x, np.float32)
    if config.value_range == "signed":
        x = (x + 1.0) / 2.0
    return np.clip(x, 0.0, 1.0)


def to_uint8(x: np.ndarray, config: Config) -> np.ndarray:
    return np.round(to_unit(x, config) * 255.0).astype(np.uint8)


def fit_square(image: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Resize so the short side is ``size`` (bicubic; nearest for masks), then crop the centre
    ``size`` x ``size``: the test-time counterpart of the training crops."""
    from PIL import Image

    array = np.asarray(image)
    squeeze = array.ndim == 3 and array.shape[-1] == 1
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    pil = Image.fromarray(array[..., 0] if squeeze else array)
    width, height = pil.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        pil = pil.resize((new_w, new_h), Image.NEAREST if nearest else Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    out = np.asarray(pil.crop((left, top, left + size, top + size)))
    if squeeze:
        return (out > 127).astype(np.float32)[..., None]
    return out


# ----------------------------------------------------------------------------- completion
def complete(inpainter, image: np.ndarray, mask: np.ndarray, config: Config,
             blend: str | None = None) -> np.ndarray:
    """Complete one uint8 image at its own size; returns uint8 of the same shape.

    The image is reflect-padded (bottom / right) to a multiple of 4 with those pixels known; the
    padding is cropped off. ``blend="poisson"``: the paper's post-processing (:func:`poisson_blend`).
    Pixels outside the hole are returned unchanged.
    """
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % 4, (-width) % 4
    x = to_model(image, config)
    m = np.asarray(mask, np.float32).reshape(height, width, 1)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
        x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
        m = np.pad(m, ((0, pad_h), (0, pad_w), (0, 0)))
    out = np.asarray(inpainter([x[None], m[None]], training=False))[0, :height, :width]
    result = to_uint8(out, config)
    hole = np.asarray(mask).reshape(height, width) > 0.5
    result[~hole] = image[~hole]
    if blend == "poisson":
        result = poisson_blend(result, mask)
    elif blend not in (None, "none"):
        raise ValueError(f"blend must be None, 'none' or 'poisson', got {blend!r}")
    return result


def poisson_blend(completed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's post-processing, as the official ``inpaint.lua --postproc``:

    1. ``cv2.inpaint`` (fast marching, Telea, radius 1) fills the hole from its surroundings;
    2. ``cv2.seamlessClone`` (Poisson, NORMAL_CLONE) blends the network's completion into that,
       placed at the centre of the mask's bounding box (so it does not move).

    Holes touching the border are handled by blending on a reflect-padded copy (OpenCV's
    seamlessClone needs the region strictly inside the image). uint8 in, uint8 out; pixels
    outside the hole are returned unchanged.
    """
    import cv2

    from glcic_inpaint.masks import mask_bbox_centre

    image = np.ascontiguousarray(completed, np.uint8)
    hole = (np.asarray(mask).reshape(image.shape[:2]) > 0.5).astype(np.uint8) * 255
    if not hole.any():
        return image.copy()
    pad = 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    hole_p = cv2.copyMakeBorder(hole, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    filled = cv2.inpaint(padded, hole_p, 1, cv2.INPAINT_TELEA)
    centre = mask_bbox_centre(hole_p)
    # seamlessClone writes into its mask argument (OpenCV 5): give it a private copy
    blended = cv2.seamlessClone(padded, filled, hole_p.copy(), centre, cv2.NORMAL_CLONE)
    out = blended[pad:-pad, pad:-pad].copy()
    keep = hole == 0
    out[keep] = image[keep]
    return out


def mean_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Baseline: every hole pixel set to the mean colour of the image's known pixels (uint8)."""
    hole = np.asarray(mask).reshape(image.shape[:2]) > 0.5
    out = image.copy()
    known = image[~hole]
    colour = known.mean(axis=0) if known.size else np.full(3, 127.5)
    out[hole] = np.round(colour).astype(np.uint8)
    return out


def masked_display(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The input as shown in grids: holes painted white (tadax test.py)."""
    out = image.copy()
    out[np.asarray(mask).reshape(image.shape[:2]) > 0.5] = 255
    return out


# ----------------------------------------------------------------------------- metrics
def hole_psnr(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, data range 1) over the hole pixels only; inf when they are identical."""
    hole = np.asarray(mask).reshape(target.shape[:2]) > 0.5
    if not hole.any():
        return float("nan")
    diff = result[hole].astype(np.float64) / 255.0 - target[hole].astype(np.float64) / 255.0
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def hole_ssim(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the SSIM map (scikit-image defaults, as common.metrics.ssim) over the hole."""
    from skimage.metrics import structural_similarity

    hole = np.asarray(mask).reshape(target.shape[:2]) > 0.5
    if not hole.any():
        return float("nan")
    _, ssim_map = structural_similarity(
        result.astype(np.float64) / 255.0, target.astype(np.float64) / 255.0,
        data_range=1.0, channel_axis=-1, full=True,
    )
    return float(ssim_map[hole].mean())
