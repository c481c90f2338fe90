"""GLCIC runs the completion network only around the holes (glcic_inpaint/regions.py): the receptive
field read from the layers, the crops and tiles, equality with the whole-image run, Poisson on a crop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from common.receptive_field import input_interval, layer_steps
from glcic_inpaint import inference, regions
from glcic_inpaint.config import get_config
from glcic_inpaint.model import build_completion_network, build_inpainter

MEAN = (0.45, 0.4, 0.35)


def _inpainter(preset, filters=8, seed=3):
    """Random weights whose output varies over the image (regions.varied_weights): with Keras'
    default init every output is 0.5 +- 1e-4, where a wrong value would not show."""
    keras.utils.set_random_seed(seed)
    config = get_config(preset, filters=filters, mean_color=MEAN if preset == "paper" else None)
    network = build_completion_network(config)
    regions.varied_weights(network, seed)
    return build_inpainter(network, config, config.mean_color), config


def _positive(network):
    """Every conv kernel a positive average, biases 0, BatchNorm the identity: every path from an
    input pixel to an output pixel adds a positive term, so the gradient's support is exactly the
    receptive field (no ReLU switched off, no cancellation)."""
    for layer in network.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = weights
            layer.set_weights([np.ones_like(gamma), np.zeros_like(beta), np.zeros_like(mean), np.ones_like(var)])
        else:
            kernel = weights[0]
            layer.set_weights([np.full_like(kernel, 1.0 / kernel[..., 0].size)]
                              + [np.zeros_like(w) for w in weights[1:]])
    return network


@pytest.mark.parametrize("preset", ["paper", "tadax"])
def test_receptive_field_is_the_gradient_support(preset):
    network = _positive(build_completion_network(preset, filters=4))
    field = regions.receptive_field(network)
    steps = layer_steps(network, regions.POINTWISE)
    x = tf.constant(np.full((1, 8, 512, network.inputs[0].shape[-1]), 0.5, np.float32))
    before = after = 0
    for column in range(240, 244):  # the four phases of the stride-4 grid
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = network(x, training=False)[0, 4, column, 0]
        support = np.flatnonzero(tape.gradient(y, x).numpy()[0].sum(axis=(0, 2)) != 0)
        assert (support[0], support[-1]) == input_interval(steps, 1, column, column)
        before, after = max(before, column - support[0]), max(after, support[-1] - column)
    assert field.before[1] == before and field.after[1] == after and field.stride == 4
    # the same from the inpainter (pointwise fill and compositing around the network)
    inpainter = build_inpainter(network, preset, mean_color=MEAN)
    assert regions.receptive_field(inpainter) == field
    # about 150 pixels each way at any width (paper Table 1)
    assert field == regions.receptive_field(build_completion_network(preset, filters=64))
    assert 145 <= field.radius <= 160


def _mask(shape, boxes):
    mask = np.zeros(shape, np.float32)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = 1
    return mask


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 8 + 2, shape[1] // 8 + 2, 3)).astype(np.uint8)
    from PIL import Image

    smooth = np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.BICUBIC))
    return np.clip(smooth.astype(int) + rng.integers(-20, 21, smooth.shape), 0, 255).astype(np.uint8)


def _assembled(inpainter, image, mask, config, **options):
    """The float output of complete_regions over the hole pixels (NaN elsewhere)."""
    out = np.full(image.shape, np.nan, np.float32)
    hole = mask > 0.5
    covered = np.zeros(mask.shape, int)
    for (top, left, bottom, right), values in inference.complete_regions(inpainter, image, mask, config, **options):
        assert values.shape == (bottom - top, right - left, 3)
        out[top:bottom, left:right] = values
        covered[top:bottom, left:right] += 1
    assert (covered[hole] == 1).all()  # every hole pixel exactly once
    return out[hole]


def _psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# odd sizes; holes on the top-left corner, the bottom / right borders (inside the reflect padding),
# the bottom-right corner and the middle
SHAPE = (421, 347)
HOLES = [(0, 0, 20, 31), (397, 60, 421, 101), (150, 330, 190, 347), (405, 335, 421, 347), (200, 170, 231, 199)]


@pytest.mark.parametrize("preset", ["paper", "tadax"])
def test_regions_and_tiles_equal_the_whole_image(preset):
    inpainter, config = _inpainter(preset)
    image, mask = _image(SHAPE), _mask(SHAPE, HOLES)
    whole = _assembled(inpainter, image, mask, config, tile=0)
    for tile in (None, 64, 24):
        parts = _assembled(inpainter, image, mask, config, tile=tile)
        assert _psnr(parts, whole) >= 50, tile
        assert np.abs(parts - whole).max() < 1e-4, tile
    # the uint8 results: outside the holes the input, inside at most a rounding step apart
    tiled, full = inference.complete(inpainter, image, mask, config, tile=64), \
        inference.complete(inpainter, image, mask, config, tile=0)
    np.testing.assert_array_equal(tiled[mask == 0], image[mask == 0])
    assert np.abs(tiled.astype(int) - full.astype(int)).max() <= 1
    # crops of many sizes, one graph: traced for the first size, then once with relaxed shapes
    from common.inference import _GRAPH_CACHE

    assert _GRAPH_CACHE[inpainter][False].experimental_get_tracing_count() <= 2


def test_a_too_small_margin_differs():
    """The test above can fail: crops grown by 5/6 of the field (25 pixels short) change the
    completion."""
    inpainter, config = _inpainter("paper")
    image, mask = _image(SHAPE, seed=1), _mask(SHAPE, [(200, 150, 230, 190)])
    whole = _assembled(inpainter, image, mask, config, tile=0)
    field = regions.receptive_field(inpainter)
    short = tuple(r * 5 // 6 for r in field.before), tuple(r * 5 // 6 for r in field.after)
    parts = _assembled(inpainter, image, mask, config, tile=None, margin=short)
    assert np.abs(parts - whole).max() > 1e-3
    exact = _assembled(inpainter, image, mask, config, tile=None)
    assert np.abs(exact - whole).max() < 1e-4


def test_plan_covers_holes_with_aligned_crops():
    field = regions.Field((153, 153), (150, 150), 4)
    hole = _mask((1001, 907), [(0, 0, 9, 9), (500, 400, 530, 700), (990, 890, 1001, 907)]) > 0
    padded = (1004, 908)
    one = regions.plan(hole, field, padded)
    assert len(one) == 1 and one[0].keep == (0, 0, 1001, 907) and one[0].crop == (0, 0, 1004, 908)
    tiles = regions.plan(hole, field, padded, tile=256)
    covered = np.zeros(hole.shape, int)
    for part in tiles:
        top, left, bottom, right = part.keep
        c_top, c_left, c_bottom, c_right = part.crop
        assert c_top % 4 == 0 and c_left % 4 == 0 and c_bottom % 4 == 0 and c_right % 4 == 0
        assert c_bottom <= padded[0] and c_right <= padded[1]
        assert c_top == 0 or top - c_top >= 153
        assert c_left == 0 or left - c_left >= 153
        assert c_bottom == padded[0] or c_bottom - bottom >= 150
        assert c_right == padded[1] or c_right - right >= 150
        assert bottom - top <= 256 and right - left <= 256
        assert hole[top:bottom, left:right].any()
        covered[top:bottom, left:right] += 1
    assert (covered[hole] == 1).all() and covered.max() == 1
    # tiles shrink to their holes; corners one each
    assert len(tiles) == 6  # rows 500-529 cross a tile row, columns 400-699 a tile column
    assert regions.plan(np.zeros((8, 8), bool), field, (8, 8)) == []
    side = regions.tile_for_budget(field, 1000.0, 1000.0 * 1000 ** 2)
    assert side == 1000 - 303 - 6


def test_automatic_tiles_when_memory_is_short(monkeypatch):
    from common import tiling

    inpainter, config = _inpainter("paper", seed=4)
    image, mask = _image(SHAPE, seed=2), _mask(SHAPE, HOLES)
    hole = mask > 0.5
    assert len(inference.plan_tiles(inpainter, hole, (424, 348))) == 1
    per_pixel = inference._bytes_per_pixel(inpainter)
    budget = per_pixel * (64 + 303 + 6) ** 2
    monkeypatch.setattr(tiling, "memory_budget", lambda: budget)
    tiles = inference.plan_tiles(inpainter, hole, (424, 348))
    assert len(tiles) > 1 and max(t.crop_pixels for t in tiles) * per_pixel <= budget
    whole = _assembled(inpainter, image, mask, config, tile=0)
    assert np.abs(_assembled(inpainter, image, mask, config) - whole).max() < 1e-4


def test_tile_flag_errors():
    inpainter, config = _inpainter("paper", filters=4)
    loaded = inference.Loaded(inpainter, config, None, "random")
    image, mask = _image((32, 40)), _mask((32, 40), [(4, 4, 12, 12)])
    for tile in (-1, 4):
        with pytest.raises(UserError, match="--tile"):
            inference.run(loaded, image, mask=mask, tile=tile)
    out = inference.run(loaded, image, mask=mask, tile=8)
    assert out.shape == image.shape and np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])
    # no hole: the input back, the network not run
    np.testing.assert_array_equal(inference.run(loaded, image, mask=np.zeros((32, 40))), image)


@pytest.mark.parametrize("holes", [
    [(30, 40, 60, 90)],
    [(0, 0, 25, 30), (100, 130, 120, 160), (50, 60, 70, 75)],  # corners and the middle
    [(0, 20, 120, 40)],  # top to bottom
    [(30, 40, 50, 60), (60, 80, 75, 100)],  # two holes well inside: the crop is much smaller
])
def test_poisson_on_a_crop_equals_the_whole_image(holes):
    image = _image((120, 160), seed=5)
    mask = _mask((120, 160), holes)
    completed = image.copy()
    completed[mask > 0] = np.random.default_rng(6).integers(0, 256, (int(mask.sum()), 3))
    cropped = inference.poisson_blend(completed, mask)
    whole = inference._poisson_whole(completed, mask > 0)
    np.testing.assert_array_equal(cropped, whole)
    np.testing.assert_array_equal(cropped[mask == 0], completed[mask == 0])
    assert not np.array_equal(cropped[mask > 0], completed[mask > 0])
