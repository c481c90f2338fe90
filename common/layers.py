"""Small serializable layers shared by the model families.

Every layer here works on any spatial size (``None`` included), survives a ``.keras``
round trip and uses only ``keras.ops``, so it runs under any dtype policy and inside XLA.
"""

from __future__ import annotations

import keras
from keras import layers, ops

_PACKAGE = "gan_restoration"


def _keep_keras_weight_path(keras_class):
    """Class decorator: file weights under ``keras_class``'s name, as before this subclass existed.

    Keras addresses each layer's variables in ``.weights.h5`` / ``.keras`` files by the snake-case
    name of its class, numbered in order (``layers/conv2d_3/vars/0``; keras/src/saving/saving_lib.py),
    not by the layer's own name. A subclass under a new class name would move its weights there and
    orphan every file written with the plain Keras layer (and every same-class layer after it). The
    class keeps its own name for serialization (``gan_restoration>NarrowConv2D``, registered
    first); only ``__name__``, which the weight paths use, shows Keras' name.
    """

    def keep(cls):
        cls.__name__ = keras_class.__name__
        return cls

    return keep


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
        # Mirrored edge slices concatenated around the input: the same values as
        # ops.pad(mode="reflect"), about 3x faster on CPU (TF's MirrorPad kernel; benchmarks/run.py).
        pad_h, pad_w = self.padding
        x = inputs
        if pad_h:
            before, after = ops.flip(x[:, 1:pad_h + 1], axis=1), ops.flip(x[:, -pad_h - 1:-1], axis=1)
            x = ops.concatenate([before, x, after], axis=1)
        if pad_w:
            before, after = ops.flip(x[:, :, 1:pad_w + 1], axis=2), ops.flip(x[:, :, -pad_w - 1:-1], axis=2)
            x = ops.concatenate([before, x, after], axis=2)
        return x

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


@_keep_keras_weight_path(layers.PReLU)
@keras.saving.register_keras_serializable(package=_PACKAGE)
class OnePassPReLU(layers.PReLU):
    """``keras.layers.PReLU`` (same weights and values) computed as one select, ``x >= 0 ? x :
    alpha * x``, instead of Keras' ``relu(x) - alpha * relu(-x)`` (five element-wise passes; 16% of
    the bf16 SRGAN generator's time on CPU). The same products, so the same values at inference
    (tests/test_layers.py); the gradient differs only at exactly x = 0 (1 here, 0 there).
    """

    def call(self, inputs):
        return ops.where(ops.greater_equal(inputs, 0), inputs, ops.multiply(self.alpha, inputs))


@_keep_keras_weight_path(layers.Conv2D)
@keras.saving.register_keras_serializable(package=_PACKAGE)
class NarrowConv2D(layers.Conv2D):
    """``keras.layers.Conv2D`` for an output with few channels (an RGB image), same weights.

    CPU convolution kernels fill vector lanes with output channels (16 float32 lanes on AVX-512),
    so a 3-channel conv costs as much as a 16-channel one. For stride 1 and an odd kernel k with
    at most 4 filters, each 2x2 block of outputs is computed at once instead: a stride-2 conv with
    a (k + 1)-sized kernel holding the four shifted copies of the kernel (4 x filters channels),
    then depth_to_space. The same products and sums (the extra terms are exact zeros): 2.5-2.8x
    faster for DeblurGAN's 7x7 and SRGAN's 9x9 output convs (benchmarks/run.py). Other
    configurations run the plain convolution.
    """

    def _phase_applies(self) -> bool:
        kernel_h, kernel_w = self.kernel_size
        return (self.filters <= 4 and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
                and self.groups == 1 and self.data_format == "channels_last" and kernel_h == kernel_w
                and kernel_h % 2 == 1 and kernel_h > 1 and self.padding in ("valid", "same"))

    def convolution_op(self, inputs, kernel):
        if not self._phase_applies():
            return super().convolution_op(inputs, kernel)
        k = self.kernel_size[0]
        x = inputs
        if self.padding == "same":
            half = (k - 1) // 2
            x = ops.pad(x, [[0, 0], [half, half], [half, half], [0, 0]])
        shape = ops.shape(x)
        out_h, out_w = shape[1] - k + 1, shape[2] - k + 1
        x = ops.pad(x, [[0, 0], [0, out_h % 2], [0, out_w % 2], [0, 0]])  # an even number of outputs
        # output (2i + a, 2j + b) = sum over (s, t) of x[2i + s, 2j + t] * kernel[s - a, t - b]
        shifted = [ops.pad(kernel, [[a, 1 - a], [b, 1 - b], [0, 0], [0, 0]]) for a in (0, 1) for b in (0, 1)]
        y = ops.conv(x, ops.concatenate(shifted, axis=-1), strides=2, padding="valid")
        y = ops.depth_to_space(y, 2, data_format="channels_last")  # channel (2a + b) * filters + c
        return y[:, :out_h, :out_w]


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


def _exact_moments(x, axes):
    """Mean and biased variance with exact derivatives of every order.

    ``ops.moments`` / ``tf.nn.moments`` compute the variance as ``mean(square(x - stop_gradient(mean)))``:
    first derivatives are right (d var / d mean is zero in value), but the second derivatives miss the
    path through the mean. A WGAN-GP penalty differentiates the critic twice (its gradient with
    respect to the weights is a second derivative), so a normalisation inside a penalised critic
    must use this plain form (PyTorch's InstanceNorm2d / BatchNorm2d do).
    """
    mean = ops.mean(x, axis=axes, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
    return mean, variance


@_keep_keras_weight_path(layers.GroupNormalization)
@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExactGroupNormalization(layers.GroupNormalization):
    """``keras.layers.GroupNormalization`` whose moments have exact second derivatives.

    The same constructor, weights (``gamma`` / ``beta`` when affine) and float32 compute under mixed
    precision as the Keras layer; only the statistics differ in how they are differentiated
    (:func:`_exact_moments`). ``groups=-1`` is instance normalisation.
    """

    def call(self, inputs, training=None):
        if self._fused_applies(inputs):
            return self._fused_instance_norm(inputs)
        return super().call(inputs)

    def _fused_applies(self, inputs) -> bool:
        """Instance norm under a 16-bit compute dtype, on TensorFlow: one fused batch-norm kernel
        does it about 2.5x faster than the separate ops at inference (benchmarks/run.py). In bf16
        training (benchmarks/deblurgan_step_profile.py parts, three loaded single-thread runs) the
        DeblurGAN generator's forward + backward took 7-20% less time with it, a critic update
        from 7% more to 10% less. Its derivatives are exact to the second order a penalty needs:
        the first is TensorFlow's FusedBatchNormGradV3 kernel, the second differentiates
        TensorFlow's closed form of that gradient (nn_fused_batch_norm_grad.py), in which the
        variance is differentiated only once (tests/test_instance_norm_fused.py compares both
        orders with the plain path). float32 keeps the plain path (same numbers as before)."""
        return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.groups == inputs.shape[-1]
                and self.compute_dtype in ("bfloat16", "float16"))

    def _fused_instance_norm(self, inputs):
        import tensorflow as tf

        # batch-norm statistics over (H, W) of a (1, H, W, N * C) view = instance statistics;
        # the transposes only move the batch axis (free for one image)
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        x = tf.reshape(tf.transpose(inputs, [1, 2, 0, 3]), [1, shape[1], shape[2], shape[0] * channels])
        ones = tf.ones([shape[0] * channels], tf.float32)
        scale = tf.tile(tf.cast(self.gamma, tf.float32), [shape[0]]) if self.scale else ones
        offset = tf.tile(tf.cast(self.beta, tf.float32), [shape[0]]) if self.center else 0.0 * ones
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=self.epsilon, is_training=True)
        y = tf.transpose(tf.reshape(y, [shape[1], shape[2], shape[0], channels]), [2, 0, 1, 3])
        return tf.cast(y, self.compute_dtype)

    def _apply_normalization(self, reshaped_inputs, input_shape):
        inputs_dtype = reshaped_inputs.dtype
        # statistics in float32 (at least) under mixed precision, as the Keras layer
        x = ops.cast(reshaped_inputs, keras.backend.result_type(inputs_dtype, "float32"))
        axes = list(range(1, len(x.shape)))
        axes.pop(-2 if self.axis == -1 else self.axis - 1)  # the group axis stays
        broadcast_shape = self._create_broadcast_shape(input_shape)
        mean, variance = _exact_moments(x, axes)
        inv = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * ops.cast(ops.reshape(self.gamma, broadcast_shape), x.dtype)
        out = (x - mean) * inv
        if self.center:
            out = out + ops.cast(ops.reshape(self.beta, broadcast_shape), x.dtype)
        return ops.cast(out, inputs_dtype)


@_keep_keras_weight_path(layers.BatchNormalization)
@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExactBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training-mode moments have exact second derivatives.

    Same weights (gamma, beta, moving mean / variance), constructor and moving-average updates as
    the Keras layer; use it for a critic trained with a gradient penalty (Keras' own layer gets the
    penalty's gradient wrong through ``ops.moments``, see :func:`_exact_moments`). Masks and
    ``synchronized=True`` fall back to the Keras computation.
    """

    def _moments(self, inputs, mask):
        if mask is not None or self.synchronized:
            return super()._moments(inputs, mask)
        axes = tuple(self._reduction_axes)
        mean, variance = _exact_moments(inputs, axes)
        return ops.squeeze(mean, axis=axes), ops.squeeze(variance, axis=axes)


def instance_norm(name: str | None = None, epsilon: float = 1e-5, affine: bool = False):
    """Instance normalisation equal to PyTorch ``InstanceNorm2d(affine=False, eps=1e-5)``.

    Normalises each channel of each image over its spatial positions (biased variance, as
    PyTorch), computes in float32 under mixed precision, and differentiates twice exactly (a
    gradient penalty needs it; Keras' ``GroupNormalization`` does not, see :func:`_exact_moments`).
    It is a ``GroupNormalization(groups=-1)`` subclass, so weights and checkpoints are unchanged.
    """
    return ExactGroupNormalization(groups=-1, epsilon=epsilon, center=affine, scale=affine, name=name)
