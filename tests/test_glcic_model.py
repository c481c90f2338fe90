"""GLCIC completion network (paper Table 1) and discriminators."""

import keras
import numpy as np
import pytest

from glcic_inpaint import model as glcic_model
from glcic_inpaint.config import get_config

# Paper Table 1 written out independently of glcic_inpaint.model.TABLE1:
# (layer name, transposed?, kernel, dilation, stride, output channels)
PAPER_TABLE1 = [
    ("conv1", False, 5, 1, 1, 64),
    ("conv2", False, 3, 1, 2, 128),
    ("conv3", False, 3, 1, 1, 128),
    ("conv4", False, 3, 1, 2, 256),
    ("conv5", False, 3, 1, 1, 256),
    ("conv6", False, 3, 1, 1, 256),
    ("dilated1", False, 3, 2, 1, 256),
    ("dilated2", False, 3, 4, 1, 256),
    ("dilated3", False, 3, 8, 1, 256),
    ("dilated4", False, 3, 16, 1, 256),
    ("conv7", False, 3, 1, 1, 256),
    ("conv8", False, 3, 1, 1, 256),
    ("deconv1", True, 4, 1, 2, 128),
    ("conv9", False, 3, 1, 1, 128),
    ("deconv2", True, 4, 1, 2, 64),
    ("conv10", False, 3, 1, 1, 32),
    ("conv11", False, 3, 1, 1, 3),
]

# Small everything: shapes and round trips do not need full-size networks.
TINY = dict(
    filters=8,
    image_size=32,
    local_size=16,
    hole_min=4,
    hole_max=8,
    global_d_filters=(8, 16, 16),
    local_d_filters=(8, 16),
    d_fc_units=16,
)


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def _params(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable + frozen, frozen


def _expected_generator(in_channels, bias):
    """Paper Table 1 by hand: conv weights (+ biases), BN gamma/beta/mean/var on all but the last."""
    total, bn_channels, previous = 0, 0, in_channels
    for _, _, kernel, _, _, out in PAPER_TABLE1:
        total += kernel * kernel * previous * out + (out if bias else 0)
        if out != 3:
            bn_channels += out
        previous = out
    return total + 4 * bn_channels, 2 * bn_channels


def _expected_discriminator(global_convs, local_convs, global_size, local_size, bias):
    total, frozen = 0, 0
    for widths, size in ((global_convs, global_size), (local_convs, local_size)):
        previous = 3
        for width in widths:
            total += 25 * previous * width + (width if bias else 0) + 4 * width
            frozen += 2 * width
            previous = width
        flat = (size // 2 ** len(widths)) ** 2 * previous
        total += flat * 1024 + 1024
    return total + 2048 + 1, frozen


def test_parameter_counts_tadax():
    g_total, g_frozen = _params(glcic_model.build_completion_network("tadax"))
    assert (g_total, g_frozen) == _expected_generator(3, bias=False) == (6_073_504, 5_952)
    d_total, d_frozen = _params(glcic_model.build_discriminator("tadax"))
    expected = _expected_discriminator(
        (64, 128, 256, 512, 512), (64, 128, 256, 512), 128, 64, bias=False
    )
    assert (d_total, d_frozen) == expected == (31_955_841, 4_864)


def test_parameter_counts_paper():
    g_total, g_frozen = _params(glcic_model.build_completion_network("paper"))
    assert (g_total, g_frozen) == _expected_generator(4, bias=True) == (6_078_083, 5_952)
    d_total, d_frozen = _params(glcic_model.build_discriminator("paper"))
    expected = _expected_discriminator(
        (64, 128, 256, 512, 512, 512), (64, 128, 256, 512, 512), 256, 128, bias=True
    )
    assert (d_total, d_frozen) == expected == (45_070_593, 6_912)


@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_layer_list_and_dilations_are_table1(preset):
    net = glcic_model.build_completion_network(preset)
    convs = [
        layer
        for layer in net.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    got = [
        (
            layer.name,
            isinstance(layer, keras.layers.Conv2DTranspose),
            layer.kernel_size[0],
            layer.dilation_rate[0],
            layer.strides[0],
            layer.filters,
        )
        for layer in convs
    ]
    assert got == PAPER_TABLE1
    for layer in convs:
        assert layer.kernel_size[0] == layer.kernel_size[1]
        assert layer.dilation_rate[0] == layer.dilation_rate[1]
        assert layer.strides[0] == layer.strides[1]
    # BN + ReLU after every layer but the output one, in that order
    names = [layer.name for layer in net.layers]
    for name, *_ in PAPER_TABLE1[:-1]:
        i = names.index(name)
        assert names[i + 1 : i + 3] == [f"{name}_bn", f"{name}_relu"]
    assert names[-2:] == ["conv11", "output"]
    expected_activation = {"tadax": "tanh", "paper": "sigmoid"}[preset]
    assert net.get_layer("output").get_config()["activation"] == expected_activation


def test_input_channels_and_bias_per_preset():
    tadax = glcic_model.build_completion_network("tadax")
    paper = glcic_model.build_completion_network("paper")
    assert tadax.input_shape == (None, None, None, 3)  # image with the hole zeroed
    assert paper.input_shape == (None, None, None, 4)  # mean-filled image + mask
    assert not tadax.get_layer("conv1").use_bias
    assert paper.get_layer("conv1").use_bias


@pytest.mark.parametrize("preset,low,high", [("tadax", -1.0, 1.0), ("paper", 0.0, 1.0)])
@pytest.mark.parametrize("height,width", [(20, 28), (32, 12)])
def test_completion_output_shape_and_range(preset, low, high, height, width):
    config = get_config(preset, **TINY)
    net = glcic_model.build_completion_network(config)
    x = np.random.default_rng(0).normal(size=(2, height, width, config.input_channels))
    y = net(x.astype("float32"), training=False).numpy()
    assert y.shape == (2, height, width, 3)
    assert y.min() >= low and y.max() <= high


def test_symmetric_stride2_padding_matches_torch():
    """paper preset: conv2 (k3, s2) pads 1 on every side like Torch, not TF SAME's (0, 1)."""
    config = get_config("paper", **TINY)
    net = glcic_model.build_completion_network(config)
    assert net.get_layer("conv2_pad").padding == ((1, 1), (1, 1))
    sub = keras.Model(net.input, [net.get_layer("conv1_relu").output, net.get_layer("conv2").output])
    x = np.random.default_rng(1).normal(size=(1, 8, 12, 4)).astype("float32")
    features, conv2 = (t.numpy() for t in sub(x, training=False))
    kernel, bias = (w.numpy() for w in net.get_layer("conv2").weights)
    padded = np.pad(features, ((0, 0), (1, 1), (1, 1), (0, 0)))
    reference = np.zeros(conv2.shape, dtype=np.float64)
    for i in range(conv2.shape[1]):
        for j in range(conv2.shape[2]):
            window = padded[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
            reference[0, i, j] = np.tensordot(window, kernel, axes=3) + bias
    np.testing.assert_allclose(conv2, reference, rtol=1e-4, atol=1e-4)
    tadax = glcic_model.build_completion_network(get_config("tadax", **TINY))
    assert not [layer for layer in tadax.layers if layer.name.endswith("_pad")]


@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_discriminator_shapes(preset):
    config = get_config(preset, **TINY)
    disc = glcic_model.build_discriminator(config)
    assert [tuple(t.shape) for t in disc.inputs] == [(None, 32, 32, 3), (None, 16, 16, 3)]
    rng = np.random.default_rng(2)
    logit = disc(
        [rng.normal(size=(3, 32, 32, 3)), rng.normal(size=(3, 16, 16, 3))], training=False
    )
    assert tuple(logit.shape) == (3, 1)
    convs = [layer.name for layer in disc.layers if isinstance(layer, keras.layers.Conv2D)]
    assert sorted(convs) == ["global_conv1", "global_conv2", "global_conv3", "local_conv1", "local_conv2"]
    assert disc.get_layer("global_conv1").kernel_size == (5, 5)
    assert disc.get_layer("global_conv1").strides == (2, 2)
    assert disc.get_layer("concat").output.shape[-1] == 2 * 16


def test_full_size_discriminator_conv_counts():
    """Paper: 6 (global, 256 px) and 5 (local, 128 px) convs; tadax: 5 and 4 (128 / 64 px)."""
    for preset, global_convs, local_convs, size in (("paper", 6, 5, 256), ("tadax", 5, 4, 128)):
        disc = glcic_model.build_discriminator(preset)
        names = [layer.name for layer in disc.layers if isinstance(layer, keras.layers.Conv2D)]
        assert sum(n.startswith("global_") for n in names) == global_convs
        assert sum(n.startswith("local_") for n in names) == local_convs
        assert disc.inputs[0].shape[1] == size and disc.inputs[1].shape[1] == size // 2
        assert disc.get_layer("global_fc").units == 1024
        assert disc.get_layer("local_fc").units == 1024


def test_tadax_initialisers():
    config = get_config("tadax", **TINY)
    net = glcic_model.build_completion_network(config)
    gamma = net.get_layer("conv3_bn").gamma.numpy()
    assert np.abs(gamma).max() <= 0.2 + 1e-6  # truncated_normal(stddev=0.1): near 0, not 1
    paper = glcic_model.build_completion_network(get_config("paper", **TINY))
    np.testing.assert_array_equal(paper.get_layer("conv3_bn").gamma.numpy(), 1.0)


def _inputs(config, seed=3, height=32, width=32):
    rng = np.random.default_rng(seed)
    low = -1.0 if config.value_range == "signed" else 0.0
    image = rng.uniform(low, 1.0, size=(2, height, width, 3)).astype("float32")
    mask = np.zeros((2, height, width, 1), "float32")
    mask[0, 4:12, 8:20] = 1
    mask[1, 20:28, 2:9] = 1
    return image, mask


def test_hole_fill_paper_and_tadax():
    paper = get_config("paper", **TINY)
    image, mask = _inputs(paper)
    mean = (0.4, 0.5, 0.6)
    layer = glcic_model.HoleFill(*glcic_model.fill_and_offset(paper, mean), mask_channel=True)
    out = layer(image, mask).numpy()
    assert out.shape == (2, 32, 32, 4)
    hole = mask[..., 0] > 0.5
    np.testing.assert_allclose(out[..., :3][hole], 0.0, atol=1e-7)  # mean fill minus mean
    np.testing.assert_allclose(out[..., :3][~hole], (image - np.array(mean))[~hole], atol=1e-6)
    np.testing.assert_array_equal(out[..., 3], mask[..., 0])
    tadax = get_config("tadax", **TINY)
    layer = glcic_model.HoleFill(*glcic_model.fill_and_offset(tadax), mask_channel=False)
    out = layer(image, mask).numpy()
    np.testing.assert_array_equal(out, image * (1 - mask))  # tadax: generator(x * (1 - mask))
    with pytest.raises(ValueError, match="mean colour"):
        glcic_model.fill_and_offset(paper)


@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_inpainter_keeps_known_pixels(preset):
    config = get_config(preset, **TINY)
    net = glcic_model.build_completion_network(config)
    inpainter = glcic_model.build_inpainter(net, config, mean_color=(0.5, 0.5, 0.5))
    image, mask = _inputs(config, height=24, width=36)
    completed = inpainter([image, mask], training=False).numpy()
    hole = mask[..., 0] > 0.5
    np.testing.assert_array_equal(completed[~hole], image[~hole])
    fill, offset = glcic_model.fill_and_offset(config, (0.5, 0.5, 0.5))
    prepared = glcic_model.HoleFill(fill, offset, config.mask_channel)(image, mask)
    raw = net(prepared, training=False).numpy()
    np.testing.assert_allclose(completed[hole], raw[hole], atol=1e-6)
    assert inpainter.trainable_weights and len(inpainter.trainable_weights) == len(
        net.trainable_weights
    )


def test_keras_round_trip(tmp_path):
    config = get_config("paper", **TINY)
    net = glcic_model.build_completion_network(config)
    disc = glcic_model.build_discriminator(config)
    inpainter = glcic_model.build_inpainter(net, config, mean_color=(0.3, 0.4, 0.5))
    image, mask = _inputs(config)
    rng = np.random.default_rng(4)
    x4 = rng.normal(size=(2, 32, 32, 4)).astype("float32")
    local = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    for model, args in ((net, x4), (disc, [image, local]), (inpainter, [image, mask])):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
        np.testing.assert_array_equal(
            loaded(args, training=False).numpy(), model(args, training=False).numpy()
        )
    restored = keras.saving.load_model(tmp_path / "inpainter.keras")
    assert restored.get_layer("hole_fill").fill == (0.3, 0.4, 0.5)


def test_stable_layer_names():
    net = glcic_model.build_completion_network(get_config("paper", **TINY))
    weighted = [layer.name for layer in net.layers if layer.weights]
    assert weighted[:3] == ["conv1", "conv1_bn", "conv2"]
    assert weighted[-1] == "conv11"
    again = glcic_model.build_completion_network(get_config("paper", **TINY))
    assert [layer.name for layer in again.layers] == [layer.name for layer in net.layers]


@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_mixed_bfloat16_outputs_float32(mixed_bfloat16, preset):
    config = get_config(preset, **TINY)
    net = glcic_model.build_completion_network(config)
    disc = glcic_model.build_discriminator(config)
    inpainter = glcic_model.build_inpainter(net, config, mean_color=(0.5, 0.5, 0.5))
    assert net.get_layer("conv5").compute_dtype == "bfloat16"
    image, mask = _inputs(config)
    x = np.zeros((2, 32, 32, config.input_channels), "float32")
    assert net(x).dtype == "float32"
    assert disc([image, image[:, :16, :16]]).dtype == "float32"
    completed = inpainter([image, mask])
    assert completed.dtype == "float32"
    hole = mask[..., 0] > 0.5
    np.testing.assert_array_equal(completed.numpy()[~hole], image[~hole])
