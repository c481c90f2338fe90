import keras
import numpy as np
import pytest
import tensorflow as tf

from common.layers import (ClipValues, ReflectionPadding2D, SubpixelConv2D, instance_norm,
                           pytorch_to_tensorflow_subpixel_order)

rng = np.random.default_rng(0)


@pytest.mark.parametrize("padding", [1, 3, (2, 1)])
def test_reflection_padding_equals_numpy(padding):
    x = rng.normal(size=(2, 7, 9, 3)).astype("float32")
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    expected = np.pad(x, [(0, 0), (ph, ph), (pw, pw), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(ReflectionPadding2D(padding)(x), expected)


def test_layers_accept_unknown_sizes_and_round_trip(tmp_path):
    inputs = keras.Input((None, None, 8))
    x = ReflectionPadding2D(2)(inputs)
    x = keras.layers.Conv2D(12, 5, name="conv")(x)
    x = SubpixelConv2D(2)(x)
    x = ClipValues(-0.5, 0.5)(x)
    model = keras.Model(inputs, x)
    assert model.output_shape == (None, None, None, 3)
    data = rng.normal(size=(1, 5, 6, 8)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    out = loaded(data)
    assert out.shape == (1, 10, 12, 3)
    np.testing.assert_allclose(out, model(data), atol=1e-6)
    assert float(np.max(out)) <= 0.5 and float(np.min(out)) >= -0.5


def test_subpixel_equals_depth_to_space():
    x = rng.normal(size=(2, 3, 5, 12)).astype("float32")
    np.testing.assert_array_equal(SubpixelConv2D(2)(x), tf.nn.depth_to_space(x, 2))


def _pytorch_pixel_shuffle(x, s):
    """numpy PixelShuffle on NCHW: out[c, h*s+dy, w*s+dx] = in[c*s*s + dy*s + dx, h, w]."""
    n, cs, h, w = x.shape
    c = cs // (s * s)
    return x.reshape(n, c, s, s, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c, h * s, w * s)


def test_subpixel_order_conversion_matches_pytorch_pixel_shuffle():
    s, c = 2, 3
    torch_like = rng.normal(size=(1, c * s * s, 4, 5)).astype("float32")   # NCHW features
    expected = _pytorch_pixel_shuffle(torch_like, s).transpose(0, 2, 3, 1)
    perm = pytorch_to_tensorflow_subpixel_order(c, s)
    nhwc = torch_like.transpose(0, 2, 3, 1)[..., perm]
    np.testing.assert_allclose(SubpixelConv2D(s)(nhwc), expected)
    # without the permutation the orders differ
    assert not np.allclose(SubpixelConv2D(s)(torch_like.transpose(0, 2, 3, 1)), expected)


def test_instance_norm_matches_pytorch_formula():
    x = rng.normal(3.0, 2.0, size=(2, 6, 5, 4)).astype("float32")
    layer = instance_norm()
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as InstanceNorm2d
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    assert not layer.weights  # affine=False: no parameters


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_one_pass_prelu_equals_keras_prelu_bit_for_bit(policy):
    """OnePassPReLU (one select) gives Keras' PReLU values exactly, in float32 and bfloat16."""
    import keras
    from keras import layers

    from common.layers import OnePassPReLU

    keras.config.set_dtype_policy(policy)
    try:
        plain = layers.PReLU(shared_axes=[1, 2])
        ours = OnePassPReLU(shared_axes=[1, 2])
        x = np.random.default_rng(0).normal(size=(2, 5, 7, 6)).astype("float32")
        x[0, 0, 0] = 0.0
        plain.build(x.shape)
        ours.build(x.shape)
        alpha = np.random.default_rng(1).normal(size=plain.alpha.shape).astype("float32")
        plain.alpha.assign(alpha)
        ours.alpha.assign(alpha)
        expected = np.asarray(keras.ops.cast(plain(x), "float32"))
        got = np.asarray(keras.ops.cast(ours(x), "float32"))
        np.testing.assert_array_equal(got, expected)
        assert (got < 0).any() and (got > 0).any()  # both branches exercised
    finally:
        keras.config.set_dtype_policy("float32")
