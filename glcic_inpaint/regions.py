"""Where to run the completion network: only around the holes, in tiles when memory is short.

The inpainter's output is used only inside the holes (every other pixel is copied from the input),
and the completion network is fully convolutional with a finite receptive field. So the network
needs to see only the holes grown by that field: a crop whose borders are at least
:func:`receptive_field` away from every kept pixel (or are the image's own borders, padded as in a
whole-image run) gives the same values there as the whole image, up to float rounding.

- :func:`receptive_field`: how far an output pixel looks, read from the built model's layers
  (kernel sizes, strides, dilations, paddings, transposed convs), for any preset or width.
- :func:`plan`: the crops to run and the output boxes to keep from each. Crop tops and lefts are
  multiples of the network's total stride (4), so the stride-2 grids line up with a whole-image run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Layers that act on each pixel alone (no spatial reach).
_POINTWISE = ("InputLayer", "BatchNormalization", "ReLU", "LeakyReLU", "Activation", "Dropout",
              "ExactBatchNormalization", "HoleFill", "Composite")


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))


def _same_pad_before(kernel: int, stride: int, dilation: int) -> int:
    """Pixels TensorFlow's SAME padding adds before the input, for an input size divisible by the
    stride (our crops are multiples of 4): total = max(d (k - 1) + 1 - s, 0), half of it before."""
    return max(dilation * (kernel - 1) + 1 - stride, 0) // 2


def _layer_steps(model) -> list[tuple]:
    """The spatial steps of a chain model, input to output, one per axis:
    ``("conv", kernel, stride, dilation, pad_before)``, ``("deconv", kernel, stride, pad_before)``
    or ``("shift", pad_before)`` (zero padding)."""
    import keras

    steps = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):  # the completion network inside the inpainter
            steps.extend(_layer_steps(layer))
        elif kind in _POINTWISE:
            continue
        elif kind == "ZeroPadding2D":
            (top, _), (left, _) = layer.padding
            steps.append((("shift", int(top)), ("shift", int(left))))
        elif kind == "Conv2DTranspose":
            if getattr(layer, "output_padding", None) not in (None, (None, None)):
                raise ValueError(f"{layer.name}: output_padding is not supported")
            if any(d != 1 for d in _pair(layer.dilation_rate)):
                raise ValueError(f"{layer.name}: dilated transposed convs are not supported")
            axes = []
            for k, s in zip(_pair(layer.kernel_size), _pair(layer.strides)):
                # the transpose of a stride-s SAME conv from s*n to n pixels: max(k - s, 0) // 2 before
                axes.append(("deconv", k, s, max(k - s, 0) // 2 if layer.padding == "same" else 0))
            steps.append(tuple(axes))
        elif hasattr(layer, "kernel_size") and hasattr(layer, "strides"):  # Conv2D and subclasses
            axes = []
            for k, s, d in zip(_pair(layer.kernel_size), _pair(layer.strides), _pair(layer.dilation_rate)):
                before = _same_pad_before(k, s, d) if layer.padding == "same" else 0
                axes.append(("conv", k, s, d, before))
            steps.append(tuple(axes))
        else:
            raise ValueError(f"{layer.name} ({kind}): unknown spatial reach; add it to glcic_inpaint.regions")
    return steps


def _input_interval(steps, axis: int, low: int, high: int) -> tuple[int, int]:
    """Input positions (along ``axis``) that output positions ``low..high`` depend on."""
    for step in reversed(steps):
        kind, *args = step[axis]
        if kind == "shift":
            low, high = low - args[0], high - args[0]
        elif kind == "conv":
            k, s, d, before = args
            low, high = s * low - before, s * high - before + d * (k - 1)
        else:  # deconv: output o = s * i - before + j, j in 0..k-1
            k, s, before = args
            low, high = math.ceil((low + before - (k - 1)) / s), (high + before) // s
    return low, high


@dataclass(frozen=True)
class Field:
    """How far the network looks: output pixel ``p`` depends on input pixels
    ``p - before .. p + after`` (per axis: rows, columns), whatever ``p``'s phase on the stride grid."""

    before: tuple[int, int]
    after: tuple[int, int]
    stride: int  # crops must start at multiples of this to keep the strided grids aligned

    @property
    def radius(self) -> int:
        return max(*self.before, *self.after)


def receptive_field(model) -> Field:
    """The receptive field of a chain of convs (the completion network, or the inpainter holding it:
    its hole fill and compositing act per pixel), computed from its layers."""
    steps = _layer_steps(model)
    stride = 1
    for step in steps:
        kind, *args = step[0]
        if kind == "conv":
            stride *= args[1]
    before, after = [], []
    for axis in (0, 1):
        far_before = far_after = 0
        for p in range(16 * stride, 17 * stride):  # every phase of the stride grid
            low, high = _input_interval(steps, axis, p, p)
            far_before, far_after = max(far_before, p - low), max(far_after, high - p)
        before.append(far_before)
        after.append(far_after)
    return Field(tuple(before), tuple(after), stride)


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
