"""DeblurGAN builders: parameter counts, shapes, serialisation, mixed precision, and the exact
equivalence of the `paper` preset with the official PyTorch layers (numpy transcription below)."""

from __future__ import annotations

import re

import h5py
import keras
import numpy as np
import pytest

from common.errors import UserError
from deblur_gan.model import (
    build_discriminator,
    build_generator,
    discriminator_output_size,
    load_keras_port_h5,
    load_pytorch_weights,
    pytorch_weight_map,
)

TINY = dict(ngf=4, ndf=4, n_blocks=2)


def _counts(model):
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return model.count_params(), non_trainable


@pytest.fixture
def float32_policy_after():
    yield
    keras.config.set_dtype_policy("float32")


# ----------------------------------------------------------------------------- counts (issue #3)
def test_paper_parameter_counts():
    assert _counts(build_generator("paper")) == (11_378_179, 0)
    assert _counts(build_discriminator("paper")) == (2_764_737, 0)


@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
def test_keras_port_parameter_counts(upsampling):
    # 10,496 = mean + variance of 23 BatchNorm layers (5,248 channels)
    assert _counts(build_generator("keras-port", upsampling=upsampling)) == (11_399_171, 10_496)


def test_keras_port_discriminator_count_at_256():
    d = build_discriminator("keras-port", input_size=(256, 256))
    assert _counts(d) == (3_098_370, 1_920)
    assert d.output_shape == (None, 1)


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("preset", ["paper", "keras-port"])
@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
def test_generator_any_multiple_of_four(preset, upsampling):
    g = build_generator(preset, upsampling=upsampling, **TINY)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 20, 28, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(g(x, training=False))
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.min() >= -1.0 and y.max() <= 1.0


def test_generator_rejects_sizes_not_divisible_by_four():
    with pytest.raises(UserError, match="divisible by 4"):
        build_generator("paper", input_size=(30, 32), **TINY)


@pytest.mark.parametrize("size", [(256, 256), (37, 53), (20, 31)])
def test_patch_critic_map_size_matches_pytorch(size):
    d = build_discriminator("paper", ndf=4)
    out = d(np.zeros((1, *size, 3), "float32"))
    # PyTorch: out = floor((in + 2 * 2 - 4) / stride) + 1 for strides 2, 2, 2, 1, 1
    expected = []
    for side in size:
        for stride in (2, 2, 2, 1, 1):
            side = (side + 4 - 4) // stride + 1
        expected.append(side)
    assert tuple(out.shape) == (1, *expected, 1)
    assert discriminator_output_size(size, "paper") == tuple(expected)
    if size == (256, 256):
        assert tuple(expected) == (35, 35)


def test_keras_port_discriminator_probability_and_fixed_size():
    d = build_discriminator("keras-port", input_size=(64, 48), ndf=4, d_dense_units=8)
    y = keras.ops.convert_to_numpy(d(np.random.default_rng(1).normal(size=(3, 64, 48, 3)).astype("float32")))
    assert y.shape == (3, 1) and np.all((y > 0) & (y < 1))
    # an extra stride-2 layer: 64x48 -> 4x3 score map before the dense head
    assert d.get_layer("flatten").output.shape[-1] == 4 * 3
    assert discriminator_output_size((256, 256), "keras-port") == (16, 16)
    with pytest.raises(UserError, match="fixed input size"):
        build_discriminator("keras-port", crop=None, resize=None)


# ----------------------------------------------------------------------------- serialisation
@pytest.mark.parametrize("preset", ["paper", "keras-port"])
def test_keras_round_trip(tmp_path, preset):
    g = build_generator(preset, **TINY)
    d = build_discriminator(preset, input_size=(32, 32), ndf=4, d_dense_units=8)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    for model in (g, d):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model(x, training=False)),
            keras.ops.convert_to_numpy(loaded(x, training=False)),
        )
        assert [l.name for l in loaded.layers] == [l.name for l in model.layers]


def test_every_weighted_layer_has_an_explicit_name():
    for model in (build_generator("paper", **TINY), build_discriminator("keras-port", ndf=4, crop=(32, 32))):
        for layer in model.layers:
            if layer.weights:
                assert not re.fullmatch(r"(conv2d|conv2d_transpose|dense|batch_normalization|group_normalization)(_\d+)?",
                                        layer.name), layer.name


# ----------------------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("preset", ["paper", "keras-port"])
def test_mixed_bfloat16_outputs_float32(preset, float32_policy_after):
    keras.config.set_dtype_policy("mixed_bfloat16")
    g = build_generator(preset, **TINY)
    d = build_discriminator(preset, input_size=(32, 32), ndf=4, d_dense_units=8)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    assert g.get_layer("block1_conv1").compute_dtype == "bfloat16"
    y = g(x, training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert keras.backend.standardize_dtype(d(y).dtype) == "float32"
    assert np.all(np.abs(keras.ops.convert_to_numpy(y)) <= 1.0)


# ----------------------------------------------------------------------------- numpy transcription
# of the official PyTorch modules (NCHW weights, NHWC activations, float64).
def _np_conv(x, w, b, stride=1, pad=0):
    """torch.nn.Conv2d: w [out, in, kh, kw], zero padding ``pad`` on each side."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    _, kh, kw = w.shape[1:]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], out_h, out_w, w.shape[0]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            y += patch @ w[:, :, i, j].T
    return y + b


def _np_conv_transpose(x, w, b, stride=2, pad=1, output_padding=1):
    """torch.nn.ConvTranspose2d: w [in, out, kh, kw]."""
    n, h, wd, _ = x.shape
    k = w.shape[2]
    full = np.zeros((n, (h - 1) * stride + k + output_padding, (wd - 1) * stride + k + output_padding, w.shape[1]))
    for i in range(k):
        for j in range(k):
            full[:, i:i + stride * h:stride, j:j + stride * wd:stride] += x @ w[:, :, i, j]
    out_h = (h - 1) * stride - 2 * pad + k + output_padding
    out_w = (wd - 1) * stride - 2 * pad + k + output_padding
    return full[:, pad:pad + out_h, pad:pad + out_w] + b


def _np_instance_norm(x):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5)


def _reflect(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def _relu(x):
    return np.maximum(x, 0)


def _lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def _random_state_dict(shapes, rng):
    state = {}
    for key, shape in shapes.items():
        state[f"{key}.weight"] = rng.normal(0, 0.2, shape).astype("float32")
        state[f"{key}.bias"] = rng.normal(0, 0.2, shape[1] if "transpose" in key else shape[0]).astype("float32")
    return state


def test_paper_generator_equals_official_pytorch_network():
    """ResnetGenerator (pre-#134, learn_residual, eval-mode dropout) transcribed in numpy, with
    weights in PyTorch layout loaded through load_pytorch_weights."""
    ngf, blocks = 4, 2
    rng = np.random.default_rng(4)
    t = {"model.1": (ngf, 3, 7, 7), "model.4": (2 * ngf, ngf, 3, 3), "model.7": (4 * ngf, 2 * ngf, 3, 3)}
    for b in range(blocks):
        t[f"model.{10 + b}.conv_block.1"] = (4 * ngf, 4 * ngf, 3, 3)
        t[f"model.{10 + b}.conv_block.6"] = (4 * ngf, 4 * ngf, 3, 3)
    up1, up2, last = f"model.{10 + blocks}", f"model.{13 + blocks}", f"model.{17 + blocks}"
    shapes = dict(t)
    shapes[up1 + "#transpose"] = (4 * ngf, 2 * ngf, 3, 3)  # ConvTranspose2d: [in, out, kh, kw]
    shapes[up2 + "#transpose"] = (2 * ngf, ngf, 3, 3)
    shapes[last] = (3, ngf, 7, 7)
    state = {k.replace("#transpose", ""): v for k, v in _random_state_dict(shapes, rng).items()}
    state[f"module.ignored.running_mean"] = np.zeros(3)  # stray keys are ignored

    g = build_generator("paper", ngf=ngf, n_blocks=blocks)
    assert set(pytorch_weight_map("paper", ngf=ngf, n_blocks=blocks).values()) == set(t) | {up1, up2, last}
    load_pytorch_weights(g, state, "paper", ngf=ngf, n_blocks=blocks)

    x = rng.uniform(-1, 1, (2, 12, 20, 3))
    W = lambda k: (state[f"{k}.weight"].astype(np.float64), state[f"{k}.bias"].astype(np.float64))  # noqa: E731
    h = _relu(_np_instance_norm(_np_conv(_reflect(x, 3), *W("model.1"))))
    h = _relu(_np_instance_norm(_np_conv(h, *W("model.4"), stride=2, pad=1)))
    h = _relu(_np_instance_norm(_np_conv(h, *W("model.7"), stride=2, pad=1)))
    for b in range(blocks):
        y = _relu(_np_instance_norm(_np_conv(_reflect(h, 1), *W(f"model.{10 + b}.conv_block.1"))))
        y = _np_instance_norm(_np_conv(_reflect(y, 1), *W(f"model.{10 + b}.conv_block.6")))
        h = h + y
    h = _relu(_np_instance_norm(_np_conv_transpose(h, *W(up1))))
    h = _relu(_np_instance_norm(_np_conv_transpose(h, *W(up2))))
    h = np.tanh(_np_conv(_reflect(h, 3), *W(last)))
    expected = np.clip(x + h, -1, 1)

    got = keras.ops.convert_to_numpy(g(x.astype("float32"), training=False))
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_paper_discriminator_equals_official_pytorch_network():
    ndf = 4
    rng = np.random.default_rng(5)
    shapes = {"model.0": (ndf, 3, 4, 4), "model.2": (2 * ndf, ndf, 4, 4), "model.5": (4 * ndf, 2 * ndf, 4, 4),
              "model.8": (8 * ndf, 4 * ndf, 4, 4), "model.11": (1, 8 * ndf, 4, 4)}
    state = _random_state_dict(shapes, rng)
    d = build_discriminator("paper", ndf=ndf)
    load_pytorch_weights(d, state, "paper", which="discriminator", ndf=ndf)
    x = rng.uniform(-1, 1, (2, 27, 21, 3))
    W = lambda k: (state[f"{k}.weight"].astype(np.float64), state[f"{k}.bias"].astype(np.float64))  # noqa: E731
    h = _lrelu(_np_conv(x, *W("model.0"), stride=2, pad=2))
    h = _lrelu(_np_instance_norm(_np_conv(h, *W("model.2"), stride=2, pad=2)))
    h = _lrelu(_np_instance_norm(_np_conv(h, *W("model.5"), stride=2, pad=2)))
    h = _lrelu(_np_instance_norm(_np_conv(h, *W("model.8"), stride=1, pad=2)))
    expected = _np_conv(h, *W("model.11"), stride=1, pad=2)
    got = keras.ops.convert_to_numpy(d(x.astype("float32")))
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_load_pytorch_weights_reports_wrong_checkpoints():
    g = build_generator("paper", **TINY)
    with pytest.raises(UserError, match="model.1.weight"):
        load_pytorch_weights(g, {}, "paper", **TINY)
    with pytest.raises(UserError, match="preset='paper'"):
        pytorch_weight_map("keras-port")


# ----------------------------------------------------------------------------- Keras port weights
def _write_legacy_generator_h5(path, ngf, blocks, upsampling, rng):
    """A file laid out like deblur-gan's generator.h5 (Keras 2.1 save_weights), layers in the port's
    creation order, auto-named as Keras 2 did, with a few weightless layers in between."""
    plan = [("conv", (7, 7, 3, ngf)), ("bn", ngf), ("conv", (3, 3, ngf, 2 * ngf)), ("bn", 2 * ngf),
            ("conv", (3, 3, 2 * ngf, 4 * ngf)), ("bn", 4 * ngf)]
    plan += [("conv", (3, 3, 4 * ngf, 4 * ngf)), ("bn", 4 * ngf)] * 2 * blocks
    if upsampling == "nearest":
        plan += [("conv", (3, 3, 4 * ngf, 2 * ngf)), ("bn", 2 * ngf), ("conv", (3, 3, 2 * ngf, ngf)), ("bn", ngf)]
    else:  # Conv2DTranspose kernel: (kh, kw, filters, in)
        plan += [("convt", (3, 3, 2 * ngf, 4 * ngf)), ("bn", 2 * ngf), ("convt", (3, 3, ngf, 2 * ngf)), ("bn", ngf)]
    plan += [("conv", (7, 7, ngf, 3))]
    counters = {"conv": 0, "convt": 0, "bn": 0}
    prefixes = {"conv": "conv2d", "convt": "conv2d_transpose", "bn": "batch_normalization"}
    names, values = ["input_1", "reflection_padding2d_1"], []
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.3"
        f.attrs["backend"] = b"tensorflow"
        for name in names:
            f.create_group(name).attrs["weight_names"] = np.array([], dtype="S1")
        for kind, shape in plan:
            counters[kind] += 1
            name = f"{prefixes[kind]}_{counters[kind]}"
            group = f.create_group(name)
            if kind == "bn":
                arrays = {"gamma": rng.normal(size=shape), "beta": rng.normal(size=shape),
                          "moving_mean": rng.normal(size=shape), "moving_variance": rng.uniform(0.5, 2, shape)}
            else:
                filters = shape[2] if kind == "convt" else shape[3]
                arrays = {"kernel": rng.normal(size=shape), "bias": rng.normal(size=filters)}
            weight_names = [f"{name}/{k}:0" for k in arrays]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for weight_name, array in zip(weight_names, arrays.values()):
                group.create_dataset(weight_name, data=array.astype("float32"))
            names.append(name)
            values.append([a.astype("float32") for a in arrays.values()])
            if kind == "bn":
                names.append(f"activation_{len(names)}")
                f.create_group(names[-1]).attrs["weight_names"] = np.array([], dtype="S1")
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
    return values


@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_keras_port_loads_legacy_h5_in_topological_order(tmp_path, upsampling):
    ngf, blocks = 2, 2
    path = tmp_path / "generator.h5"
    values = _write_legacy_generator_h5(path, ngf, blocks, upsampling, np.random.default_rng(6))
    g = build_generator("keras-port", upsampling=upsampling, ngf=ngf, n_blocks=blocks)
    load_keras_port_h5(g, path)
    order = ["conv_in", "norm_in", "down1_conv", "down1_norm", "down2_conv", "down2_norm"]
    for b in range(1, blocks + 1):
        order += [f"block{b}_conv1", f"block{b}_norm1", f"block{b}_conv2", f"block{b}_norm2"]
    order += ["up1_conv", "up1_norm", "up2_conv", "up2_norm", "conv_out"]
    assert len(order) == len(values)
    for name, expected in zip(order, values):
        for got, want in zip(g.get_layer(name).get_weights(), expected):
            np.testing.assert_array_equal(got, want)


def test_keras_port_h5_with_the_other_upsampling_is_a_user_error(tmp_path):
    path = tmp_path / "generator.h5"
    _write_legacy_generator_h5(path, 2, 1, "nearest", np.random.default_rng(7))
    g = build_generator("keras-port", upsampling="transpose", ngf=2, n_blocks=1)
    with pytest.raises(UserError, match="upsampling='nearest'"):
        load_keras_port_h5(g, path)
    with pytest.raises(UserError, match="no such weights file"):
        load_keras_port_h5(g, tmp_path / "missing.h5")
