"""Where to run the completion network: only around the holes, in tiles when memory is short.

The inpainter's output is used only inside the holes (every other pixel is copied from the input),
and the completion network is fully convolutional with a finite receptive field. So the network
needs to see only the holes grown by that field: a crop whose borders are at least
:func:`receptive_field` away from every kept pixel (or are the image's own borders, padded as in a
whole-image run) gives the same values there as the whole image, up to float rounding.

- :func:`receptive_field`: how far an output pixel looks, read from the built model's layers
  (``common/receptive_field.py``), for any preset or width.
- :func:`plan`: the crops to run and the output boxes to keep from each. Crop tops and lefts are
  multiples of the network's total stride (4), so the stride-2 grids line up with a whole-image run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.receptive_field import Field
from common.receptive_field import receptive_field as _receptive_field

# the completion network inside the inpainter: its hole fill and compositing act on each pixel
POINTWISE = ("HoleFill", "Composite")


def receptive_field(model) -> Field:
    """The receptive field of the completion network, or of the inpainter holding it
    (:func:`common.receptive_field.receptive_field`)."""
    return _receptive_field(model, POINTWISE)


# ----------------------------------------------------------------------------- tiles
@dataclass(frozen=True)
class Tile:
    """Run the network on ``crop`` (top, left, bottom, right of the padded image) and keep its
    output in ``keep`` (image coordinates, inside the crop)."""

    crop: tuple[int, int, int, int]
    keep: tuple[int, int, int, int]

    @property
    def crop_pixels(self) -> int:
        top, left, bottom, right = self.crop
        return (bottom - top) * (right - left)


def bbox(hole: np.ndarray):
    """(top, left, bottom, right) of the True pixels of ``hole`` (H, W), or None."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def crop_for(keep, field: Field, padded_shape, margin: tuple | None = None) -> tuple[int, int, int, int]:
    """The crop (padded-image coordinates) around output box ``keep``: grown by the receptive field
    (``margin`` = (before, after) per axis, overriding it), clipped to the padded image, top / left
    down to a multiple of the stride and bottom / right up to one (the padded sides are multiples)."""
    before, after = margin if margin is not None else (field.before, field.after)
    top, left, bottom, right = keep
    s = field.stride
    top = max(0, top - before[0]) // s * s
    left = max(0, left - before[1]) // s * s
    bottom = min(padded_shape[0], -(-(bottom + after[0]) // s) * s)
    right = min(padded_shape[1], -(-(right + after[1]) // s) * s)
    return top, left, bottom, right


def plan(hole: np.ndarray, field: Field, padded_shape, tile: int | None = None,
         margin: tuple | None = None) -> list[Tile]:
    """Tiles covering every hole pixel of ``hole`` (H, W) bool once.

    ``tile=None``: one crop around the holes' bounding box. ``tile=N``: that box is cut into N x N
    output tiles; tiles without a hole pixel are skipped and each other one is shrunk to the
    bounding box of its own hole pixels (less to compute for scattered small holes).
    """
    box = bbox(hole)
    if box is None:
        return []
    keeps = [box]
    if tile:
        top, left, bottom, right = box
        keeps = []
        for y in range(top, bottom, tile):
            for x in range(left, right, tile):
                inner = bbox(hole[y: min(y + tile, bottom), x: min(x + tile, right)])
                if inner is not None:
                    keeps.append((y + inner[0], x + inner[1], y + inner[2], x + inner[3]))
    return [Tile(crop_for(k, field, padded_shape, margin), k) for k in keeps]


def tile_for_budget(field: Field, bytes_per_pixel: float, budget_bytes: float, min_tile: int = 64) -> int:
    """The largest output tile side whose crop (tile + the field on both sides + stride alignment)
    fits ``budget_bytes`` at ``bytes_per_pixel``; at least ``min_tile``."""
    reach = max(field.before[0] + field.after[0], field.before[1] + field.after[1]) + 2 * (field.stride - 1)
    side = int(math.sqrt(max(budget_bytes, 0.0) / bytes_per_pixel)) - reach if bytes_per_pixel > 0 else 0
    return max(side, min_tile)


def varied_weights(network, seed: int = 0):
    """Random weights whose output varies over the image, for checking crops against the whole
    image (tests, benchmarks/run.py): kernels drawn as He et al. (std sqrt(2 / fan-in)), BatchNorm
    near the identity. With Keras' defaults the signal fades through the 17 conv + ReLU layers
    (tadax's gamma ~ N(0, 0.02) even more) and every output is nearly the same. Returns ``network``."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        weights = layer.get_weights()
        if type(layer).__name__.endswith("BatchNormalization"):
            gamma = rng.normal(1, 0.1, weights[0].shape)
            weights = [gamma, rng.normal(0, 0.1, gamma.shape), np.zeros_like(gamma), np.ones_like(gamma)]
        elif weights:
            kernel = weights[0]  # (k, k, in, out); transposed: (k, k, out, in), each output sums
            transposed = type(layer).__name__ == "Conv2DTranspose"  # over (k / stride)^2 taps
            fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[3 if transposed else 2]
            fan_in /= np.prod(layer.strides) if transposed else 1
            weights[0] = rng.normal(0, np.sqrt(2 / fan_in), kernel.shape)
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return network
