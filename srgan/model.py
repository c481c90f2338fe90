"""SRGAN generator (SRResNet) and discriminator as functional Keras models.

Value ranges
------------
* Generator input: the LR image in [-1, 1] (``lr_range="signed"``, bubbliiiing) or [0, 1]
  (``lr_range="unit"``, paper §3.2). The network itself does not rescale; the data pipeline and
  the inference code convert with the functions in :mod:`common.image_io`.
* Generator output: the HR image in [-1, 1] (tanh), float32 under every dtype policy.
* Discriminator input: an HR image in [-1, 1]; output: the probability that it is real, shape
  (batch, 1), in [0, 1] (sigmoid), float32.

Layer names are stable (``head_conv``, ``res3_bn2``, ``up1_conv``, ``d4_conv``, ...) so weights can be
converted or loaded by name.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from common.layers import NarrowConv2D, OnePassPReLU, SubpixelConv2D
from srgan.config import DEFAULT_PRESET, Config, get_config


def _kernel_init(config: Config):
    """``random_normal(stddev=0.02)`` (nets/srgan.py) or Glorot uniform (Lasagne/Keras default)."""
    if config.init_stddev is None:
        return "glorot_uniform"
    return keras.initializers.RandomNormal(mean=0.0, stddev=config.init_stddev)


def _conv(x, filters, kernel, config, name, strides=1, **kwargs):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same",
        kernel_initializer=kwargs.pop("kernel_initializer", _kernel_init(config)),
        name=name, **kwargs,
    )(x)


def _bn(x, config, name):
    return layers.BatchNormalization(
        momentum=config.bn_momentum, epsilon=config.bn_epsilon, name=name
    )(x)


def _prelu(x, config, name):
    # One slope per channel, shared over height and width: PReLU(shared_axes=[1, 2]); computed in
    # one pass (common.layers.OnePassPReLU: same weights and values as Keras' PReLU).
    return OnePassPReLU(
        alpha_initializer=keras.initializers.Constant(config.prelu_init),
        shared_axes=[1, 2], name=name,
    )(x)


def residual_block(x, config: Config, index: int):
    """conv-BN-PReLU-conv-BN + identity (nets/srgan.py residual_block; paper Fig. 4)."""
    prefix = f"res{index}"
    y = _conv(x, config.filters, 3, config, f"{prefix}_conv1")
    y = _bn(y, config, f"{prefix}_bn1")
    y = _prelu(y, config, f"{prefix}_prelu")
    y = _conv(y, config.filters, 3, config, f"{prefix}_conv2")
    y = _bn(y, config, f"{prefix}_bn2")
    return layers.Add(name=f"{prefix}_add")([y, x])


def upsample_block(x, config: Config, index: int):
    """conv k3n256 -> pixel shuffle x2 -> PReLU (nets/srgan.py deconv2d)."""
    prefix = f"up{index}"
    x = _conv(x, config.upsample_filters, 3, config, f"{prefix}_conv")
    x = SubpixelConv2D(2, name=f"{prefix}_shuffle")(x)
    return _prelu(x, config, f"{prefix}_prelu")


def build_generator(scale: int | None = None, preset: str | Config = DEFAULT_PRESET, **overrides):
    """SRResNet generator: LR (any H x W) -> HR (scale*H x scale*W) in [-1, 1].

    ``scale`` (2, 4 or 8) overrides the preset's ``scale`` (4 in both presets). ``preset`` is a
    preset name or a :class:`srgan.config.Config`; ``overrides`` change single fields.
    1,554,883 parameters at scale 4 (4,224 of them non-trainable BatchNorm statistics).
    """
    if scale is not None:
        overrides["scale"] = scale
    config = get_config(preset, **overrides)
    num_upsamples = int(round(math.log2(config.scale)))

    lr = keras.Input((None, None, 3), name="lr_image")
    x = _conv(lr, config.filters, config.head_kernel, config, "head_conv")
    skip = x = _prelu(x, config, "head_prelu")
    for i in range(1, config.num_res_blocks + 1):
        x = residual_block(x, config, i)
    x = _conv(x, config.filters, 3, config, "trunk_conv")
    x = _bn(x, config, "trunk_bn")
    x = layers.Add(name="trunk_add")([x, skip])
    for i in range(1, num_upsamples + 1):
        x = upsample_block(x, config, i)
    # The last conv keeps the Keras default Glorot init in nets/srgan.py; float32 so that the
    # output (and the losses on it) stay float32 under mixed precision. NarrowConv2D: a Conv2D
    # with the same weights, faster for 3 output channels (common/layers.py).
    sr = NarrowConv2D(
        3, config.tail_kernel, padding="same", activation="tanh", dtype="float32",
        kernel_initializer="glorot_uniform", name="tail_conv",
    )(x)
    return keras.Model(lr, sr, name="generator")


def _d_block(x, filters, strides, config: Config, index: int):
    """conv-BN-LeakyReLU (nets/srgan.py d_block)."""
    x = _conv(x, filters, 3, config, f"d{index}_conv", strides=strides)
    x = _bn(x, config, f"d{index}_bn")
    return layers.LeakyReLU(negative_slope=config.leaky_slope, name=f"d{index}_lrelu")(x)


def build_discriminator(preset: str | Config = DEFAULT_PRESET, **overrides):
    """SRGAN discriminator: HR image in [-1, 1] -> probability of being real, (batch, 1) in [0, 1].

    ``d_head="gap"`` (bubbliiiing): global average pooling, any input size, 5,219,137 parameters.
    ``d_head="flatten"`` (paper): Flatten on a fixed ``hr_crop x hr_crop`` input (96: 23,569,217
    parameters, 18.9M of them in the first dense layer).
    """
    config = get_config(preset, **overrides)
    size = config.hr_crop if config.d_head == "flatten" else None
    image = keras.Input((size, size, 3), name="hr_image")
    x = _conv(image, config.d_first_filters, 3, config, "d0_conv")
    x = layers.LeakyReLU(negative_slope=config.leaky_slope, name="d0_lrelu")(x)
    for i, (filters, strides) in enumerate(config.d_blocks, start=1):
        x = _d_block(x, filters, strides, config, i)
    if config.d_head == "gap":
        x = layers.GlobalAveragePooling2D(name="d_pool")(x)
    else:
        x = layers.Flatten(name="d_flatten")(x)
    x = layers.Dense(config.d_dense_units, kernel_initializer=_kernel_init(config),
                     name="d_dense1")(x)
    x = layers.LeakyReLU(negative_slope=config.leaky_slope, name="d_dense1_lrelu")(x)
    prob = layers.Dense(1, activation="sigmoid", dtype="float32",
                        kernel_initializer=_kernel_init(config), name="d_dense2")(x)
    return keras.Model(image, prob, name="discriminator")
