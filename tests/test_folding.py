"""BatchNormalization folded into the conv before it (common.folding), what inference runs.

The folded copy must compute what the network as trained computes in inference mode (float32: to
rounding; mixed_bfloat16: no further from float32 than the unfolded bf16 network), leave the
original untouched (training still needs its batch statistics), fold only what is safe, and be
what every family's ``run`` and ``export.py`` use.
"""

import importlib

import keras
import numpy as np
import pytest
from keras import layers

from benchmarks.ab_fold import randomize_batch_norm  # statistics far from a fresh layer's identity map
from common.folding import fold_batch_norm, foldable_pairs, folded_weights
from common.weights import Loaded

# (family, preset, tiny architecture): every generator with BatchNormalization
CASES = {
    "srgan-bubbliiiing": ("srgan", "bubbliiiing", {"filters": 8, "num_res_blocks": 2, "upsample_filters": 16}),
    "deblur_gan-keras-port": ("deblur_gan", "keras-port", {"ngf": 4, "n_blocks": 2}),
    "dgf_deblur-keras": ("dgf_deblur", "keras", {"growth_rate": 4, "bottleneck_channels": 8, "n_blocks": 2,
                                                 "dilations": (1, 2)}),
    "glcic_inpaint-paper": ("glcic_inpaint", "paper", {"filters": 8, "mean_color": (0.5, 0.45, 0.4)}),
}


def _batch_norms(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, layers.BatchNormalization)]


def build(case, seed=0):
    family, preset, overrides = CASES[case]
    config = importlib.import_module(f"{family}.config").get_config(preset, **overrides)
    keras.utils.set_random_seed(seed)
    if family == "glcic_inpaint":
        from glcic_inpaint.model import build_completion_network, build_inpainter

        model = build_inpainter(build_completion_network(config), config, config.mean_color)
    else:
        model = importlib.import_module(f"{family}.model").build_generator(preset=config)
    randomize_batch_norm(model)
    return model, config


def network_input(model, case, size=32):
    rng = np.random.default_rng(3)
    if case.startswith("glcic"):
        mask = np.zeros((1, size, size, 1), np.float32)
        mask[:, 8:24, 6:20] = 1.0
        return [rng.uniform(0, 1, (1, size, size, 3)).astype("float32"), mask]
    return rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")


@pytest.mark.parametrize("case", CASES)
def test_float32_fold_computes_the_same(case):
    model, _ = build(case)
    pairs = foldable_pairs(model)
    norms = _batch_norms(model)
    assert len(pairs) == len(norms) > 0  # every BatchNormalization of these generators follows a conv
    before = [w.copy() for w in model.get_weights()]
    folded = fold_batch_norm(model)
    assert not _batch_norms(folded)
    names = [layer.name for layer in folded._flatten_layers()]
    assert names == [layer.name for layer in model._flatten_layers() if layer not in norms]
    x = network_input(model, case)
    a, b = np.asarray(model(x, training=False)), np.asarray(folded(x, training=False))
    assert np.std(a) > 1e-3 * np.abs(a).max() > 0  # a real signal, not a constant
    assert np.abs(b - a).max() <= 2e-5 * np.abs(a).max()
    # the original is untouched: same weights, BatchNormalization still there and batch statistics in
    # training mode
    assert len(_batch_norms(model)) == len(norms)
    for w, old in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, old)
    assert np.abs(np.asarray(model(x, training=True)) - a).max() > 1e-3


@pytest.mark.parametrize("case", ["srgan-bubbliiiing", "glcic_inpaint-paper", "deblur_gan-keras-port"])
def test_bfloat16_fold_is_as_close_to_float32_as_the_unfolded_network(case):
    reference, _ = build(case)
    x = network_input(reference, case, size=48)
    exact = np.asarray(reference(x, training=False), np.float64)
    keras.config.set_dtype_policy("mixed_bfloat16")
    model, _ = build(case)
    model.set_weights(reference.get_weights())
    folded = fold_batch_norm(model)
    conv = foldable_pairs(model)[0][0]
    copy = next(layer for layer in folded._flatten_layers() if layer.name == conv.name and layer is not conv)
    assert copy.dtype_policy.name == conv.dtype_policy.name == "mixed_bfloat16"

    def rms(network):
        return float(np.sqrt(np.mean((np.asarray(network(x, training=False), np.float64) - exact) ** 2)))

    unfolded_error, folded_error = rms(model), rms(folded)
    assert 0 < unfolded_error and 0 < folded_error <= 2.0 * unfolded_error


def test_transposed_conv_and_missing_gamma_beta_and_bias():
    x_in = keras.Input((None, None, 3))
    y = layers.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False, name="up")(x_in)
    y = layers.BatchNormalization(center=False, name="up_bn")(y)
    y = layers.Conv2D(6, 3, padding="same", name="conv")(y)
    y = layers.BatchNormalization(scale=False, epsilon=1e-5, name="conv_bn")(y)
    model = keras.Model(x_in, y)
    randomize_batch_norm(model)
    folded = fold_batch_norm(model)
    assert len(foldable_pairs(model)) == 2 and not _batch_norms(folded)
    x = np.random.default_rng(0).normal(size=(2, 6, 7, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(x, training=False)), atol=1e-5)


def test_folded_weights_by_hand():
    x_in = keras.Input((None, None, 2))
    conv = layers.Conv2D(3, 1, name="conv")
    norm = layers.BatchNormalization(epsilon=0.5, name="bn")
    norm(conv(x_in))  # builds both layers
    conv.set_weights([np.arange(6, dtype="float32").reshape(1, 1, 2, 3), np.array([1, 2, 3], "float32")])
    norm.set_weights([np.array([2, 1, 4], "float32"), np.array([0.5, 0, -1], "float32"),  # gamma, beta
                      np.array([1, 1, 1], "float32"), np.array([1.5, 3.5, 0.5], "float32")])  # mean, variance
    kernel, bias = folded_weights(conv, norm)
    scale = np.array([2 / np.sqrt(2), 1 / np.sqrt(4), 4 / np.sqrt(1)])
    np.testing.assert_allclose(kernel[0, 0], np.arange(6).reshape(2, 3) * scale, rtol=1e-6)
    np.testing.assert_allclose(bias, (np.array([1, 2, 3]) - 1) * scale + np.array([0.5, 0, -1]), rtol=1e-6)


def test_unsafe_pairs_are_left_alone():
    x_in = keras.Input((8, 8, 3))
    # the conv's output is read twice: folding would change the other reader's input
    shared = layers.Conv2D(3, 3, padding="same", name="shared")(x_in)
    a = layers.BatchNormalization(name="shared_bn")(shared)
    a = layers.Add(name="add")([a, shared])
    # an activation inside the conv sits between the conv and the BatchNormalization
    b = layers.Conv2D(3, 3, padding="same", activation="relu", name="relu_conv")(x_in)
    b = layers.BatchNormalization(name="relu_bn")(b)
    # a BatchNormalization over channels first (axis 1) is not the conv's output channels
    c = layers.Conv2D(3, 3, padding="same", name="plain")(x_in)
    c = layers.BatchNormalization(axis=1, name="axis1_bn")(c)
    # a conv called twice (shared weights) stays one layer
    twice = layers.Conv2D(3, 1, name="twice")
    d = layers.BatchNormalization(name="twice_bn")(twice(x_in))
    e = twice(x_in)
    model = keras.Model(x_in, [a, b, c, d, e])
    assert foldable_pairs(model) == []
    assert fold_batch_norm(model) is model


@pytest.mark.parametrize("family", ["srgan", "deblur_gan", "dgf_deblur", "glcic_inpaint"])
def test_run_uses_the_folded_network_and_export_too(family, monkeypatch):
    case = next(c for c in CASES if c.startswith(family))
    model, config = build(case)
    loaded = Loaded(model, config, None, "tiny")
    network = loaded.inference_network()
    assert network is not model and network is loaded.inference_network()  # made once
    assert not _batch_norms(network)
    assert loaded.inference_network(training=True) is model
    seen = []
    import common.inference

    real = common.inference.graph_call
    monkeypatch.setattr(common.inference, "graph_call",
                        lambda m, batch, training=False: seen.append((m, training)) or real(m, batch, training))
    inference = importlib.import_module(f"{family}.inference")
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    options = {"mask": np.pad(np.ones((6, 8)), ((7, 7), (8, 8)))} if family == "glcic_inpaint" else {}
    inference.run(loaded, image, **options)
    assert seen and all(m is network and not training for m, training in seen)
    if family in ("dgf_deblur",):  # the official test.lua's training mode runs the network as trained
        seen.clear()
        inference.run(loaded, image, train_mode=True)
        assert seen and all(m is model and training for m, training in seen)


def test_export_script_exports_the_folded_network(tmp_path, monkeypatch):
    import common.export as ex
    from srgan.export import main

    model, config = build("srgan-bubbliiiing")
    run = tmp_path / "run"
    run.mkdir()
    model.save_weights(str(run / "generator.weights.h5"))
    import dataclasses
    import json

    (run / "config.json").write_text(json.dumps({"family": "srgan", "config": dataclasses.asdict(config)},
                                                default=list))
    exported = []
    real = ex.export
    monkeypatch.setattr(ex, "export", lambda m, *a, **k: exported.append(m) or real(m, *a, **k))
    assert main(["--weights", str(run), "--format", "savedmodel", "--output", str(tmp_path / "out")]) == 0
    assert len(exported) == 1 and not _batch_norms(exported[0])
    x = network_input(model, "srgan-bubbliiiing", 12)
    np.testing.assert_allclose(np.asarray(exported[0](x)), np.asarray(model(x, training=False)), atol=2e-5)
