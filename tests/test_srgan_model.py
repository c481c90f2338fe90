"""SRGAN builders: parameter counts, shapes, value ranges, naming, serialisation, mixed precision."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from common.layers import SubpixelConv2D
from srgan.config import get_config
from srgan.model import build_discriminator, build_generator

# Small widths for everything that does not need the real counts.
TINY = dict(filters=8, num_res_blocks=2, upsample_filters=16, d_first_filters=4,
            d_blocks=((4, 2), (8, 1), (8, 2)), d_dense_units=8)


def _counts(model):
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return model.count_params(), non_trainable


def _generator_params(scale, filters=64, blocks=16, up=256):
    """Closed form of the SRResNet parameter count (convs with bias, PReLU per channel)."""
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    bn = 4 * filters
    head = conv(9, 3, filters) + filters
    res = blocks * (2 * conv(3, filters, filters) + 2 * bn + filters)
    trunk = conv(3, filters, filters) + bn
    ups = int(math.log2(scale)) * (conv(3, filters, up) + up // 4)
    tail = conv(9, up // 4, 3)
    return head + res + trunk + ups + tail


@pytest.fixture
def float32_policy():
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


# ---- parameter counts (issue #4, computed from the upstream code) ---------------------------

def test_generator_parameter_count_scale4():
    total, non_trainable = _counts(build_generator(scale=4))
    assert total == 1_554_883
    assert non_trainable == 4_224  # 33 BatchNorm layers x 64 x (moving mean, moving variance)


@pytest.mark.parametrize("scale", [2, 8])
def test_generator_parameter_count_other_scales(scale):
    total, non_trainable = _counts(build_generator(scale=scale))
    assert total == _generator_params(scale)
    assert non_trainable == 4_224
    assert _generator_params(4) == 1_554_883  # the closed form agrees with the issue


def test_paper_generator_has_the_same_parameters():
    assert _counts(build_generator(preset="paper")) == (1_554_883, 4_224)


def test_discriminator_parameter_count_bubbliiiing():
    model = build_discriminator("bubbliiiing")
    assert _counts(model) == (5_219_137, 3_712)
    assert model.input_shape == (None, None, None, 3)


def test_discriminator_parameter_count_paper_flatten_96():
    model = build_discriminator("paper")
    assert model.input_shape == (None, 96, 96, 3)
    # the gap model plus the dense layer on the flattened 6x6x512 map instead of 512 features
    assert _counts(model) == (5_219_137 + (6 * 6 * 512 - 512) * 1024, 3_712)
    assert model.count_params() == 23_569_217


# ---- shapes and ranges ----------------------------------------------------------------------

@pytest.mark.parametrize("scale,size", [(2, (5, 7)), (4, (7, 5)), (8, (3, 9))])
def test_generator_output_is_exactly_scale_times_input(scale, size):
    model = build_generator(scale=scale, **TINY)
    h, w = size
    x = np.random.default_rng(0).uniform(-1, 1, (2, h, w, 3)).astype("float32")
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, h * scale, w * scale, 3)
    assert y.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)


def test_generator_rejects_unsupported_scale():
    from common.errors import UserError

    with pytest.raises(UserError, match="scale"):
        build_generator(scale=3)


def test_discriminator_any_size_and_probability_range():
    model = build_discriminator(**TINY)
    for shape in [(2, 33, 47, 3), (1, 16, 16, 3)]:
        p = np.asarray(model(np.zeros(shape, "float32"), training=False))
        assert p.shape == (shape[0], 1)
        assert np.all((p >= 0) & (p <= 1))


def test_flatten_discriminator_uses_the_crop_size():
    model = build_discriminator("paper", hr_crop=32, **TINY)
    assert model.input_shape == (None, 32, 32, 3)
    # three blocks, two of stride 2 -> 8x8x8 flattened into the first dense layer
    assert model.get_layer("d_dense1").kernel.shape == (8 * 8 * 8, 8)


# ---- structure ------------------------------------------------------------------------------

def test_every_weighted_layer_has_a_stable_name():
    gen = build_generator(scale=4, **TINY)
    names = [layer.name for layer in gen.layers if layer.weights]
    expected = ["head_conv", "head_prelu"]
    for i in (1, 2):
        expected += [f"res{i}_{n}" for n in ("conv1", "bn1", "prelu", "conv2", "bn2")]
    expected += ["trunk_conv", "trunk_bn", "up1_conv", "up1_prelu", "up2_conv", "up2_prelu",
                 "tail_conv"]
    assert names == expected
    disc = build_discriminator(**TINY)
    names = [layer.name for layer in disc.layers if layer.weights]
    assert names == ["d0_conv", "d1_conv", "d1_bn", "d2_conv", "d2_bn", "d3_conv", "d3_bn",
                     "d_dense1", "d_dense2"]
    # a second build gives the same names (no global counters involved)
    assert [l.name for l in build_discriminator(**TINY).layers] == [l.name for l in disc.layers]


def test_no_lambda_layers():
    for model in (build_generator(**TINY), build_discriminator(**TINY)):
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_preset_initialisation_and_batchnorm_settings():
    gen = build_generator(filters=32, num_res_blocks=1)  # bubbliiiing
    kernel = np.asarray(gen.get_layer("res1_conv1").kernel)
    assert abs(kernel.std() - 0.02) < 0.002  # random_normal(stddev=0.02)
    assert np.all(np.asarray(gen.get_layer("head_prelu").alpha) == 0.0)  # Keras PReLU default
    bn = gen.get_layer("res1_bn1")
    assert (bn.momentum, bn.epsilon) == (0.99, 1e-3)

    paper = build_generator(preset="paper", filters=32, num_res_blocks=1)
    assert np.allclose(np.asarray(paper.get_layer("head_prelu").alpha), 0.25)
    bn = paper.get_layer("res1_bn1")
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-4)
    kernel = np.asarray(paper.get_layer("res1_conv1").kernel)
    limit = math.sqrt(6 / (9 * 32 + 9 * 32))  # Glorot uniform bound
    assert kernel.max() <= limit and kernel.std() > 0.5 * limit / math.sqrt(3)


def test_subpixel_ordering_matches_depth_to_space_dcr():
    """out[h*s+dy, w*s+dx, c] = in[h, w, (dy*s+dx)*C + c] (TensorFlow depth_to_space)."""
    s, c = 2, 3
    x = np.arange(1 * 2 * 3 * c * s * s, dtype="float32").reshape(1, 2, 3, c * s * s)
    y = np.asarray(SubpixelConv2D(s)(x))
    expected = np.empty((1, 2 * s, 3 * s, c), "float32")
    for h in range(2):
        for w in range(3):
            for dy in range(s):
                for dx in range(s):
                    expected[0, h * s + dy, w * s + dx, :] = x[0, h, w, (dy * s + dx) * c:(dy * s + dx + 1) * c]
    np.testing.assert_array_equal(y, expected)


def test_generator_upsampling_path_is_pixel_shuffle():
    gen = build_generator(scale=2, **TINY)
    shuffle = gen.get_layer("up1_shuffle")
    assert isinstance(shuffle, SubpixelConv2D) and shuffle.scale == 2


# ---- serialisation and precision ------------------------------------------------------------

@pytest.mark.parametrize("builder", ["generator", "discriminator"])
def test_keras_round_trip_gives_identical_outputs(tmp_path, builder):
    if builder == "generator":
        model = build_generator(scale=4, **TINY)
        x = np.random.default_rng(1).uniform(-1, 1, (1, 5, 7, 3)).astype("float32")
    else:
        model = build_discriminator(**TINY)
        x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 12, 3)).astype("float32")
    path = tmp_path / f"{builder}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(np.asarray(model(x, training=False)),
                                  np.asarray(loaded(x, training=False)))
    weights = tmp_path / f"{builder}.weights.h5"
    model.save_weights(weights)
    fresh = build_generator(scale=4, **TINY) if builder == "generator" else build_discriminator(**TINY)
    fresh.load_weights(weights)
    np.testing.assert_array_equal(np.asarray(model(x, training=False)),
                                  np.asarray(fresh(x, training=False)))


def test_mixed_bfloat16_builds_with_float32_outputs(float32_policy):
    keras.config.set_dtype_policy("mixed_bfloat16")
    gen = build_generator(scale=2, **TINY)
    disc = build_discriminator(**TINY)
    assert gen.get_layer("res1_conv1").compute_dtype == "bfloat16"
    assert gen.get_layer("res1_conv1").kernel.dtype == "float32"
    y = gen(np.zeros((1, 5, 5, 3), "float32"), training=False)
    p = disc(y, training=False)
    assert y.dtype == "float32" and tuple(y.shape) == (1, 10, 10, 3)
    assert p.dtype == "float32" and tuple(p.shape) == (1, 1)


def test_builders_accept_a_config_object():
    config = get_config("paper", hr_crop=32, **TINY)
    assert build_discriminator(config).input_shape == (None, 32, 32, 3)
    assert build_generator(preset=config).output_shape == (None, None, None, 3)
