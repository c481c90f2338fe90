"""DeblurGAN generator and discriminator (Kupyn et al. 2018), functional Keras 3 builders.

Two recipes (``deblur_gan/config.py``):

* ``paper``: the official PyTorch ResnetGenerator / NLayerDiscriminator (KupynOrest/DeblurGAN before
  PR #134), padding placed exactly as PyTorch does so that converted weights give the same numbers:
  ``Conv2d(k3, s2, p1)`` = ZeroPadding2D(1) + valid conv; ``ConvTranspose2d(k3, s2, p1,
  output_padding=1)`` = valid Conv2DTranspose + Cropping2D(((1, 0), (1, 0))); the critic's
  ``Conv2d(k4, p2)`` = ZeroPadding2D(2) + valid conv.
* ``keras-port``: RaphaelMeudec/deblur-gan (BatchNorm, TF 'same' padding, (tanh + x) / 2, a
  Dense(1024, tanh) -> Dense(1, sigmoid) discriminator head). ``upsampling="nearest"`` builds the
  repository's later UpSampling2D + conv generator, whose released ``generator.h5`` loads with
  :func:`load_keras_port_h5`.

Value ranges: generator input and output are RGB in [-1, 1]; the ``paper`` critic returns an
unbounded score map, the ``keras-port`` discriminator one probability in (0, 1) per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
from keras import layers

from common.errors import UserError
from common.layers import ClipValues, ExactBatchNormalization, NarrowConv2D, ReflectionPadding2D, instance_norm
from common.weights import conv_kernel_from_torch
from deblur_gan.config import DEFAULT_PRESET, Config, get_config

__all__ = [
    "build_generator",
    "build_discriminator",
    "discriminator_output_size",
    "pytorch_weight_map",
    "load_pytorch_weights",
    "load_keras_port_h5",
]


# ----------------------------------------------------------------------------- helpers
def _kernel_init(cfg: Config):
    # official weights_init: Conv* weights ~ N(0, 0.02); the Keras port keeps Glorot uniform
    if cfg.init_std is None:
        return "glorot_uniform"
    return keras.initializers.RandomNormal(mean=0.0, stddev=cfg.init_std)


def _conv(cfg: Config, filters: int, kernel: int, name: str, *, strides: int = 1,
          padding: str = "valid", use_bias: bool = True, dtype=None):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
        kernel_initializer=_kernel_init(cfg), name=name, dtype=dtype,
    )


def _norm(cfg: Config, name: str):
    if cfg.norm == "instance":
        # InstanceNorm2d(affine=False, eps=1e-5): per image and channel, no weights
        return instance_norm(name=name, epsilon=1e-5)
    # Keras port: BatchNormalization() with Keras' defaults (momentum 0.99, epsilon 1e-3);
    # official weights_init draws BN weights from N(1, 0.02) when it is the one initialising
    gamma = "ones" if cfg.init_std is None else keras.initializers.RandomNormal(1.0, cfg.init_std)
    # Keras' BatchNormalization with exact second derivatives, so --gp-weight works on this critic
    return ExactBatchNormalization(momentum=0.99, epsilon=1e-3, gamma_initializer=gamma, name=name)


def _check_size(size, cfg: Config, what: str) -> tuple:
    if size is None:
        return (None, None)
    try:
        height, width = (None if s is None else int(s) for s in size)
    except (TypeError, ValueError):
        raise UserError(f"deblur_gan/model.py: {what} input_size={size!r} is not (height, width)") from None
    return (height, width)


def _downsample(x, cfg: Config, filters: int, index: int):
    """Conv(k3, s2) -> norm -> ReLU. PyTorch pads (1, 1); TF 'same' pads (0, 1) on even sizes."""
    prefix = f"down{index}"
    if cfg.conv_padding == "pytorch":
        x = layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        x = _conv(cfg, filters, 3, f"{prefix}_conv", strides=2, use_bias=cfg.conv_bias)(x)
    else:
        x = _conv(cfg, filters, 3, f"{prefix}_conv", strides=2, padding="same", use_bias=cfg.conv_bias)(x)
    x = _norm(cfg, f"{prefix}_norm")(x)
    return layers.ReLU(name=f"{prefix}_relu")(x)


def _upsample(x, cfg: Config, filters: int, index: int):
    """x2 upsampling -> norm -> ReLU, in one of three alignments (module docstring)."""
    prefix = f"up{index}"
    if cfg.upsampling == "nearest":
        # Keras port after cccba77: UpSampling2D() -> Conv2D(k3, 'same')
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}_upsample")(x)
        x = _conv(cfg, filters, 3, f"{prefix}_conv", padding="same", use_bias=cfg.conv_bias)(x)
    elif cfg.conv_padding == "pytorch":
        # ConvTranspose2d(k3, s2, p1, output_padding=1) keeps rows/cols 1..2H of the full
        # (2H + 1)-sized transposed convolution
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="valid", use_bias=cfg.conv_bias,
            kernel_initializer=_kernel_init(cfg), name=f"{prefix}_conv",
        )(x)
        x = layers.Cropping2D(((1, 0), (1, 0)), name=f"{prefix}_crop")(x)
    else:
        # the tutorial: Conv2DTranspose(k3, strides=2, padding='same') keeps rows/cols 0..2H-1
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=cfg.conv_bias,
            kernel_initializer=_kernel_init(cfg), name=f"{prefix}_conv",
        )(x)
    x = _norm(cfg, f"{prefix}_norm")(x)
    return layers.ReLU(name=f"{prefix}_relu")(x)


def _res_block(x, cfg: Config, filters: int, index: int):
    """ResnetBlock: x + [pad, conv3, norm, ReLU, (dropout), pad, conv3, norm](x); no ReLU after."""
    prefix = f"block{index}"
    y = ReflectionPadding2D(1, name=f"{prefix}_pad1")(x)
    y = _conv(cfg, filters, 3, f"{prefix}_conv1", use_bias=cfg.conv_bias)(y)
    y = _norm(cfg, f"{prefix}_norm1")(y)
    y = layers.ReLU(name=f"{prefix}_relu")(y)
    if cfg.dropout > 0:
        y = layers.Dropout(cfg.dropout, name=f"{prefix}_dropout")(y)
    y = ReflectionPadding2D(1, name=f"{prefix}_pad2")(y)
    y = _conv(cfg, filters, 3, f"{prefix}_conv2", use_bias=cfg.conv_bias)(y)
    y = _norm(cfg, f"{prefix}_norm2")(y)
    return layers.Add(name=f"{prefix}_add")([x, y])


# ----------------------------------------------------------------------------- generator
def build_generator(preset: str | Config = DEFAULT_PRESET, *, input_size=None,
                    name: str = "deblurgan_generator", **overrides) -> keras.Model:
    """The DeblurGAN ResNet generator.

    Args:
        preset: preset name (``"paper"``, ``"keras-port"``) or a :class:`~deblur_gan.config.Config`.
        input_size: ``(height, width)`` or None for any size. Both sides must be multiples of
            ``2 ** n_downsampling`` (4), or the global skip connection cannot add; callers pad
            other sizes (``common.inference`` does).
        **overrides: Config fields, e.g. ``upsampling="nearest"``, ``ngf=8``.

    Returns:
        ``keras.Model`` mapping a blurred RGB batch in [-1, 1], shape (B, H, W, 3), to the restored
        batch in [-1, 1], same shape, float32 under any dtype policy. Dropout is active only when
        called with ``training=True`` (the official code also keeps it on at test time).
    """
    cfg = get_config(preset, **overrides)
    height, width = _check_size(input_size, cfg, "generator")
    for side in (height, width):
        if side is not None and side % cfg.multiple:
            raise UserError(
                f"deblur_gan/model.py: generator input_size={input_size} must have sides divisible by "
                f"{cfg.multiple}; pad the image (common.inference pads automatically) or use input_size=None"
            )

    inputs = keras.Input((height, width, 3), name="blurred")
    # ReflectionPad2d(3) -> Conv2d(3 -> ngf, k7) -> norm -> ReLU
    x = ReflectionPadding2D(3, name="pad_in")(inputs)
    x = _conv(cfg, cfg.ngf, 7, "conv_in", use_bias=cfg.conv_bias)(x)
    x = _norm(cfg, "norm_in")(x)
    x = layers.ReLU(name="relu_in")(x)

    for i in range(cfg.n_downsampling):
        x = _downsample(x, cfg, cfg.ngf * 2 ** (i + 1), i + 1)

    filters = cfg.ngf * 2 ** cfg.n_downsampling
    for i in range(cfg.n_blocks):
        x = _res_block(x, cfg, filters, i + 1)

    for i in range(cfg.n_downsampling):
        x = _upsample(x, cfg, cfg.ngf * 2 ** (cfg.n_downsampling - i - 1), i + 1)

    # ReflectionPad2d(3) -> Conv2d(ngf -> 3, k7, bias) -> Tanh
    x = ReflectionPadding2D(3, name="pad_out")(x)
    # NarrowConv2D: a Conv2D with the same weights, faster for 3 output channels (common/layers.py)
    x = NarrowConv2D(3, 7, use_bias=True, kernel_initializer=_kernel_init(cfg), name="conv_out")(x)
    x = layers.Activation("tanh", dtype="float32", name="tanh")(x)

    if cfg.global_residual == "clamp":
        # official --learn_residual: clamp(input + output, -1, 1)
        x = layers.Add(dtype="float32", name="residual_add")([x, inputs])
        x = ClipValues(-1.0, 1.0, dtype="float32", name="clamp")(x)
    elif cfg.global_residual == "average":
        # Keras port: Add([x, inputs]) -> z / 2 (stays in [-1, 1] without clipping)
        x = layers.Add(dtype="float32", name="residual_add")([x, inputs])
        x = layers.Rescaling(0.5, dtype="float32", name="average")(x)
    return keras.Model(inputs, x, name=name)


# ----------------------------------------------------------------------------- discriminator
def _d_filters(cfg: Config) -> list[tuple[int, int]]:
    """(filters, stride) of the convs between the first conv and the 1-channel output conv."""
    start = 0 if cfg.d_extra_layer else 1  # Keras port: range(n_layers); official: range(1, n_layers)
    plan = [(cfg.ndf * min(2 ** n, 8), 2) for n in range(start, cfg.d_layers)]
    plan.append((cfg.ndf * min(2 ** cfg.d_layers, 8), 1))
    return plan


def discriminator_output_size(size: tuple[int, int], preset: str | Config = DEFAULT_PRESET,
                              **overrides) -> tuple[int, int]:
    """Spatial size of the critic's score map for an input of ``size`` (before any dense head)."""
    cfg = get_config(preset, **overrides)
    strides = [2] + [s for _, s in _d_filters(cfg)] + [1]
    out = []
    for side in size:
        for stride in strides:
            if cfg.conv_padding == "pytorch":
                side = (side + 2 * 2 - 4) // stride + 1  # k4, p2
            else:
                side = -(-side // stride)  # 'same'
        out.append(side)
    return tuple(out)


def build_discriminator(preset: str | Config = DEFAULT_PRESET, *, input_size=None,
                        name: str = "deblurgan_discriminator", **overrides) -> keras.Model:
    """The DeblurGAN critic: sees only sharp or restored images (3 channels, not conditioned on A).

    Args:
        preset: preset name or Config.
        input_size: ``(height, width)``. A ``patch`` head takes any size (None); the Keras port's
            ``dense`` head needs a fixed size, by default the config's ``train_size`` (256 x 256).
        **overrides: Config fields.

    Returns:
        ``keras.Model`` from images in [-1, 1], (B, H, W, 3), to float32 scores:
        ``patch`` head (paper): (B, h, w, 1) unbounded map (35 x 35 for 256 x 256), a sigmoid only if
        ``d_sigmoid``; ``dense`` head (keras-port): (B, 1), in (0, 1) with ``d_sigmoid``.
    """
    cfg = get_config(preset, **overrides)
    height, width = _check_size(input_size, cfg, "discriminator")
    if cfg.d_head == "dense":
        if height is None or width is None:
            if cfg.train_size is None:
                raise UserError(
                    "deblur_gan/model.py: the dense discriminator head needs a fixed input size; "
                    "set crop or resize in the config, or pass input_size=(height, width)"
                )
            height, width = cfg.train_size

    def conv(x, filters, stride, conv_name, use_bias, dtype=None):
        if cfg.conv_padding == "pytorch":
            # NLayerDiscriminator: kw = 4, padw = ceil((4 - 1) / 2) = 2
            x = layers.ZeroPadding2D(2, name=f"{conv_name}_pad")(x)
            return _conv(cfg, filters, 4, conv_name, strides=stride, use_bias=use_bias, dtype=dtype)(x)
        return _conv(cfg, filters, 4, conv_name, strides=stride, padding="same", use_bias=use_bias,
                     dtype=dtype)(x)

    inputs = keras.Input((height, width, 3), name="image")
    # Conv(3 -> ndf, k4, s2, bias) -> LeakyReLU(0.2), no norm
    x = conv(inputs, cfg.ndf, 2, "conv1", True)
    x = layers.LeakyReLU(0.2, name="lrelu1")(x)
    for k, (filters, stride) in enumerate(_d_filters(cfg), start=2):
        x = conv(x, filters, stride, f"conv{k}", cfg.conv_bias)
        x = _norm(cfg, f"norm{k}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{k}")(x)

    if cfg.d_head == "patch":
        # Conv(-> 1, k4, s1): the PatchGAN score map, computed in float32
        x = conv(x, 1, 1, "conv_out", True, dtype="float32")
        if cfg.d_sigmoid:
            x = layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    else:
        x = conv(x, 1, 1, "conv_out", True)
        # Keras port: Flatten -> Dense(1024, tanh) -> Dense(1, sigmoid)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(cfg.d_dense_units, activation="tanh", name="dense1")(x)
        x = layers.Dense(1, activation="sigmoid" if cfg.d_sigmoid else None, dtype="float32",
                         name="dense_out")(x)
    return keras.Model(inputs, x, name=name)


# ----------------------------------------------------------------------------- weight import
def pytorch_weight_map(preset: str | Config = DEFAULT_PRESET, which: str = "generator",
                       **overrides) -> dict[str, str]:
    """Keras layer name -> PyTorch ``state_dict`` prefix of the official (pre-#134) model.

    The generator is ``ResnetGenerator.model`` (an nn.Sequential): with the default 2 down/up
    samplings the 24 weighted layers are ``model.1``, ``.4``, ``.7``, ``model.{10..18}.conv_block.{1,6}``
    (``.5`` without dropout), ``model.19``, ``.22``, ``.26``. The discriminator (NLayerDiscriminator)
    uses ``model.0, .2, .5, .8, .11`` for n_layers 3. Norm layers carry no weights (InstanceNorm
    without affine); only the conv layers are mapped, so this requires ``norm="instance"``.
    """
    cfg = get_config(preset, **overrides)
    if cfg.norm != "instance" or cfg.conv_padding != "pytorch" or cfg.upsampling != "transpose":
        raise UserError(
            "deblur_gan/model.py: official PyTorch weights need the paper architecture "
            "(norm='instance', conv_padding='pytorch', upsampling='transpose'); use preset='paper'"
        )
    mapping: dict[str, str] = {}
    if which == "generator":
        mapping["conv_in"] = "model.1"
        index = 4  # after pad, conv, norm, relu
        for i in range(cfg.n_downsampling):
            mapping[f"down{i + 1}_conv"] = f"model.{index}"
            index += 3  # conv, norm, relu
        second = 6 if cfg.dropout > 0 else 5  # conv_block: pad conv norm relu [dropout] pad conv norm
        for i in range(cfg.n_blocks):
            mapping[f"block{i + 1}_conv1"] = f"model.{index}.conv_block.1"
            mapping[f"block{i + 1}_conv2"] = f"model.{index}.conv_block.{second}"
            index += 1
        for i in range(cfg.n_downsampling):
            mapping[f"up{i + 1}_conv"] = f"model.{index}"
            index += 3
        mapping["conv_out"] = f"model.{index + 1}"  # after ReflectionPad2d(3)
    elif which == "discriminator":
        if cfg.d_head != "patch" or cfg.d_extra_layer:
            raise UserError("deblur_gan/model.py: official discriminator weights need the paper discriminator")
        mapping["conv1"] = "model.0"
        index = 2  # after conv, LeakyReLU
        for k in range(2, len(_d_filters(cfg)) + 2):
            mapping[f"conv{k}"] = f"model.{index}"
            index += 3  # conv, norm, LeakyReLU
        mapping["conv_out"] = f"model.{index}"
    else:
        raise UserError(f"deblur_gan/model.py: which={which!r}; use 'generator' or 'discriminator'")
    return mapping


def load_pytorch_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray],
                         preset: str | Config = DEFAULT_PRESET, which: str = "generator",
                         **overrides) -> None:
    """Copy an official PyTorch ``state_dict`` (numpy arrays, e.g. from an ``.npz``) into ``model``.

    Conv2d weights ``[out, in, kh, kw]`` and ConvTranspose2d weights ``[in, out, kh, kw]`` both
    become Keras kernels by ``transpose(2, 3, 1, 0)``; biases are copied. InstanceNorm running
    statistics (``running_mean``/``running_var``/``num_batches_tracked``) are ignored: the paper
    model always normalises with per-image statistics. A ``module.`` prefix (DataParallel) is removed.
    """
    arrays = {k[len("module."):] if k.startswith("module.") else k: np.asarray(v)
              for k, v in state_dict.items()}
    for layer_name, prefix in pytorch_weight_map(preset, which, **overrides).items():
        layer = model.get_layer(layer_name)
        weight_key, bias_key = f"{prefix}.weight", f"{prefix}.bias"
        if weight_key not in arrays:
            raise UserError(
                f"deblur_gan/model.py: the PyTorch weights have no {weight_key!r} (for layer {layer_name}); "
                "they are not the official pre-2019 DeblurGAN model"
            )
        values = [conv_kernel_from_torch(arrays[weight_key])]
        if layer.use_bias:
            values.append(arrays[bias_key])
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise UserError(
                f"deblur_gan/model.py: {weight_key} has shape {arrays[weight_key].shape}, which does not fit "
                f"layer {layer_name} {expected}; check ngf/ndf/n_blocks/dropout of the converted model"
            )
        layer.set_weights(values)


def load_keras_port_h5(model: keras.Model, path: str | Path) -> None:
    """Load RaphaelMeudec/deblur-gan's ``generator.h5`` (Keras 2.1 ``save_weights``) into ``model``.

    Keras 2 matched legacy files by the order of the layers that hold weights; this generator creates
    them in the port's order (stem conv/BN, 2 down conv/BN, per block conv/BN/conv/BN, 2 up conv/BN,
    final conv), and every shape is checked. The released file (15f3d36) needs
    ``upsampling="nearest"``; the March 2018 file (54f5073) the tutorial's ``upsampling="transpose"``
    (``deblur_gan.convert.detect_keras_port`` tells them apart).
    """
    from common.upstream_io import read_keras2_h5
    from common.weights import assign_in_order

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file; download generator.h5 from RaphaelMeudec/deblur-gan")
    weights = read_keras2_h5(path)
    assign_in_order(model, list(weights.layers.items()), path,
                    fix="the current generator.h5 needs preset='keras-port' with upsampling='nearest', "
                        "the March 2018 one upsampling='transpose' (or load it without --preset: "
                        "the variant is detected)")
