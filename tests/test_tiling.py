"""Automatic tile choice (common.tiling): a pure function of sizes and memory, and the graph
estimate of a network's memory per pixel it is fed with."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common import tiling
from common.inference import restore_array

MB = 1024 ** 2


def test_whole_image_when_it_fits():
    assert tiling.choose_tile(720, 1280, bytes_per_pixel=1000, budget_bytes=2000 * MB) == 0


def test_tile_is_the_largest_multiple_that_fits():
    budget, bpp = 1500 * MB, 1536.0
    tile = tiling.choose_tile(3024, 4032, bytes_per_pixel=bpp, budget_bytes=budget, multiple=4)
    assert tile % 4 == 0 and tiling.MIN_TILE <= tile < 3024
    room = budget - 3024 * 4032 * (tiling.IMAGE_BUFFERS_IN + tiling.IMAGE_BUFFERS_OUT)
    assert tile * tile * bpp <= room < (tile + 4) ** 2 * bpp


def test_more_memory_never_gives_a_smaller_tile():
    tiles = [tiling.choose_tile(3024, 4032, bytes_per_pixel=2000, budget_bytes=b * MB, multiple=8)
             for b in (700, 1000, 1500, 2500, 4000, 10 ** 6)]
    nonzero = [t for t in tiles if t]
    assert nonzero == sorted(nonzero) and all(t % 8 == 0 for t in nonzero)
    assert tiles[-1] == 0  # enough memory: the whole image


def test_tile_clamped_to_min_and_max():
    assert tiling.choose_tile(3024, 4032, bytes_per_pixel=10 ** 6, budget_bytes=100 * MB) == tiling.MIN_TILE
    assert tiling.choose_tile(20000, 20000, bytes_per_pixel=1000, budget_bytes=10 ** 11,
                              max_tile=1024) == 1024


def test_upscaling_output_buffers_shrink_the_tile():
    plain = tiling.choose_tile(2000, 2000, bytes_per_pixel=4000, budget_bytes=2500 * MB, multiple=1)
    upscaled = tiling.choose_tile(2000, 2000, bytes_per_pixel=4000, budget_bytes=2500 * MB, multiple=1,
                                  scale=2)
    assert 0 < upscaled < plain


def _chain(width: int, depth: int = 3):
    x = inputs = keras.Input((None, None, 3))
    for i in range(depth):
        x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"c{i}")(x)
    return keras.Model(inputs, x)


def test_live_bytes_of_a_conv_chain():
    # a chain of 1x1 convs holds at most its input and output at once: 2 x width float32 per pixel
    for width in (8, 32):
        estimate = tiling.activation_bytes_per_pixel(_chain(width)) / tiling.SAFETY
        assert 2 * width * 4 <= estimate <= 2 * width * 4 + 3 * 4 + 1e-6


def test_live_bytes_count_a_skip_connection():
    x = inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(16, 1, use_bias=False, name="a")(x)
    b = keras.layers.Conv2D(16, 1, use_bias=False, name="b")(a)
    c = keras.layers.Conv2D(16, 1, use_bias=False, name="c")(b)
    out = keras.layers.Add(name="add")([a, c])  # `a` stays alive until the add
    estimate = tiling.activation_bytes_per_pixel(keras.Model(inputs, out)) / tiling.SAFETY
    assert estimate >= 3 * 16 * 4


def test_auto_tile_small_image_is_whole_without_a_trace():
    model = _chain(4)
    assert tiling.auto_tile(model, 100, 120) == 0
    assert model not in tiling._ESTIMATES


def test_restore_array_tiles_automatically_when_memory_is_short(monkeypatch):
    model = _chain(4, depth=2)
    image = np.random.default_rng(0).uniform(-1, 1, (300, 260, 3)).astype("float32")
    chosen = []
    real = tiling.choose_tile

    def spy(*args, **kwargs):
        chosen.append(real(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(tiling, "memory_budget", lambda: 300 * 260 * 80 + 96 * 96 * 100.0)
    monkeypatch.setattr(tiling, "choose_tile", spy)
    auto = restore_array(model, image, multiple=4)
    assert chosen and 0 < chosen[0] < 260  # it did tile
    whole = restore_array(model, image, multiple=4, tile=0)
    np.testing.assert_allclose(auto, whole, atol=1e-5)  # 1x1 convs: tiles are exact


@pytest.mark.parametrize("tile", [0, None])
def test_tile_zero_and_none_run_small_images_whole(tile):
    model = _chain(4)
    image = np.random.default_rng(1).uniform(-1, 1, (20, 28, 3)).astype("float32")
    np.testing.assert_allclose(restore_array(model, image, tile=tile), np.asarray(model(image[None]))[0],
                               atol=1e-5)
