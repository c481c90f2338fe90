"""SRGAN upstream releases (bubbliiiing's Keras 2 .h5, krasserm's tf.keras .h5): rebuilt in tf-keras
with random weights and BatchNorm statistics, saved with save_weights, loaded here with no --preset
(the layout and the input range are detected), outputs compared in [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError

FILTERS, BLOCKS = 8, 2


@pytest.fixture(scope="module")
def tk():
    return pytest.importorskip("tf_keras", reason="tf-keras is needed to write Keras 2 .h5 files")


def _save(tk, layout, path, seed):
    from upstream_models import randomize_keras2, srresnet_generator

    model = srresnet_generator(tk, layout, FILTERS, BLOCKS)
    randomize_keras2(model, seed)
    model.save_weights(str(path), save_format="h5")
    return model


def test_bubbliiiing_h5_is_detected_and_matches(tk, tmp_path):
    from srgan.inference import load, run

    path = tmp_path / "Generator_SRGAN.h5"
    upstream = _save(tk, "bubbliiiing", path, 0)
    lr = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    x = (lr.astype("float32") / 127.5 - 1.0)[None]  # utils.preprocess_input
    expected = upstream(x, training=False).numpy()[0]

    loaded = load(path)
    config = loaded.config
    assert (config.preset, config.lr_range, config.bn_epsilon) == ("bubbliiiing", "signed", 1e-3)
    assert (config.filters, config.num_res_blocks, config.scale) == (FILTERS, BLOCKS, 4)
    assert loaded.description.startswith("weights: Generator_SRGAN.h5 = bubbliiiing/srgan-keras")
    got = np.asarray(loaded.model(x, training=False))[0]
    assert got.shape == (36, 44, 3) and np.abs(got - expected).max() <= 1e-4
    sr = run(loaded, lr)  # uint8 in, uint8 out, x4
    assert sr.shape == (36, 44, 3) and sr.dtype == np.uint8
    assert np.abs(sr.astype(int) - np.round((expected + 1) * 127.5).astype(int)).max() <= 1

    # the silent wrong load of issue 9: a paper preset must not take this file
    with pytest.raises(UserError, match="--preset paper contradicts.*bubbliiiing"):
        load(path, "paper")


def test_krasserm_h5_is_detected_with_its_input_range(tk, tmp_path):
    from srgan.inference import load

    path = tmp_path / "pre_generator.h5"
    upstream = _save(tk, "krasserm", path, 1)
    pixels = np.random.default_rng(1).uniform(0, 255, (1, 6, 10, 3)).astype("float32")
    expected = upstream(pixels, training=False).numpy() / 127.5 - 1.0  # its output is [0, 255]

    loaded = load(path)
    config = loaded.config
    assert (config.preset, config.lr_range, config.bn_epsilon, config.stage) == ("paper", "unit", 1e-3, "srresnet")
    assert "krasserm" in loaded.description and "[0, 1]" in loaded.description
    got = np.asarray(loaded.model(pixels / 255.0, training=False))  # normalize_01, outside the model
    assert np.abs(got - expected).max() <= 1e-4
    with pytest.raises(UserError, match="--preset bubbliiiing contradicts.*krasserm"):
        load(path, "bubbliiiing")


def test_a_discriminator_file_is_refused(tk, tmp_path):
    from srgan.inference import load

    L = tk.layers
    inputs = L.Input((16, 16, 3))
    x = L.LeakyReLU(0.2)(L.Conv2D(4, 3, padding="same")(inputs))
    model = tk.Model(inputs, L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling2D()(x)))
    path = tmp_path / "Discriminator_SRGAN.h5"
    model.save_weights(str(path), save_format="h5")
    with pytest.raises(UserError, match="not an SRGAN generator"):
        load(path)
