"""Deep Generative Filter (Ramakrishnan et al., ICCVW 2017) generator and discriminators, Keras 3.

Value ranges: every image that enters or leaves these models is float in [-1, 1]
(``common.image_io.uint8_to_signed``); discriminators output probabilities in (0, 1) (float32).

Generator (both presets): a 3x3 "head" conv, a densely connected field of ``n_blocks`` bottleneck
blocks (LeakyReLU -> 1x1 conv -> BN -> LeakyReLU -> 3x3 dilated conv -> BN [-> dropout]), each
seeing the concatenation of the head and all previous blocks, a 1x1 "tail", a global skip from the
head, then conv3x3 -> LeakyReLU -> conv3x3(3) -> tanh. Fully convolutional, stride 1 throughout:
any input size works, odd ones included. Preset differences (see config.py and README.md):

==================  ============================  =============================================
                    ``keras`` (leftthomas)        ``paper`` (official Torch)
==================  ============================  =============================================
tail input          last dense block only         head + all dense outputs (896 channels)
global skip         concat (512 ch)               add (256 ch)
dropout 0.5         in every dense block          in the tail only
dilations           1,1,1,2,1,3,1,2,1,1           1,2,1,2,1,2,1,2,1,2
parameters          3,204,739 (6,912 BN stats)    3,266,496 (no biases; 6,912 BN stats)
==================  ============================  =============================================

Discriminators:

* ``patch_average`` (keras preset): the ``crop_size`` image is cut into non-overlapping
  ``patch_size`` patches (:class:`dgf_deblur.layers.SplitPatches`, folded into the batch axis), one
  shared classifier scores every patch (``d_layers`` stride-2 3x3 convs of ``d_channels * (1, 2, 4,
  4, ...)`` with BN + LeakyReLU, Flatten, Dense(1), sigmoid) and the patch probabilities are
  averaged: output (B, 1). 967,809 parameters at 256/64/64 (1,408 BN stats).
* ``patchgan`` (paper preset): models2.lua defineD_n_layers, a pix2pix "basic" PatchGAN with 4x4
  convs, Torch padding 1, ``d_layers + 1`` stride-2 convs (the last stride 2, unlike pix2pix's
  stride 1), then a 4x4 stride-1 conv to one channel and a sigmoid: output (B, H/16 - 1,
  W/16 - 1, 1), 15 x 15 at 256 px. Any input size of at least 32 px.

With ``conditional=True`` (paper) the discriminator has two inputs ``[blurred, image]`` and sees
their channel concatenation (blurred first, train.lua ``torch.cat(real_A, fake_B, 2)``); otherwise
its one input is the image (sharp or generated).
"""

from __future__ import annotations

import keras
from keras import initializers, layers

from dgf_deblur.config import DEFAULT_PRESET, Config, get_config
from dgf_deblur.layers import MeanPatchScores, SplitPatches


# ------------------------------------------------------------------------------------ helpers
def _kernel_init(cfg: Config):
    if cfg.weight_init == "normal":
        return initializers.RandomNormal(mean=0.0, stddev=0.02)  # train.lua weights_init
    return initializers.GlorotUniform()  # Keras default (model.py)


def _gamma_init(cfg: Config):
    if cfg.weight_init == "normal":
        return initializers.RandomNormal(mean=1.0, stddev=0.02)  # train.lua weights_init
    return initializers.Ones()


def _conv(cfg: Config, filters: int, kernel: int, name: str, *, strides=1, dilation=1,
          padding="same", use_bias=None) -> layers.Conv2D:
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        dilation_rate=dilation,
        padding=padding,
        use_bias=cfg.use_bias if use_bias is None else use_bias,
        kernel_initializer=_kernel_init(cfg),
        bias_initializer="zeros",
        name=name,
    )


def _bn(cfg: Config, name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        momentum=cfg.bn_momentum,
        epsilon=cfg.bn_epsilon,
        gamma_initializer=_gamma_init(cfg),
        name=name,
    )


def _lrelu(cfg: Config, name: str) -> layers.LeakyReLU:
    return layers.LeakyReLU(negative_slope=cfg.leaky_slope, name=name)


# ------------------------------------------------------------------------------------ generator
def dense_block(x, cfg: Config, index: int):
    """One block of the dense field: (H, W, c) -> (H, W, growth_rate).

    model.py dense_block / densefield.lua DenseConnectLayerCustom:
    LeakyReLU -> conv1x1(bottleneck) -> BN -> LeakyReLU -> conv3x3(growth, dilation) -> BN
    [-> Dropout(dense_dropout)].
    """
    p = f"dense{index}"
    x = _lrelu(cfg, f"{p}_lrelu1")(x)
    x = _conv(cfg, cfg.bottleneck_channels, 1, f"{p}_conv1x1")(x)
    x = _bn(cfg, f"{p}_bn1")(x)
    x = _lrelu(cfg, f"{p}_lrelu2")(x)
    x = _conv(cfg, cfg.growth_rate, 3, f"{p}_conv3x3", dilation=cfg.dilations[index - 1])(x)
    x = _bn(cfg, f"{p}_bn2")(x)
    if cfg.dense_dropout > 0:
        x = layers.Dropout(cfg.dense_dropout, name=f"{p}_dropout")(x)
    return x


def build_generator(preset: str | Config = DEFAULT_PRESET, **overrides) -> keras.Model:
    """The DGF generator: blurred (B, H, W, 3) in [-1, 1] -> deblurred (B, H, W, 3) in [-1, 1].

    Any H and W (stride 1 everywhere). The output is float32 under mixed precision.
    """
    cfg = get_config(preset, **overrides)
    inputs = keras.Input((None, None, 3), name="blurred")
    head = _conv(cfg, cfg.bottleneck_channels, 3, "head_conv")(inputs)

    stack = head
    block = head
    for k in range(1, cfg.n_blocks + 1):
        block = dense_block(stack, cfg, k)
        # model.py concatenates d_1 .. d_9 onto the stack and hands only d_10 to the tail;
        # models2.lua's JoinTable gives the tail the whole stack, d_10 included.
        if k < cfg.n_blocks or cfg.tail_input == "all":
            stack = layers.Concatenate(name=f"dense{k}_concat")([stack, block])
    tail = stack if cfg.tail_input == "all" else block

    # The tail: LeakyReLU -> conv1x1(bottleneck) -> BN [-> Dropout] (model.py / LastLayer).
    x = _lrelu(cfg, "tail_lrelu")(tail)
    x = _conv(cfg, cfg.bottleneck_channels, 1, "tail_conv1x1")(x)
    x = _bn(cfg, "tail_bn")(x)
    if cfg.tail_dropout > 0:
        x = layers.Dropout(cfg.tail_dropout, name="tail_dropout")(x)

    # The global skip connection from the head.
    if cfg.global_skip == "concat":
        x = layers.Concatenate(name="global_skip")([head, x])  # model.py concatenate([h, x])
    else:
        x = layers.Add(name="global_skip")([x, head])  # models2.lua CAddTable

    x = _conv(cfg, cfg.growth_rate, 3, "fuse_conv")(x)
    x = _lrelu(cfg, "fuse_lrelu")(x)  # model.py: "PReLU can't be used" (needs a fixed shape)
    x = _conv(cfg, 3, 3, "output_conv")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="output_tanh")(x)
    return keras.Model(inputs, outputs, name="dgf_generator")


# ------------------------------------------------------------------------------------ discriminators
def _discriminator_inputs(cfg: Config, size):
    shape = (size, size, 3)
    image = keras.Input(shape, name="image")
    if not cfg.conditional:
        return image, image
    blurred = keras.Input(shape, name="blurred")
    # train.lua: real_AB = torch.cat(real_A, real_B, 2), the blurred input first.
    x = layers.Concatenate(name="condition_concat")([blurred, image])
    return [blurred, image], x


def _patch_average_discriminator(cfg: Config) -> keras.Model:
    inputs, x = _discriminator_inputs(cfg, cfg.crop_size)
    x = SplitPatches(cfg.patch_size, name="split_patches")(x)
    for i in range(1, cfg.d_layers + 1):
        # model.py: channel_rate, 2 * channel_rate, 4 * channel_rate, 4 * channel_rate.
        filters = cfg.d_channels * min(2 ** (i - 1), 4)
        x = _conv(cfg, filters, 3, f"patch_conv{i}", strides=2)(x)
        x = _bn(cfg, f"patch_bn{i}")(x)
        x = _lrelu(cfg, f"patch_lrelu{i}")(x)
    x = layers.Flatten(name="patch_flatten")(x)
    x = layers.Dense(1, kernel_initializer=_kernel_init(cfg), name="patch_dense")(x)
    x = layers.Activation("sigmoid", dtype="float32", name="patch_sigmoid")(x)
    outputs = MeanPatchScores(cfg.num_patches, dtype="float32", name="patch_mean")(x)
    return keras.Model(inputs, outputs, name="dgf_discriminator")


def _patchgan_discriminator(cfg: Config) -> keras.Model:
    inputs, x = _discriminator_inputs(cfg, None)

    def conv4(x, filters, strides, name):
        # Torch SpatialConvolution(k4, stride s, pad 1): explicit zero padding, then "valid".
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        return _conv(cfg, filters, 4, name, strides=strides, padding="valid")(x)

    x = conv4(x, cfg.d_channels, 2, "d_conv1")
    x = _lrelu(cfg, "d_lrelu1")(x)
    for n in range(1, cfg.d_layers + 1):
        # models2.lua: nf_mult = min(2^n, 8); the last of these (n = n_layers) is also stride 2.
        x = conv4(x, cfg.d_channels * min(2**n, 8), 2, f"d_conv{n + 1}")
        x = _bn(cfg, f"d_bn{n + 1}")(x)
        x = _lrelu(cfg, f"d_lrelu{n + 1}")(x)
    x = conv4(x, 1, 1, "d_conv_out")
    outputs = layers.Activation("sigmoid", dtype="float32", name="d_sigmoid")(x)
    return keras.Model(inputs, outputs, name="dgf_discriminator")


def build_discriminator(preset: str | Config = DEFAULT_PRESET, **overrides) -> keras.Model:
    """The discriminator of the preset; inputs in [-1, 1], probabilities in (0, 1) out (float32).

    ``patch_average``: ``image`` (B, crop_size, crop_size, 3) -> (B, 1).
    ``patchgan``: ``image`` (B, H, W, 3) -> (B, H/16 - 1, W/16 - 1, 1) for d_layers=3.
    With ``conditional=True`` the inputs are ``[blurred, image]``.
    """
    cfg = get_config(preset, **overrides)
    if cfg.discriminator == "patch_average":
        return _patch_average_discriminator(cfg)
    return _patchgan_discriminator(cfg)
