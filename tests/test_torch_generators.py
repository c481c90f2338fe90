"""benchmarks/torch_generators.py: the PyTorch baselines are the same networks as our Keras
generators. Our Keras model's weights (all random: kernels, biases, BN statistics, PReLU slopes)
are loaded into the PyTorch twin, whose float32 eval-mode output must match ours (small widths)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch baselines need torch (requirements-dev.txt)")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tg():
    spec = importlib.util.spec_from_file_location("torch_generators", REPO / "benchmarks" / "torch_generators.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _randomise(model, seed=0):
    """Every weight random, BN variances positive, so that a misplaced or transposed one shows."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape, path = tuple(weight.shape), weight.path
            if "variance" in path:
                values.append(rng.uniform(0.5, 2.0, shape))
            elif "gamma" in path:
                values.append(rng.uniform(0.5, 1.5, shape))
            elif len(shape) == 4:  # conv kernels: fan-in scaled so that activations stay of order 1
                inputs = shape[3] if isinstance(layer, keras.layers.Conv2DTranspose) else shape[2]
                values.append(rng.normal(0, 1.2 / np.sqrt(shape[0] * shape[1] * inputs), shape))
            else:  # biases, beta, moving means, PReLU slopes
                values.append(rng.normal(0, 0.2, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])


def _compare(tg, family, keras_model, torch_model, height, width):
    _randomise(keras_model)
    tg.load_keras_weights(torch_model, keras_model)
    torch_model.eval()
    channels = int(keras_model.inputs[0].shape[-1])
    assert tg.input_channels(torch_model) == channels
    x = np.random.default_rng(1).uniform(-1, 1, (2, height, width, channels)).astype("float32")
    ours = np.asarray(keras_model(x, training=False))
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        last = torch_model.to(memory_format=torch.channels_last)(
            torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last))
    assert theirs.shape == ours.shape
    assert 0.05 < float(np.std(ours)) and float(np.mean(np.abs(ours) > 0.99)) < 0.2  # not saturated
    np.testing.assert_allclose(theirs, ours, atol=2e-5)  # measured: up to 1.1e-6
    np.testing.assert_allclose(last.permute(0, 2, 3, 1).numpy(), ours, atol=2e-5)
    # the baseline with BatchNorm2d folded into its convs (run.py's "bn-folded" contender) too
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in torch_model.modules())
    assert tg.fold_batch_norm(torch_model) == norms > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in torch_model.modules())
    with torch.no_grad():
        folded = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(folded, ours, atol=2e-5)


@pytest.mark.parametrize("preset", ["bubbliiiing", "paper"])
def test_srresnet_matches_keras(tg, preset):
    from srgan.model import build_generator

    overrides = dict(filters=8, num_res_blocks=2, upsample_filters=32)
    _compare(tg, "srgan", build_generator(preset=preset, **overrides), tg.build("srgan", preset, **overrides), 6, 7)


@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_dgf_matches_keras(tg, preset):
    from dgf_deblur.model import build_generator

    overrides = dict(growth_rate=4, bottleneck_channels=8, n_blocks=3, dilations=(1, 2, 3))
    _compare(tg, "dgf_deblur", build_generator(preset, **overrides), tg.build("dgf_deblur", preset, **overrides),
             11, 9)


@pytest.mark.parametrize("preset, height, width", [("paper", 16, 20), ("tadax", 16, 20), ("tadax", 12, 28)])
def test_glcic_completion_matches_keras(tg, preset, height, width):
    """paper: Torch-style symmetric padding of the stride-2 convs; tadax: TensorFlow SAME (the odd
    pixel after), for sizes whose halves are even and odd."""
    from glcic_inpaint.model import build_completion_network

    _compare(tg, "glcic_inpaint", build_completion_network(preset, filters=8),
             tg.build("glcic_inpaint", preset, filters=8), height, width)


def test_pixel_shuffle_order_is_checked(tg):
    """Loading the upsampling conv without the channel reordering gives a different output (so the
    comparison above would catch a wrong order)."""
    from srgan.model import build_generator

    overrides = dict(filters=8, num_res_blocks=1, upsample_filters=32, scale=2)
    keras_model, torch_model = build_generator(preset="paper", **overrides), tg.build("srgan", "paper", **overrides)
    _randomise(keras_model)
    tg.load_keras_weights(torch_model, keras_model)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 5, 5, 3)).astype("float32")
    torch_model.eval()
    with torch.no_grad():
        right = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        torch_model.shuffled = {}
        tg.load_keras_weights(torch_model, keras_model)
        wrong = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert np.max(np.abs(right - wrong)) > 0.05


def test_transfer_refuses_a_different_network(tg):
    from srgan.model import build_generator

    keras_model = build_generator(preset="paper", filters=8, num_res_blocks=2, upsample_filters=32)
    with pytest.raises(ValueError, match="has no PyTorch twin"):
        tg.load_keras_weights(tg.build("srgan", "paper", filters=8, num_res_blocks=1, upsample_filters=32), keras_model)
    with pytest.raises(ValueError, match="shape"):
        tg.load_keras_weights(tg.build("srgan", "paper", filters=4, num_res_blocks=2, upsample_filters=32), keras_model)
