"""Tests for dgf_deblur.model: parameter counts, shapes, names, save/load, mixed precision."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from dgf_deblur.config import get_config
from dgf_deblur.model import build_discriminator, build_generator

# Tiny versions of both presets for tests that run the models (the counts need full size).
TINY_G = dict(growth_rate=4, bottleneck_channels=8, n_blocks=3, dilations=(1, 2, 1))
TINY_D_KERAS = dict(crop_size=32, patch_size=16, d_channels=4, d_layers=3)
TINY_D_PAPER = dict(crop_size=32, d_channels=4, d_layers=3)


def _counts(model):
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return model.count_params(), non_trainable


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


# ------------------------------------------------------------------ parameter counts
def test_keras_generator_parameter_count_matches_upstream():
    # Issue #5 / the seed: 3,204,739 parameters, 6,912 of them BatchNorm statistics.
    assert _counts(build_generator("keras")) == (3_204_739, 6_912)


def test_keras_discriminator_parameter_count_matches_upstream():
    # Issue #5 / the seed: 967,809 parameters, 1,408 of them BatchNorm statistics.
    assert _counts(build_discriminator("keras")) == (967_809, 1_408)


def test_paper_generator_parameter_count():
    # models2.lua: head 3->256, 10 dense layers (bottleneck 256, growth 64), tail 896->256,
    # add, 256->64->3, no conv biases (train.lua zeroes them every step).
    head = 3 * 9 * 256
    dense = sum((256 + 64 * k) * 256 + 4 * 256 + 256 * 9 * 64 + 4 * 64 for k in range(10))
    tail = 896 * 256 + 4 * 256
    out = 256 * 9 * 64 + 64 * 9 * 3
    assert _counts(build_generator("paper")) == (head + dense + tail + out, 6_912)
    assert head + dense + tail + out == 3_266_496
    # With biases (what the Torch modules hold before train.lua zeroes them) it is 3,270,275.
    assert build_generator("paper", use_bias=True).count_params() == 3_270_275


def test_paper_discriminator_parameter_count():
    # pix2pix 'basic' with ndf 48, n_layers 3, conditional (6 input channels), 4x4 kernels.
    convs = [(6, 48), (48, 96), (96, 192), (192, 384), (384, 1)]
    weights = sum(cin * 16 * cout for cin, cout in convs)
    bn = 4 * (96 + 192 + 384)
    assert _counts(build_discriminator("paper")) == (weights + bn, 2 * (96 + 192 + 384))
    assert build_discriminator("paper").count_params() == 1_561_728
    assert build_discriminator("paper", use_bias=True).count_params() == 1_562_449


def test_patch_size_is_independent_of_channel_rate():
    # Upstream sliced with channel_rate: at channel_rate 16 with 64 px patches it fed 16 px tiles
    # of the top-left corner to a 64 px Input. Here 16 channels still see the 16 64-px patches.
    d = build_discriminator("keras", d_channels=16)
    assert d.get_layer("split_patches").output.shape[1:] == (64, 64, 3)
    assert d.get_layer("patch_flatten").output.shape[-1] == 4 * 4 * 64
    assert d.get_layer("patch_mean").num_patches == 16
    convs = [(3, 16), (16, 32), (32, 64), (64, 64)]
    expected = sum(9 * a * b + b + 4 * b for a, b in convs) + 1024 + 1
    assert d.count_params() == expected


# ------------------------------------------------------------------ shapes and values
@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_generator_any_size_output_in_range(preset):
    g = build_generator(preset, **TINY_G)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 13, 17, 3)).astype("float32")
    y = np.asarray(g(x, training=False))
    assert y.shape == (2, 13, 17, 3) and y.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)
    assert np.asarray(g(x[:, :9, :5], training=False)).shape == (2, 9, 5, 3)


def test_generator_wiring_differs_between_presets():
    keras_g = build_generator("keras", **TINY_G)
    paper_g = build_generator("paper", **TINY_G)
    # keras: tail sees the last block only; skip is a concatenation (head 8 + tail 8 channels).
    assert keras_g.get_layer("tail_conv1x1").input.shape[-1] == 4
    assert keras_g.get_layer("fuse_conv").input.shape[-1] == 16
    assert keras_g.get_layer("dense2_dropout") is not None
    # paper: tail sees the head and every block (8 + 3 * 4); skip is an addition; tail dropout.
    assert paper_g.get_layer("tail_conv1x1").input.shape[-1] == 20
    assert paper_g.get_layer("fuse_conv").input.shape[-1] == 8
    assert paper_g.get_layer("tail_dropout") is not None
    assert not any(layer.name.startswith("dense") and layer.name.endswith("dropout")
                   for layer in paper_g.layers)
    dilations = [keras_g.get_layer(f"dense{k}_conv3x3").dilation_rate[0] for k in (1, 2, 3)]
    assert dilations == [1, 2, 1]


def test_full_size_dilations():
    keras_g = build_generator("keras")
    paper_g = build_generator("paper")
    assert [keras_g.get_layer(f"dense{k}_conv3x3").dilation_rate[0] for k in range(1, 11)] == [
        1, 1, 1, 2, 1, 3, 1, 2, 1, 1]
    assert [paper_g.get_layer(f"dense{k}_conv3x3").dilation_rate[0] for k in range(1, 11)] == [
        1, 2, 1, 2, 1, 2, 1, 2, 1, 2]


def test_keras_discriminator_shape_and_patch_average():
    d = build_discriminator("keras", **TINY_D_KERAS)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    y = np.asarray(d(x, training=False))
    assert y.shape == (3, 1) and np.all((y > 0) & (y < 1))
    # The same classifier applied to each numpy-cut patch, then averaged per image.
    scores = []
    for b in range(3):
        per_image = []
        for i in range(2):
            for j in range(2):
                p = x[b:b + 1, 16 * i:16 * (i + 1), 16 * j:16 * (j + 1)]
                for k in range(1, 4):
                    p = d.get_layer(f"patch_conv{k}")(p)
                    p = d.get_layer(f"patch_bn{k}")(p, training=False)
                    p = d.get_layer(f"patch_lrelu{k}")(p)
                p = d.get_layer("patch_flatten")(p)
                p = d.get_layer("patch_sigmoid")(d.get_layer("patch_dense")(p))
                per_image.append(float(np.asarray(p)[0, 0]))
        scores.append(np.mean(per_image))
    np.testing.assert_allclose(y[:, 0], scores, rtol=1e-5, atol=1e-6)


def test_keras_discriminator_rejects_a_wrong_size():
    d = build_discriminator("keras", **TINY_D_KERAS)
    with pytest.raises(ValueError):
        d(np.zeros((1, 48, 48, 3), "float32"))


def test_paper_discriminator_is_conditional_patchgan():
    d = build_discriminator("paper", **TINY_D_PAPER)
    assert [t.name for t in d.inputs] == ["blurred", "image"]
    blurred = np.zeros((2, 64, 48, 3), "float32")
    image = np.ones((2, 64, 48, 3), "float32")
    y = np.asarray(d([blurred, image], training=False))
    # 4 stride-2 convs (64x48 -> 4x3), then a 4x4 conv with padding 1 (-1 px).
    assert y.shape == (2, 3, 2, 1) and np.all((y > 0) & (y < 1))
    assert d.get_layer("d_conv1").kernel.shape == (4, 4, 6, 4)
    # Full size: 256 px -> 15 x 15 patch map.
    assert build_discriminator("paper").output.shape[1:] == (None, None, 1)


def test_unconditional_patchgan_and_conditional_patch_average():
    d = build_discriminator("paper", conditional=False, **TINY_D_PAPER)
    assert len(d.inputs) == 1 and d.get_layer("d_conv1").kernel.shape[2] == 3
    d = build_discriminator("keras", conditional=True, **TINY_D_KERAS)
    assert len(d.inputs) == 2 and d.get_layer("patch_conv1").kernel.shape[2] == 6


def test_paper_init_is_normal_002():
    keras.utils.set_random_seed(0)
    g = build_generator("paper")
    kernel = np.asarray(g.get_layer("dense5_conv1x1").kernel)
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    gamma = np.asarray(g.get_layer("dense5_bn1").gamma)
    assert abs(gamma.mean() - 1.0) < 0.01 and 0.01 < gamma.std() < 0.03
    assert not g.get_layer("head_conv").use_bias


# ------------------------------------------------------------------ names
_DEFAULT_NAME = re.compile(r"^(conv2d|batch_normalization|dense|dropout|leaky_re_lu|concatenate"
                           r"|add|activation|zero_padding2d|flatten)(_\d+)?$")


@pytest.mark.parametrize("builder", [build_generator, build_discriminator])
@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_every_layer_has_an_explicit_stable_name(builder, preset):
    tiny = TINY_G if builder is build_generator else (
        TINY_D_KERAS if preset == "keras" else TINY_D_PAPER)
    first = builder(preset, **tiny)
    second = builder(preset, **tiny)
    assert not [layer.name for layer in first.layers if _DEFAULT_NAME.match(layer.name)]
    assert [w.path for w in first.weights] == [w.path for w in second.weights]


# ------------------------------------------------------------------ serialization
@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_keras_file_round_trip(tmp_path, preset):
    rng = np.random.default_rng(2)
    g = build_generator(preset, **TINY_G)
    d = build_discriminator(preset, **(TINY_D_KERAS if preset == "keras" else TINY_D_PAPER))
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    d_in = x if preset == "keras" else [x, x[::-1]]
    for model, inputs in ((g, x), (d, d_in)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(np.asarray(model(inputs, training=False)),
                                      np.asarray(loaded(inputs, training=False)))
        assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


# ------------------------------------------------------------------ mixed precision
@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_mixed_bfloat16_outputs_float32(mixed_bfloat16, preset):
    g = build_generator(preset, **TINY_G)
    d = build_discriminator(preset, **(TINY_D_KERAS if preset == "keras" else TINY_D_PAPER))
    assert g.get_layer("head_conv").compute_dtype == "bfloat16"
    x = np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    y = g(x, training=False)
    assert str(y.dtype) == "<dtype: 'float32'>" or "float32" in str(y.dtype)
    assert np.all(np.isfinite(np.asarray(y)))
    score = d(x if preset == "keras" else [x, x], training=False)
    assert "float32" in str(score.dtype)
    assert all("float32" in str(w.dtype) for w in g.weights)


def test_policy_is_float32_again():
    assert keras.config.dtype_policy().name == "float32"
    assert get_config("keras").crop_size == 256
