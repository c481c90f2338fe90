"""Small serializable layers shared by the model families.

Every layer here works on any spatial size (``None`` included), survives a ``.keras``
round trip and uses only ``keras.ops``, so it runs under any dtype policy and inside XLA.
"""

from __future__ import annotations

import keras
from keras import layers, ops

_PACKAGE = "gan_restoration"


def as_pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReflectionPadding2D(layers.Layer):
    """Mirror-pad height and width, like ``numpy.pad(mode="reflect")`` / PyTorch ReflectionPad2d.

    ``padding`` is an int or ``(pad_height, pad_width)``; both sides of each axis get the same
    amount. Each side of the input must be larger than its padding (as in numpy and PyTorch).
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = as_pair(padding)

    def call(self, inputs):
        pad_h, pad_w = self.padding
        return ops.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        pad_h, pad_w = self.padding
        height = None if height is None else height + 2 * pad_h
        width = None if width is None else width + 2 * pad_w
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SubpixelConv2D(layers.Layer):
    """Pixel shuffle: (H, W, C * s * s) -> (H * s, W * s, C), the same as ``tf.nn.depth_to_space``.

    Channel order (matters when converting weights): output pixel (dy, dx) of channel c reads input
    channel ``(dy * s + dx) * C + c`` (TensorFlow's DCR order). PyTorch's ``nn.PixelShuffle`` reads
    ``c * s * s + dy * s + dx`` (CRD order). To load a PyTorch conv that feeds PixelShuffle, permute
    its output channels with :func:`pytorch_to_tensorflow_subpixel_order`.
    """

    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        return ops.depth_to_space(inputs, self.scale, data_format="channels_last")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        s = self.scale
        height = None if height is None else height * s
        width = None if width is None else width * s
        channels = None if channels is None else channels // (s * s)
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def pytorch_to_tensorflow_subpixel_order(out_channels: int, scale: int):
    """Index array ``perm`` so that ``tf_kernel[..., k] = torch_kernel_hwio[..., perm[k]]``.

    ``out_channels`` is the channel count after the shuffle (C); the conv has C * scale**2 outputs.
    """
    import numpy as np

    perm = np.empty(out_channels * scale * scale, dtype=np.int64)
    for dy in range(scale):
        for dx in range(scale):
            for c in range(out_channels):
                perm[(dy * scale + dx) * out_channels + c] = c * scale * scale + dy * scale + dx
    return perm


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClipValues(layers.Layer):
    """Clamp values to ``[min_value, max_value]`` (PyTorch ``torch.clamp``)."""

    def __init__(self, min_value=-1.0, max_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.min_value = float(min_value)
        self.max_value = float(max_value)

    def call(self, inputs):
        return ops.clip(inputs, self.min_value, self.max_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


def instance_norm(name: str | None = None, epsilon: float = 1e-5, affine: bool = False):
    """Instance normalisation equal to PyTorch ``InstanceNorm2d(affine=False, eps=1e-5)``.

    ``GroupNormalization(groups=-1)`` normalises each channel of each image over its spatial
    positions (biased variance, as PyTorch) and computes in float32 under mixed precision.
    """
    return layers.GroupNormalization(
        groups=-1, epsilon=epsilon, center=affine, scale=affine, name=name
    )
