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


@pytest.mark.parametrize("scale, bpp, multiple, budget_mb", [
    (1, 1536.0, 4, 1500), (1, 16384.0, 1, 2200), (4, 24576.0, 1, 2200), (2, 3000.0, 8, 900)])
def test_tile_is_the_largest_multiple_that_fits(scale, bpp, multiple, budget_mb):
    budget = budget_mb * MB
    tile = tiling.choose_tile(3024, 4032, bytes_per_pixel=bpp, budget_bytes=budget, multiple=multiple,
                              scale=scale)
    assert tile % multiple == 0 and tiling.MIN_TILE <= tile < 3024

    def needed(t):
        return tiling.memory_needed(3024, 4032, t, bytes_per_pixel=bpp, scale=scale, multiple=multiple)["run_bytes"]

    assert needed(tile) <= budget < needed(tile + multiple)
    assert needed(0) > budget  # the whole image would not fit


def test_a_streamed_x4_photo_leaves_room_for_large_tiles():
    # SRGAN (24 KB per input pixel by its graph) on a 12 MP photo with 2.2 GB left: the x4 result
    # (195 MP) is held as uint8 and only a strip in float32, so tiles of ~230 px fit. Holding the
    # result and its weights in float32 (16 bytes per output pixel, 3.1 GB) would leave nothing.
    tile = tiling.choose_tile(3024, 4032, bytes_per_pixel=24576, budget_bytes=2200 * MB, multiple=1, scale=4)
    assert 200 <= tile <= 260
    need = tiling.memory_needed(3024, 4032, tile, bytes_per_pixel=24576, scale=4, multiple=1)
    strip = tile * 4 * 4032 * 4 * tiling.STRIP_BUFFERS
    assert 3024 * 4032 * 16 * 3 <= need["run_bytes"] - strip  # the uint8 result is counted
    assert 3024 * 4032 * 16 * 7 == need["write_bytes"]  # the result and Pillow's RGBX copy


def test_wider_images_take_smaller_tiles():
    # the strip buffers grow with the output width: same budget left for the network, smaller tile
    def tile_for(width):
        fixed = tiling.memory_needed(1000, width, 0, bytes_per_pixel=0, scale=4, multiple=1)["run_bytes"]
        return tiling.choose_tile(1000, width, bytes_per_pixel=20000, budget_bytes=fixed + 600 * MB,
                                  multiple=1, scale=4)

    narrow, wide = tile_for(1000), tile_for(8000)
    assert 0 < wide < narrow


def test_memory_model_covers_restore_arrays_own_buffers(monkeypatch):
    # What restore_array allocates with numpy (tracemalloc) for a x4 image with a numpy "network"
    # whose own arrays are counted as its bytes per pixel: within the model, and not far below it.
    import tracemalloc

    from common import inference
    from srgan.data import generator_output_to_uint8

    def network(generator, batch, training):  # x4 nearest upscaling: s and s*s copies of the input
        return np.repeat(np.repeat(batch[0], 4, 0), 4, 1)[None]

    network_bpp = 4 * 3 * (4 + 16)
    monkeypatch.setattr(inference, "_run", network)
    monkeypatch.setattr(tiling, "FINISH_BLOCK_PIXELS", 4096)
    image = np.random.default_rng(2).uniform(-1, 1, (96, 160, 3)).astype("float32")
    tracemalloc.start()
    try:
        out = restore_array(None, image, multiple=1, scale=4, tile=32, overlap=8, finish=generator_output_to_uint8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (384, 640, 3)
    model = tiling.memory_needed(96, 160, 32, bytes_per_pixel=network_bpp, scale=4, multiple=1)["run_bytes"]
    assert 0.6 * model <= peak <= model, (peak, model)


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
