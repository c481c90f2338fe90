"""Tests for dgf_deblur.layers: the patch split covers the image exactly once."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dgf_deblur.layers import MeanPatchScores, SplitPatches


def _unique_image(batch, height, width, channels):
    # Every pixel value distinct, so any duplicated or missing pixel shows up.
    return np.arange(batch * height * width * channels, dtype="float32").reshape(
        batch, height, width, channels)


@pytest.mark.parametrize("size,patch", [((256, 256), 64), ((12, 20), (4, 5)), ((8, 8), 8)])
def test_split_covers_the_image_exactly_once(size, patch):
    h, w = size
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    x = _unique_image(2, h, w, 3)
    patches = np.asarray(SplitPatches(patch)(x))
    n = (h // ph) * (w // pw)
    assert patches.shape == (2 * n, ph, pw, 3)
    # Exactly once: the multiset of values equals the image's, per image.
    for b in range(2):
        np.testing.assert_array_equal(np.sort(patches[b * n:(b + 1) * n].ravel()),
                                      np.sort(x[b].ravel()))
    # And each patch is the slice at its row-major position (sliced by the patch size).
    cols = w // pw
    for b in range(2):
        for i in range(h // ph):
            for j in range(cols):
                np.testing.assert_array_equal(
                    patches[b * n + i * cols + j],
                    x[b, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw])


def test_upstream_channel_rate_slicing_would_not_cover_the_image():
    # The upstream bug: with channel_rate 16 and 64 px patches the slices are 16 px wide and only
    # cover the top-left 64 x 64 corner. Ours ignore channel_rate entirely.
    x = _unique_image(1, 256, 256, 1)
    upstream = [x[:, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16] for i in range(4) for j in range(4)]
    assert sum(p.size for p in upstream) == 64 * 64 != x.size
    ours = np.asarray(SplitPatches(64)(x))
    assert ours.size == x.size


def test_split_rejects_sizes_that_do_not_tile():
    with pytest.raises(ValueError, match="not a multiple"):
        SplitPatches(64)(np.zeros((1, 100, 128, 3), "float32"))


def test_split_works_with_unknown_batch_and_in_a_model(tmp_path):
    inputs = keras.Input((8, 12, 2))
    outputs = SplitPatches((4, 6), name="split")(inputs)
    assert tuple(outputs.shape) == (None, 4, 6, 2)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "split.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _unique_image(3, 8, 12, 2)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert loaded.get_layer("split").patch_size == (4, 6)


def test_mean_patch_scores_averages_each_image():
    scores = np.arange(2 * 4, dtype="float32").reshape(8, 1)
    out = np.asarray(MeanPatchScores(4)(scores))
    np.testing.assert_allclose(out, [[1.5], [5.5]])
    layer = MeanPatchScores.from_config(MeanPatchScores(16).get_config())
    assert layer.num_patches == 16
