"""Hole masks for GLCIC: random rectangles per preset, local-patch placement, user mask files.

A mask is float32 ``(batch, height, width, 1)`` (or ``(height, width, 1)`` for one image) with
1 = hole (pixel to complete) and 0 = known pixel, the convention of the paper's ``M_c``.

Random holes are drawn with TensorFlow's stateless random ops, so the same ``seed`` (two ints)
gives the same masks on every device, inside ``tf.function`` and eagerly (``.numpy()``).
All ranges are inclusive: a hole side is one of ``hole_min, ..., hole_max`` and a hole lies
inside the image and inside its local patch, touching either edge with the same probability as
any other position. (tadax's get_points() draws 25..49 px for [24, 48]; that is not reproduced.)

Placements (``placement``):

- ``"centred"`` (paper, context discriminators): the first hole is anywhere in the image and
  the local patch is centred on it, clamped to the image; further holes lie inside that patch.
- ``"random"`` (tadax get_points()): the local patch is placed uniformly first, every hole inside it.
- ``"anywhere"`` (official inpaint.lua without a mask: 2-4 holes of 32-128 px): every hole
  anywhere in the image; the patch is centred on the first hole. For inference only: later holes
  may fall outside the patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.errors import UserError

PLACEMENTS = ("centred", "random", "anywhere")


@dataclass(frozen=True)
class HoleSpec:
    """Where and how large random holes are. Sizes in pixels, ranges inclusive."""

    image_size: tuple[int, int]  # (height, width)
    local_size: int
    hole_min: int
    hole_max: int
    holes: tuple[int, int] = (1, 1)
    placement: str = "centred"

    def __post_init__(self):
        height, width = self.image_size
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if not 0 < self.local_size <= min(height, width):
            raise ValueError(f"local_size {self.local_size} does not fit in {self.image_size}")
        limit = min(height, width) if self.placement == "anywhere" else self.local_size
        if not 1 <= self.hole_min <= self.hole_max <= limit:
            raise ValueError(
                f"hole sides [{self.hole_min}, {self.hole_max}] must lie in [1, {limit}]"
            )
        if not 1 <= self.holes[0] <= self.holes[1]:
            raise ValueError(f"holes must be (lo, hi) with 1 <= lo <= hi, got {self.holes}")


def hole_spec(config, image_size=None) -> HoleSpec:
    """The training hole distribution of a :class:`glcic_inpaint.config.Config`."""
    size = config.image_size if image_size is None else image_size
    if isinstance(size, int):
        size = (size, size)
    return HoleSpec(
        image_size=(int(size[0]), int(size[1])),
        local_size=config.local_size,
        hole_min=config.hole_min,
        hole_max=config.hole_max,
        holes=tuple(config.holes),
        placement=config.local_placement,
    )


@dataclass
class HoleBatch:
    """Random holes for a batch. Tensors; call ``.numpy()`` on them for numpy arrays."""

    masks: tf.Tensor  # float32 (B, H, W, 1), 1 = hole
    corners: tf.Tensor  # int32 (B, 2): (top, left) of the local patch
    boxes: tf.Tensor  # int32 (B, N, 4): (top, left, height, width) of each hole slot
    valid: tf.Tensor  # bool (B, N): which slots are holes (the count is random in `holes`)


def _randint(seed, low, high, shape):
    """Uniform integers in [low, high] (both inclusive, int32 tensors broadcast to ``shape``)."""
    low = tf.cast(tf.broadcast_to(low, shape), tf.int32)
    high = tf.cast(tf.broadcast_to(high, shape), tf.int32)
    count = tf.cast(high - low + 1, tf.float64)
    u = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float64)
    offset = tf.minimum(tf.floor(u * count), count - 1.0)  # guard u * count rounding up to count
    return low + tf.cast(offset, tf.int32)


def sample_holes(batch_size: int, spec: HoleSpec, seed) -> HoleBatch:
    """Draw random rectangular holes and the local patch of each image.

    ``seed``: two integers (a Python pair or an int32/int64 tensor of shape [2]), e.g.
    ``(config.seed, step)``.
    """
    height, width = spec.image_size
    size = spec.local_size
    n = spec.holes[1]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, num=8)
    shape = (batch_size, n)
    hole_h = _randint(seeds[0], spec.hole_min, spec.hole_max, shape)
    hole_w = _randint(seeds[1], spec.hole_min, spec.hole_max, shape)
    count = _randint(seeds[2], spec.holes[0], spec.holes[1], (batch_size, 1))
    valid = tf.range(n)[None, :] < count

    if spec.placement == "random":
        top = _randint(seeds[3], 0, height - size, (batch_size,))
        left = _randint(seeds[4], 0, width - size, (batch_size,))
        corners = tf.stack([top, left], axis=1)
        hole_y = top[:, None] + _randint(seeds[5], 0, size - hole_h, shape)
        hole_x = left[:, None] + _randint(seeds[6], 0, size - hole_w, shape)
    else:
        # the first hole (or, "anywhere", every hole) uniformly inside the image
        any_y = _randint(seeds[3], 0, height - hole_h, shape)
        any_x = _randint(seeds[4], 0, width - hole_w, shape)
        # patch centred on the first hole; floor division keeps the hole inside it (h <= size)
        top = tf.clip_by_value(any_y[:, 0] + (hole_h[:, 0] - size) // 2, 0, height - size)
        left = tf.clip_by_value(any_x[:, 0] + (hole_w[:, 0] - size) // 2, 0, width - size)
        corners = tf.stack([top, left], axis=1)
        if spec.placement == "anywhere":
            hole_y, hole_x = any_y, any_x
        else:
            in_y = top[:, None] + _randint(seeds[5], 0, size - hole_h, shape)
            in_x = left[:, None] + _randint(seeds[6], 0, size - hole_w, shape)
            first = tf.range(n)[None, :] == 0
            hole_y = tf.where(first, any_y, in_y)
            hole_x = tf.where(first, any_x, in_x)

    boxes = tf.stack([hole_y, hole_x, hole_h, hole_w], axis=-1)
    masks = boxes_to_masks(boxes, valid, (height, width))
    return HoleBatch(masks=masks, corners=corners, boxes=boxes, valid=valid)


def boxes_to_masks(boxes, valid, image_size) -> tf.Tensor:
    """Rasterise (top, left, height, width) boxes ``(B, N, 4)`` into float32 masks (B, H, W, 1)."""
    height, width = image_size
    boxes = tf.cast(boxes, tf.int32)
    top, left, box_h, box_w = tf.unstack(boxes, axis=-1)
    rows = tf.range(height)[None, None, :]
    cols = tf.range(width)[None, None, :]
    in_rows = (rows >= top[..., None]) & (rows < (top + box_h)[..., None])  # (B, N, H)
    in_cols = (cols >= left[..., None]) & (cols < (left + box_w)[..., None])  # (B, N, W)
    in_rows &= tf.convert_to_tensor(valid)[..., None]
    # any over N of in_rows[h] & in_cols[w]: a product of counts
    hits = tf.einsum("bnh,bnw->bhw", tf.cast(in_rows, tf.float32), tf.cast(in_cols, tf.float32))
    return tf.cast(hits > 0, tf.float32)[..., None]


def crop_patches(images, corners, size: int) -> tf.Tensor:
    """``images[b, top:top + size, left:left + size]`` for each image (differentiable)."""
    corners = tf.cast(corners, tf.int32)
    offsets = tf.range(size)[None, :]
    rows = corners[:, 0:1] + offsets  # (B, size)
    cols = corners[:, 1:2] + offsets
    patches = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(patches, cols, axis=2, batch_dims=1)


def random_corners(batch_size: int, spec: HoleSpec, seed) -> tf.Tensor:
    """Local patch corners for real images: the patch of an independent random mask (paper's M_d)."""
    return sample_holes(batch_size, spec, seed).corners


# ------------------------------------------------------------------------------------ files


def load_mask(path, shape=None) -> np.ndarray:
    """Read a mask image: white (> 127 in grey) = hole. Returns float32 (H, W, 1) of 0 / 1.

    ``shape``: the (height, width) the mask must have (that of its image); a mismatch is a
    :class:`UserError` naming both sizes.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: mask file not found; give a PNG with white = hole")
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))  # alpha, if any, is ignored
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: cannot read the mask ({error}); give a PNG, white = hole") from None
    if shape is not None and tuple(grey.shape) != tuple(shape[:2]):
        raise UserError(
            f"{path}: mask is {grey.shape[1]}x{grey.shape[0]} (WxH) but its image is "
            f"{shape[1]}x{shape[0]}; give a mask of the image's size"
        )
    return (grey > 127).astype(np.float32)[..., None]


def save_mask(path, mask) -> Path:
    """Write a (H, W) or (H, W, 1) mask as a PNG, white = hole. Makes parent folders."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(mask)
    if array.ndim == 3:
        array = array[..., 0]
    Image.fromarray(np.where(array > 0.5, 255, 0).astype(np.uint8)).save(path)
    return path


def mask_bbox_centre(mask) -> tuple[int, int] | None:
    """(x, y) centre of the bounding box of the hole pixels (OpenCV's point order), or None."""
    from glcic_inpaint.regions import bbox

    array = np.asarray(mask)
    if array.ndim == 3:
        array = array[..., 0]
    box = bbox(array > 0.5)
    if box is None:
        return None
    top, left, bottom, right = box
    return ((left + right) // 2, (top + bottom) // 2)
