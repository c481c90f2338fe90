"""How far an output pixel of a fully convolutional network looks into its input.

:func:`receptive_field` reads it from a built model's layers (kernel sizes, strides, dilations,
paddings, transposed convs, crops, upsampling), for networks whose spatial layers form one chain
from input to output; layers that act on each pixel (activations, norms, adds of a residual
branch) do not widen it. A residual block's skip reaches less far than its convs, so the chain of
all spatial layers in graph order bounds it. GLCIC crops around its holes with it
(glcic_inpaint/regions.py); tiled inference of an instance-norm network gives each tile that much
context (common/whole_image_norm.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Layers that act on each pixel alone (no spatial reach).
POINTWISE = ("InputLayer", "BatchNormalization", "ReLU", "LeakyReLU", "Activation", "Dropout",
             "ExactBatchNormalization", "GroupNormalization", "ExactGroupNormalization", "FrozenInstanceNorm",
             "Add", "Rescaling", "ClipValues", "Identity", "PReLU", "OnePassPReLU")


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))


def _same_pad_before(kernel: int, stride: int, dilation: int) -> int:
    """Pixels TensorFlow's SAME padding adds before the input, for an input size divisible by the
    stride (our crops are multiples of 4): total = max(d (k - 1) + 1 - s, 0), half of it before."""
    return max(dilation * (kernel - 1) + 1 - stride, 0) // 2


def layer_steps(model, pointwise: tuple = ()) -> list[tuple]:
    """The spatial steps of a chain model, input to output, one per axis:
    ``("conv", kernel, stride, dilation, pad_before)``, ``("deconv", kernel, stride, pad_before)``
    or ``("shift", pad_before)`` (zero or reflection padding; a crop is a negative one) or
    ``("up", factor)``. ``pointwise``: more layer class names that act on each pixel alone."""
    import keras

    steps = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):  # the completion network inside the inpainter
            steps.extend(layer_steps(layer, pointwise))
        elif kind in POINTWISE or kind in pointwise:
            continue
        elif kind == "ZeroPadding2D":
            (top, _), (left, _) = layer.padding
            steps.append((("shift", int(top)), ("shift", int(left))))
        elif kind == "ReflectionPadding2D":  # common.layers: the same pixels on both sides
            top, left = _pair(layer.padding)
            steps.append((("shift", top), ("shift", left)))
        elif kind == "Cropping2D":
            (top, _), (left, _) = layer.cropping
            steps.append((("shift", -int(top)), ("shift", -int(left))))
        elif kind == "UpSampling2D" and layer.interpolation == "nearest":
            steps.append(tuple(("up", f) for f in _pair(layer.size)))
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
            raise ValueError(f"{layer.name} ({kind}): unknown spatial reach; add it to common/receptive_field.py")
    return steps


def input_interval(steps, axis: int, low: int, high: int) -> tuple[int, int]:
    """Input positions (along ``axis``) that output positions ``low..high`` depend on."""
    for step in reversed(steps):
        kind, *args = step[axis]
        if kind == "shift":
            low, high = low - args[0], high - args[0]
        elif kind == "conv":
            k, s, d, before = args
            low, high = s * low - before, s * high - before + d * (k - 1)
        elif kind == "up":  # nearest: output o repeats input o // f
            low, high = low // args[0], high // args[0]
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


def receptive_field(model, pointwise: tuple = ()) -> Field:
    """The receptive field of ``model``'s chain of spatial layers (:func:`layer_steps`),
    ``pointwise``: more layer class names that act on each pixel alone."""
    steps = layer_steps(model, pointwise)
    stride = 1
    for step in steps:
        kind, *args = step[0]
        if kind == "conv":
            stride *= args[1]
    before, after = [], []
    for axis in (0, 1):
        far_before = far_after = 0
        for p in range(16 * stride, 17 * stride):  # every phase of the stride grid
            low, high = input_interval(steps, axis, p, p)
            far_before, far_after = max(far_before, p - low), max(far_after, high - p)
        before.append(far_before)
        after.append(far_after)
    return Field(tuple(before), tuple(after), stride)


__all__ = ["Field", "POINTWISE", "input_interval", "layer_steps", "receptive_field"]
