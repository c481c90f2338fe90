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

    The network runs only around the holes (:mod:`glcic_inpaint.regions`): ``tile=None`` in one crop
    when it fits the memory budget, else in tiles; ``tile=N``: output tiles of N x N pixels;
    ``tile=0``: the whole image at once. ``blend="poisson"``: the paper's post-processing."""
    if options:
        raise TypeError(f"glcic_inpaint run(): unknown option(s) {', '.join(options)}")
    if mask is None:
        raise TypeError("glcic_inpaint run(): mask= is required (H, W), 1 = hole")
    return complete(loaded.inference_network(), image, mask, loaded.config, blend, tile=tile)


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
MIN_TILE = 8  # smallest --tile accepted (as common.inference.restore_array)
# Per crop pixel beyond the completion network's activations: the inpainter's image, mask, prepared
# input and composite tensors, and our float32 crop, mask and output copies (bytes).
CROP_BUFFERS = 4 * (3 + 1 + 4 + 3 + 3 + 3 + 1 + 3)


def check_tile(tile: int | None) -> None:
    """A UserError for a --tile that is negative or under :data:`MIN_TILE` (0 = whole image)."""
    from common.errors import UserError

    if tile is not None and (tile < 0 or 0 < tile < MIN_TILE):
        raise UserError(f"--tile {tile}: give at least {MIN_TILE} output pixels, or 0 for the whole image")


def _pad(image: np.ndarray, mask: np.ndarray):
    """The image (any dtype) and the mask (H, W, 1) padded at the bottom / right to a multiple of 4,
    reflected when the image is large enough (else symmetric); padded pixels are known (mask 0)."""
    from common.inference import pad_to_multiple

    height, width = image.shape[:2]
    padded = pad_to_multiple(image, 4)
    m = np.asarray(mask, np.float32).reshape(height, width, 1)
    m = np.pad(m, ((0, padded.shape[0] - height), (0, padded.shape[1] - width), (0, 0)))
    return padded, m


def _network(inpainter):
    """The completion network inside the inpainter (what the memory estimate reads)."""
    import keras

    for layer in inpainter.layers:
        if isinstance(layer, keras.Model):
            return layer
    return inpainter


def _bytes_per_pixel(inpainter) -> float:
    """The inpainter's working memory per crop pixel: the completion network's graph estimate
    (common.tiling, safety factor included) plus :data:`CROP_BUFFERS`."""
    from common.tiling import activation_bytes_per_pixel

    return activation_bytes_per_pixel(_network(inpainter)) + CROP_BUFFERS


def plan_tiles(inpainter, hole: np.ndarray, padded_shape, tile: int | None = None, margin=None):
    """The :class:`~glcic_inpaint.regions.Tile` list for ``hole`` (H, W bool): ``tile=None`` one crop
    around all holes when it fits :func:`common.tiling.memory_budget`, else output tiles of the
    largest side that fits; ``tile=N`` output tiles of N pixels. ``margin`` overrides the receptive
    field ((before rows, cols), (after rows, cols)); only for tests."""
    from common.tiling import PROBE, memory_budget
    from glcic_inpaint import regions

    check_tile(tile)
    field = regions.receptive_field(inpainter)
    tiles = regions.plan(hole, field, padded_shape, tile, margin)
    if tile is None and tiles and tiles[0].crop_pixels > PROBE * PROBE * 16:
        per_pixel = _bytes_per_pixel(inpainter)
        budget = memory_budget()
        if tiles[0].crop_pixels * per_pixel > budget:
            side = regions.tile_for_budget(field, per_pixel, budget)
            tiles = regions.plan(hole, field, padded_shape, side, margin)
    return tiles


def complete_regions(inpainter, image: np.ndarray, mask: np.ndarray, config: Config,
                     tile: int | None = None, margin=None):
    """Yield ``(keep, output)``: the network's float32 output (preset range) over each kept box
    ``(top, left, bottom, right)``; the boxes cover every hole pixel once. ``tile``: as :func:`run`
    (0: one box, the whole image). Each crop runs through a cached graph
    (:func:`common.inference.graph_call`), so activations are freed as it goes."""
    from common.inference import graph_call

    height, width = image.shape[:2]
    padded, m = _pad(np.asarray(image), mask)
    if tile == 0:
        out = graph_call(inpainter, [to_model(padded, config)[None], m[None]])[0]
        yield (0, 0, height, width), out[:height, :width]
        return
    hole = m[:height, :width, 0] > 0.5
    for part in plan_tiles(inpainter, hole, padded.shape[:2], tile, margin):
        top, left, bottom, right = part.crop
        out = graph_call(inpainter, [to_model(padded[top:bottom, left:right], config)[None],
                                     m[None, top:bottom, left:right]])[0]
        k_top, k_left, k_bottom, k_right = part.keep
        yield part.keep, out[k_top - top: k_bottom - top, k_left - left: k_right - left]


def complete(inpainter, image: np.ndarray, mask: np.ndarray, config: Config,
             blend: str | None = None, tile: int | None = None) -> np.ndarray:
    """Complete one uint8 image at its own size; returns uint8 of the same shape.

    The network sees the image reflect-padded (bottom / right) to a multiple of 4 with those pixels
    known, or crops of that padded image around the holes (:func:`complete_regions`; the same
    values inside the holes). ``blend="poisson"``: the paper's post-processing
    (:func:`poisson_blend`). Pixels outside the hole are returned unchanged.
    """
    if blend not in (None, "none", "poisson"):
        raise ValueError(f"blend must be None, 'none' or 'poisson', got {blend!r}")
    height, width = image.shape[:2]
    hole = np.asarray(mask).reshape(height, width) > 0.5
    result = np.array(image, np.uint8, copy=True)
    for (top, left, bottom, right), out in complete_regions(inpainter, image, mask, config, tile):
        inside = hole[top:bottom, left:right]
        result[top:bottom, left:right][inside] = to_uint8(out, config)[inside]
    if blend == "poisson":
        result = poisson_blend(result, mask)
    return result


# Pixels around the holes' bounding box that poisson_blend keeps: fast marching (radius 1) reads
# the hole's neighbours, the Poisson solve only the box (tests/test_glcic_regions.py: equal to the
# whole image's result).
POISSON_MARGIN = 8


def poisson_blend(completed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's post-processing, as the official ``inpaint.lua --postproc``:

    1. ``cv2.inpaint`` (fast marching, Telea, radius 1) fills the hole from its surroundings;
    2. ``cv2.seamlessClone`` (Poisson, NORMAL_CLONE) blends the network's completion into that,
       placed at the centre of the mask's bounding box (so it does not move).

    Both run on a crop: the holes' bounding box plus :data:`POISSON_MARGIN` pixels (the same
    result as the whole image, less memory on a large photo). uint8 in, uint8 out; pixels outside
    the hole are returned unchanged.
    """
    from glcic_inpaint.regions import bbox

    image = np.ascontiguousarray(completed, np.uint8)
    hole = np.asarray(mask).reshape(image.shape[:2]) > 0.5
    box = bbox(hole)
    if box is None:
        return image.copy()
    top, left = max(0, box[0] - POISSON_MARGIN), max(0, box[1] - POISSON_MARGIN)
    bottom, right = box[2] + POISSON_MARGIN, box[3] + POISSON_MARGIN
    out = image.copy()
    out[top:bottom, left:right] = _poisson_whole(image[top:bottom, left:right], hole[top:bottom, left:right])
    return out


def _poisson_whole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """:func:`poisson_blend` on the whole of ``image`` (uint8) with ``hole`` (H, W bool).

    Holes touching the border are handled by blending on a reflect-padded copy (OpenCV's
    seamlessClone needs the region strictly inside the image)."""
    import cv2

    from glcic_inpaint.masks import mask_bbox_centre

    image = np.ascontiguousarray(image, np.uint8)
    hole = hole.astype(np.uint8) * 255
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
