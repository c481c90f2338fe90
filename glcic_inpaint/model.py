"""GLCIC networks: the completion network (paper Table 1) and the global + local discriminator.

Value ranges depend on the preset (``Config.value_range``):

- ``paper``: images in [0, 1]; the completion network's output is a sigmoid in [0, 1].
- ``tadax``: images in [-1, 1]; the output is a tanh in [-1, 1].

The completion network sees a prepared input (see :class:`HoleFill`): the image with its holes
filled (``paper``: mean colour, minus that mean, plus the mask as a 4th channel; ``tadax``: holes
set to 0, 3 channels). :func:`build_inpainter` wraps it into a self-contained model
``[image, mask] -> completed image`` that does this preparation and the final compositing.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from glcic_inpaint.config import Config, get_config

_PACKAGE = "glcic_inpaint"

# Paper Table 1, the same sequence in tadax (network.py) and otenim (models.py).
# (name, kind, kernel, dilation, stride, output channels at filters = 64). All "same"-size convs;
# stride 2 halves, a "deconv" (transposed conv, stride 1/2 in the paper) doubles the size.
# Every layer but the output one is followed by BN + ReLU.
TABLE1 = (
    ("conv1", "conv", 5, 1, 1, 64),
    ("conv2", "conv", 3, 1, 2, 128),
    ("conv3", "conv", 3, 1, 1, 128),
    ("conv4", "conv", 3, 1, 2, 256),
    ("conv5", "conv", 3, 1, 1, 256),
    ("conv6", "conv", 3, 1, 1, 256),
    ("dilated1", "conv", 3, 2, 1, 256),
    ("dilated2", "conv", 3, 4, 1, 256),
    ("dilated3", "conv", 3, 8, 1, 256),
    ("dilated4", "conv", 3, 16, 1, 256),
    ("conv7", "conv", 3, 1, 1, 256),
    ("conv8", "conv", 3, 1, 1, 256),
    ("deconv1", "deconv", 4, 1, 2, 128),
    ("conv9", "conv", 3, 1, 1, 128),
    ("deconv2", "deconv", 4, 1, 2, 64),
    ("conv10", "conv", 3, 1, 1, 32),
    ("conv11", "output", 3, 1, 1, 3),  # output layer: no BN; sigmoid (paper) / tanh (tadax)
)


def _config(preset, overrides) -> Config:
    return get_config(preset, **overrides)


def _gamma_initializer(config: Config):
    if config.bn_gamma_stddev is None:
        return "ones"
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=config.bn_gamma_stddev)


def _conv(x, filters, kernel, stride, dilation, name, config: Config, transpose=False):
    """One conv; stride-2 convs pad like Torch (``symmetric``) or like TF SAME (``same``)."""
    if transpose:
        # k4 s2 "same" pads 1 on each side: Torch ConvTranspose2d(4, 2, padding=1) and tadax alike
        return layers.Conv2DTranspose(
            filters, kernel, strides=stride, padding="same", use_bias=config.conv_bias, name=name
        )(x)
    padding = "same"
    if stride > 1 and config.padding == "symmetric":
        x = layers.ZeroPadding2D((kernel - 1) // 2 * dilation, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        dilation_rate=dilation,
        padding=padding,
        use_bias=config.conv_bias,
        name=name,
    )(x)


def _bn_relu(x, name, config: Config):
    x = layers.BatchNormalization(
        momentum=config.bn_momentum,
        epsilon=config.bn_epsilon,
        gamma_initializer=_gamma_initializer(config),
        name=f"{name}_bn",
    )(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_completion_network(preset: str | Config | None = None, **overrides) -> keras.Model:
    """Paper Table 1: ``(B, H, W, 3 or 4)`` prepared input -> ``(B, H, W, 3)`` image.

    H and W may be any multiple of 4 (two stride-2 convs and two transposed convs).
    Input: see :class:`HoleFill`. Output: [0, 1] (sigmoid, ``paper``) or [-1, 1] (tanh, ``tadax``),
    float32 under every dtype policy.
    """
    config = _config(preset, overrides)
    inputs = keras.Input((None, None, config.input_channels), name="net_input")
    x = inputs
    for name, kind, kernel, dilation, stride, channels in TABLE1:
        if kind == "output":
            x = _conv(x, 3, kernel, stride, dilation, name, config)
            x = layers.Activation(config.output_activation, dtype="float32", name="output")(x)
            break
        filters = max(1, channels * config.filters // 64)
        x = _conv(x, filters, kernel, stride, dilation, name, config, transpose=kind == "deconv")
        x = _bn_relu(x, name, config)
    return keras.Model(inputs, x, name="completion_network")


build_generator = build_completion_network  # the name every family's builder uses


def _discriminator_branch(x, filters, prefix, config: Config):
    for index, width in enumerate(filters, start=1):
        name = f"{prefix}_conv{index}"
        x = _conv(x, width, config.d_kernel, 2, 1, name, config)
        x = _bn_relu(x, name, config)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    # FC-1024 without activation: the paper names none, tadax has none (otenim adds a ReLU)
    return layers.Dense(config.d_fc_units, kernel_initializer=_fc_initializer(config),
                        name=f"{prefix}_fc")(x)


def _fc_initializer(config: Config):
    if config.fc_stddev is None:
        return "glorot_uniform"
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=config.fc_stddev)


def build_discriminator(preset: str | Config | None = None, **overrides) -> keras.Model:
    """The paper's global + local context discriminators.

    Inputs: ``global_image`` (B, image_size, image_size, 3) and ``local_patch``
    (B, local_size, local_size, 3), both in the preset's value range. Each branch is a stack of
    5x5 stride-2 conv + BN + ReLU and an FC-1024; the two vectors are concatenated and an FC-1
    gives one float32 **logit** per image (``sigmoid(logit)`` is the paper's probability; the
    losses use the numerically stable logit form).
    """
    config = _config(preset, overrides)
    size, local = config.image_size, config.local_size
    global_image = keras.Input((size, size, 3), name="global_image")
    local_patch = keras.Input((local, local, 3), name="local_patch")
    global_features = _discriminator_branch(global_image, config.global_d_filters, "global", config)
    local_features = _discriminator_branch(local_patch, config.local_d_filters, "local", config)
    x = layers.Concatenate(name="concat")([global_features, local_features])
    logit = layers.Dense(
        1, kernel_initializer=_fc_initializer(config), dtype="float32", name="logit"
    )(x)
    return keras.Model([global_image, local_patch], logit, name="discriminator")


# ---------------------------------------------------------------------- input and compositing


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HoleFill(layers.Layer):
    """``(image, mask) -> network input``: holes set to ``fill``, then ``offset`` subtracted,
    then (``mask_channel``) the mask appended as a 4th channel.

    ``image`` (B, H, W, 3) in the preset's range, ``mask`` (B, H, W, 1) with 1 = hole.
    ``paper``: fill = offset = training-set mean colour (official inpaint.lua: ``I - mean`` with the
    hole zeroed, concatenated with ``M``). ``tadax``: fill 0, no offset, no mask channel.
    """

    def __init__(self, fill=(0.0, 0.0, 0.0), offset=(0.0, 0.0, 0.0), mask_channel=True, **kwargs):
        super().__init__(**kwargs)
        self.fill = tuple(float(v) for v in fill)
        self.offset = tuple(float(v) for v in offset)
        self.mask_channel = bool(mask_channel)

    def call(self, image, mask):
        hole = ops.cast(mask, self.compute_dtype) > 0.5
        fill = ops.cast(ops.convert_to_tensor(self.fill), image.dtype)
        offset = ops.cast(ops.convert_to_tensor(self.offset), image.dtype)
        x = ops.where(hole, fill, image) - offset
        if self.mask_channel:
            x = ops.concatenate([x, ops.cast(mask, x.dtype)], axis=-1)
        return x

    def get_config(self):
        return {**super().get_config(), "fill": self.fill, "offset": self.offset,
                "mask_channel": self.mask_channel}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Composite(layers.Layer):
    """``(image, output, mask) -> output`` inside the hole (mask > 0.5), ``image`` elsewhere.

    Pixels outside the hole are the input's exactly (a select, not a blend). float32.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, image, output, mask):
        return ops.where(ops.cast(mask, self.compute_dtype) > 0.5, output, image)


def fill_and_offset(config: Config, mean_color=None):
    """(fill, offset) colours of :class:`HoleFill` for ``config`` (value_range units)."""
    if config.hole_fill == "zero":
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    mean = config.mean_color if mean_color is None else mean_color
    if mean is None:
        raise ValueError(
            "this preset fills holes with the training set's mean colour; pass mean_color "
            "(computed from the training images) or set Config.mean_color"
        )
    mean = tuple(float(v) for v in mean)
    return mean, (mean if config.subtract_mean else (0.0, 0.0, 0.0))


def build_inpainter(
    completion_network: keras.Model, preset: str | Config | None = None, mean_color=None,
    **overrides,
) -> keras.Model:
    """``[image, mask] -> completed image``: the completion network with its input preparation
    (:class:`HoleFill`) and compositing (:class:`Composite`), sharing its weights.

    ``image`` (B, H, W, 3) in the preset's range, H and W multiples of 4; ``mask`` (B, H, W, 1),
    1 = hole. Output: the network's output inside the hole, the input image elsewhere, float32.
    ``mean_color``: the training-set mean (value_range units) for presets with ``hole_fill="mean"``.
    """
    config = _config(preset, overrides)
    fill, offset = fill_and_offset(config, mean_color)
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    prepared = HoleFill(fill, offset, config.mask_channel, name="hole_fill")(image, mask)
    output = completion_network(prepared)
    completed = Composite(name="composite")(image, output, mask)
    return keras.Model([image, mask], completed, name="inpainter")
