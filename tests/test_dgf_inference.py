"""Tests for dgf_deblur.inference."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from common.errors import UserError
from common.inference import graph_call
from dgf_deblur.inference import deblur, load, tile_for
from dgf_deblur.model import build_generator

TINY = dict(growth_rate=4, bottleneck_channels=8, n_blocks=2, dilations=(1, 2))


def test_graph_call_matches_the_eager_model():
    g = build_generator("paper", **TINY)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 21, 34, 3)).astype("float32")
    np.testing.assert_allclose(graph_call(g, x), np.asarray(g(x, training=False)), atol=1e-5)
    # Another size runs through the same cached function.
    assert graph_call(g, x[:, :9, :11]).shape == (1, 9, 11, 3)


def test_tile_rule():
    # None: restore_array chooses (common.tiling, tested in tests/test_tiling.py); 0: whole image
    assert tile_for(argparse.Namespace(tile=None), (3024, 4032)) is None
    assert tile_for(argparse.Namespace(tile=0), (3024, 4032)) == 0
    assert tile_for(argparse.Namespace(tile=128), (64, 64)) == 128


def test_deblur_tiled_matches_whole_image_in_the_middle():
    g = build_generator("keras", **TINY)
    image = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    whole = deblur(g, image, argparse.Namespace(tile=0, train_mode=False))
    tiled = deblur(g, image, argparse.Namespace(tile=48, train_mode=False))
    assert whole.shape == tiled.shape == image.shape and whole.dtype == np.uint8
    # The receptive field (radius 6 px here) is well inside the tiles' overlap away from seams.
    assert np.abs(whole.astype(int) - tiled.astype(int)).mean() < 2.0


def test_load_from_run_config(tmp_path):
    import json

    g = build_generator("paper", **TINY)
    path = tmp_path / "generator.weights.h5"
    g.save_weights(path)
    recorded = {"preset": "paper", **TINY, "dilations": [1, 2], "lr": 3e-4}
    (tmp_path / "config.json").write_text(json.dumps({"config": recorded}))
    loaded = load(path)
    assert loaded.config.preset == "paper" and loaded.config.dilations == (1, 2)
    assert loaded.run_dir == tmp_path and loaded.description.startswith("weights: generator.weights.h5 = run ")
    x = np.zeros((1, 8, 8, 3), "float32")
    np.testing.assert_array_equal(np.asarray(loaded.model(x)), np.asarray(g(x)))
    with pytest.raises(UserError, match="--preset keras contradicts"):
        load(path, preset="keras")
    (tmp_path / "config.json").unlink()
    with pytest.raises(UserError, match="do not fit"):  # a bare file built as the default keras preset
        load(path)
