"""Tiles of an instance-norm network normalised with the whole image's statistics
(common/whole_image_norm.py), each with its receptive field as context (common/receptive_field.py).

In float32 the tiled result must equal the whole-image result to rounding; with per-tile statistics
(the behaviour before) it does not, which the tests check too, so they can fail.
"""

import keras
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from common import inference, tiling
from common import whole_image_norm as wn
from common.errors import UserError
from common.receptive_field import receptive_field
from deblur_gan.model import build_generator


@pytest.fixture(scope="module")
def network():
    """A small DeblurGAN ``paper`` generator (instance norms, reflection pads, transposed convs,
    residual blocks) up to its tanh, with random weights."""
    keras.utils.set_random_seed(3)
    model = build_generator("paper", ngf=8, n_blocks=2)
    return keras.Model(model.input, model.get_layer("tanh").output)


def picture(height, width, seed=0):
    noise = np.random.default_rng(seed).uniform(-1, 1, (height, width, 3))
    return np.clip(3 * gaussian_filter(noise, (2, 2, 0)), -1, 1).astype("float32")


def whole_statistics(model, image):
    """Each instance norm's input over the whole image: its mean and (biased) variance, float64."""
    stats = {}
    for norm in wn.instance_norms(model):
        values = np.asarray(keras.Model(model.input, norm.input)(image[None]), np.float64)[0]
        values = values.reshape(-1, values.shape[-1])
        stats[norm.name] = (values.mean(0), values.var(0))
    return stats


def tiles_for(model, image, tile, overlap=32):
    margin = wn.context(model)
    step = tile - overlap - 2 * margin
    return inference._tile_starts(image.shape[0], tile, step), inference._tile_starts(image.shape[1], tile, step)


def test_the_receptive_field_bounds_what_an_output_pixel_depends_on(network):
    # gradient of one output pixel of the frozen copy (its norms a fixed affine map) w.r.t. the input
    import tensorflow as tf

    frozen, _ = wn.frozen_copy(network)
    field = receptive_field(network)
    size, centre = 160, 80
    image = tf.constant(picture(size, size)[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        value = tf.reduce_sum(frozen(image)[0, centre, centre])
    support = np.argwhere(np.abs(np.asarray(tape.gradient(value, image))[0]).sum(-1) > 0)
    reach = np.abs(support - centre).max()
    assert reach <= field.radius
    assert reach >= field.radius - field.stride  # and the bound is tight


def test_frozen_copy_with_the_image_statistics_is_the_network(network):
    image = picture(64, 96)
    frozen, norms = wn.frozen_copy(network)
    assert [n.name for n in norms] == [n.name for n in wn.instance_norms(network)]
    for norm in norms:
        mean, variance = whole_statistics(network, image)[norm.name]
        norm.mean.assign(mean.astype("float32"))
        norm.variance.assign(variance.astype("float32"))
    np.testing.assert_allclose(np.asarray(frozen(image[None])), np.asarray(network(image[None])), atol=2e-5)


@pytest.mark.parametrize("tile", [96, 112])
def test_tiled_output_equals_the_whole_image_output(network, tile, monkeypatch):
    image = picture(150, 230)  # not a multiple of 4: padded as a whole-image run pads it
    whole = inference.restore_array(network, image, tile=0)
    tiled = inference.restore_array(network, image, tile=tile)
    assert tiled.shape == whole.shape == (150, 230, 3)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # the same tiles with each tile's own statistics (what ran before) are far off
    monkeypatch.setattr(wn, "context", lambda model, multiple=4: 0)
    per_tile = inference.restore_array(network, image, tile=tile)
    assert np.abs(per_tile - whole).max() > 0.05


def test_statistics_are_the_whole_image_statistics(network):
    image = inference.pad_to_multiple(picture(150, 230, seed=1), 4)
    tops, lefts = tiles_for(network, image, 96)
    assert len(tops) * len(lefts) >= 6
    runner = wn.WholeImageNorm(network, image, tops, lefts, 96, cache_budget=1e9)
    runner.compute_statistics()
    expected = whole_statistics(network, image)
    assert set(runner.statistics) == set(expected)
    for name, (mean, variance) in runner.statistics.items():
        np.testing.assert_allclose(mean, expected[name][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(variance, expected[name][1], rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("budget, use_disk, where", [
    (1e9, False, "memory"),  # every norm's own input fits: each pass starts one norm back
    (0.0, True, "disk"),     # nothing fits in memory: the cheapest point of each interval in files
])
def test_kept_activations_change_nothing_but_the_work(network, budget, use_disk, where):
    image = inference.pad_to_multiple(picture(120, 200, seed=2), 4)
    tops, lefts = tiles_for(network, image, 96)

    def outputs(runner):
        runner.compute_statistics()
        return [runner.tile_output(top, left) for top, left in runner.tiles]

    recomputed = wn.WholeImageNorm(network, image, tops, lefts, 96, cache_budget=0.0, use_disk=False)
    assert all(point == [] for point, _ in recomputed.keep_plan())  # every pass from the image
    expected = outputs(recomputed)
    assert recomputed.kept_points == []
    runner = wn.WholeImageNorm(network, image, tops, lefts, 96, cache_budget=budget, use_disk=use_disk)
    plan = runner.keep_plan()
    assert len(plan) == len(wn.instance_norms(network))
    assert {place for point, place in plan if point} == {where} and sum(bool(point) for point, _ in plan) >= 8
    got = outputs(runner)
    assert set(runner.kept_where) == {where}
    assert len(runner.kept_points) == sum(bool(point) for point, _ in plan)
    assert runner._folder is None  # the files are gone after the last tile
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_owned_regions_partition_the_image_away_from_inner_edges():
    margin, overlap, tile, size = 20, 32, 120, 396  # sizes are padded to the multiple (4)
    starts = inference._tile_starts(size, tile, tile - overlap - 2 * margin)
    owned = wn._owned(starts, tile, size, 4)
    covered = np.zeros(size, int)
    for start, (low, high) in zip(starts, owned):
        covered[start + low: start + high] += 1
        assert low % 4 == 0 and (start + high == size or high % 4 == 0)
        assert low == 0 or low >= margin  # an inner edge's context is never counted
        assert start + high == size or tile - high >= margin
    assert (covered == 1).all()


def test_a_tile_smaller_than_its_context_is_a_user_error(network):
    margin = wn.context(network)
    image = picture(300, 300)
    with pytest.raises(UserError, match=f"{margin} pixels of context") as error:
        inference.restore_array(network, image, tile=2 * margin)
    least = int(str(error.value).rsplit(" ", 1)[-1])
    assert least == 2 * margin + 32 + 4
    inference.restore_array(network, image, tile=least)  # the size it asks for works


def test_dropout_mode_keeps_per_tile_statistics(network):
    # training=True (DeblurGAN's --stochastic) draws new masks in every pass: no whole-image passes
    image = picture(100, 100)
    calls = []
    original = wn.WholeImageNorm.compute_statistics
    try:
        wn.WholeImageNorm.compute_statistics = lambda self: calls.append(1) or original(self)
        inference.restore_array(network, image, tile=64, training=True)
    finally:
        wn.WholeImageNorm.compute_statistics = original
    assert calls == []


def test_networks_without_instance_norm_are_left_alone():
    keras.utils.set_random_seed(0)
    batch_norm_network = build_generator("keras-port", ngf=4, n_blocks=1)
    assert not wn.supported(batch_norm_network) and wn.context(batch_norm_network) == 0


def test_auto_tile_leaves_room_for_the_kept_activations(network, monkeypatch):
    budget = 400e6
    monkeypatch.setattr(tiling, "memory_budget", lambda *args: budget)
    height, width = 3000, 4000
    kept = wn.kept_bytes_per_pixel(network)
    assert kept > 0
    per_pixel = tiling.activation_bytes_per_pixel(network)
    expected = tiling.choose_tile(height, width, bytes_per_pixel=per_pixel,
                                  budget_bytes=budget - tiling.KEPT_TILING_FACTOR * kept * height * width,
                                  min_tile=tiling.CONTEXT_TILES * wn.context(network))
    tile = tiling.auto_tile(network, height, width)
    assert tile == expected
    assert tile >= tiling.CONTEXT_TILES * wn.context(network)
    assert tile < tiling.choose_tile(height, width, bytes_per_pixel=per_pixel, budget_bytes=budget)


def test_frozen_norm_in_bfloat16_rounds_like_the_fused_instance_norm():
    from common.layers import instance_norm

    x = np.random.default_rng(4).normal(2.0, 3.0, (1, 24, 32, 16)).astype("float32")
    norm = instance_norm(name="n", epsilon=1e-5)
    norm.dtype_policy = keras.DTypePolicy("mixed_bfloat16")
    reference = np.asarray(keras.ops.cast(norm(keras.ops.cast(x, "bfloat16")), "float32"))
    frozen = wn.FrozenInstanceNorm(1e-5, dtype="mixed_bfloat16")
    frozen.build(x.shape)
    bf16 = np.asarray(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32"), np.float64)
    frozen.mean.assign(bf16.mean((0, 1, 2)).astype("float32"))
    frozen.variance.assign(bf16.var((0, 1, 2)).astype("float32"))
    got = np.asarray(keras.ops.cast(frozen(keras.ops.cast(x, "bfloat16")), "float32"))
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, reference, atol=2e-2)  # one bfloat16 step at |y| < 4
