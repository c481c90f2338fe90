"""SRGAN train_step (both stages), the LR/HR data pipeline and the Y-channel metric protocol."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import losses
from common.data import ImageSource, bicubic_downscale
from common.image_io import write_image
from common.metrics import psnr_y
from srgan.config import get_config
from srgan.data import downscale_uint8, make_lr, mod_crop, training_dataset
from srgan.gan import SRGAN, make_optimizer
from srgan.model import build_discriminator, build_generator

TINY = dict(filters=8, num_res_blocks=1, upsample_filters=16, d_first_filters=4,
            d_blocks=((4, 2), (8, 1), (8, 2)), d_dense_units=8, hr_crop=16, batch_size=2)


def _batch(config, seed=0):
    rng = np.random.default_rng(seed)
    hr = rng.uniform(-1, 1, (config.batch_size, config.hr_crop, config.hr_crop, 3)).astype("float32")
    lr = np.asarray(make_lr(tf.constant(hr), config.scale, config.lr_range))
    return lr, hr


def _fit_one_step(gan, config):
    lr, hr = _batch(config)
    dataset = tf.data.Dataset.from_tensors((lr, hr)).repeat()
    history = gan.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}


def _snapshot(model):
    return [np.array(w) for w in model.trainable_weights]


def _changed(before, model):
    return [not np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.trainable_weights)]


def test_srresnet_stage_step_changes_generator_only_pixel_loss():
    config = get_config("paper", **TINY)
    assert config.stage == "srresnet"
    gen = build_generator(preset=config)
    gan = SRGAN(gen, None, config=config)
    gan.compile(make_optimizer(config))
    before = _snapshot(gen)
    logs = _fit_one_step(gan, config)
    assert all(_changed(before, gen))
    assert logs["g_pixel"] > 0 and logs["g_total"] == pytest.approx(logs["g_pixel"])
    assert logs["d_loss"] == logs["g_adv"] == logs["g_content"] == 0.0


@pytest.mark.parametrize("preset", ["bubbliiiing", "paper"])
def test_srgan_stage_step_changes_both_networks(preset):
    keras.utils.set_random_seed(0)
    config = get_config(preset, stage="srgan", **TINY)
    gen, disc = build_generator(preset=config), build_discriminator(config)
    perceptual = losses.PerceptualLoss("vgg19", config.vgg_layer, preprocess=config.vgg_preprocess,
                                       feature_scale=config.vgg_feature_scale, weights=None)
    gan = SRGAN(gen, disc, config=config, content_loss=perceptual)
    gan.compile(make_optimizer(config), make_optimizer(config))
    g_before, d_before = _snapshot(gen), _snapshot(disc)
    logs = _fit_one_step(gan, config)
    assert all(_changed(g_before, gen)) and all(_changed(d_before, disc))
    # bubbliiiing: D.train_on_batch(real) then (fake) = two updates; paper: one
    assert int(gan.d_optimizer.iterations.numpy()) == (2 if config.d_split_update else 1)
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    for name in ("d_loss", "g_adv", "g_content", "g_pixel"):
        assert np.isfinite(logs[name]) and logs[name] > 0
    expected = (config.pixel_weight * logs["g_pixel"] + config.content_weight * logs["g_content"]
                + config.adv_weight * logs["g_adv"])
    assert logs["g_total"] == pytest.approx(expected, rel=1e-5)
    # an untrained D outputs probabilities well inside (0, 1): -log D stays moderate
    assert 0.01 < logs["g_adv"] < 5.0


def test_srgan_requires_its_parts():
    config = get_config("paper", stage="srgan", **TINY)
    gen = build_generator(preset=config)
    with pytest.raises(ValueError, match="discriminator"):
        SRGAN(gen, None, config=config, content_loss=losses.l1)
    with pytest.raises(ValueError, match="content_loss"):
        SRGAN(gen, build_discriminator(config), config=config)


def test_generator_loss_is_the_weighted_sum_computed_by_hand():
    """One srgan step, recomputed outside the model with the same (pre-update) generator."""
    config = get_config("paper", stage="srgan", d_split_update=True, **TINY)
    gen, disc = build_generator(preset=config), build_discriminator(config)
    gan = SRGAN(gen, disc, config=config, content_loss=losses.l1)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))  # weights stay put
    lr, hr = _batch(config, seed=3)
    logs = {k: float(v) for k, v in gan.train_step((tf.constant(lr), tf.constant(hr))).items()}
    sr = gen(lr, training=True)
    probs = np.asarray(disc(sr, training=True), np.float64)
    adv = -np.mean(np.log(np.clip(probs, 1e-7, 1 - 1e-7)))
    pixel = np.mean((np.asarray(sr, np.float64) - hr) ** 2)
    content = np.mean(np.abs(np.asarray(sr, np.float64) - hr))
    assert logs["g_pixel"] == pytest.approx(pixel, rel=1e-4)
    assert logs["g_adv"] == pytest.approx(adv, rel=1e-4)
    assert logs["g_total"] == pytest.approx(content + 1e-3 * adv, rel=1e-4)


# ---- data ------------------------------------------------------------------------------------

@pytest.fixture
def hr_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 52), (33, 47), (20, 30)]):  # the last is smaller than the crop
        write_image(tmp_path / f"img{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return tmp_path


@pytest.mark.parametrize("lr_range,low", [("signed", -1.0), ("unit", 0.0)])
def test_training_dataset_shapes_ranges_and_lr(hr_folder, lr_range, low):
    source = ImageSource(sorted(hr_folder.glob("*.png")))
    config = get_config("bubbliiiing", hr_crop=24, batch_size=3, lr_range=lr_range)
    lr, hr = next(iter(training_dataset(source, config)))
    assert lr.shape == (3, 6, 6, 3) and hr.shape == (3, 24, 24, 3)
    assert float(tf.reduce_min(lr)) >= low and float(tf.reduce_max(lr)) <= 1.0
    assert float(tf.reduce_min(hr)) >= -1.0 and float(tf.reduce_max(hr)) <= 1.0
    # LR = antialiased bicubic of the HR crop, on the 8-bit grid
    signed = bicubic_downscale(hr, 4, value_range=(-1, 1))
    expected = np.round((np.asarray(signed) + 1) * 127.5) / 127.5 - 1
    if lr_range == "unit":
        expected = (expected + 1) / 2
    np.testing.assert_allclose(np.asarray(lr), expected, atol=1e-6)


def test_training_dataset_resumes_on_the_same_batches(hr_folder):
    source = ImageSource(sorted(hr_folder.glob("*.png")))
    config = get_config("bubbliiiing", hr_crop=16, batch_size=2)
    straight = [b[1].numpy() for b in training_dataset(source, config).take(4)]
    resumed = [b[1].numpy() for b in training_dataset(source, config, start_step=2).take(2)]
    np.testing.assert_array_equal(straight[2], resumed[0])
    np.testing.assert_array_equal(straight[3], resumed[1])


def test_uint8_downscale_matches_the_training_lr():
    rng = np.random.default_rng(1)
    hr = mod_crop(rng.integers(0, 256, (35, 42, 3), dtype=np.uint8), 4)
    assert hr.shape == (32, 40, 3)
    lr8 = downscale_uint8(hr, 4)
    lr_train = np.asarray(make_lr(tf.constant(hr[None] / 127.5 - 1.0, tf.float32), 4, "signed"))[0]
    np.testing.assert_allclose(lr8 / 127.5 - 1.0, lr_train, atol=1.5 / 127.5)


# ---- metric protocol -------------------------------------------------------------------------

def test_y_channel_psnr_with_border_matches_numpy():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (30, 26, 3)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 8, a.shape), 0, 255).round()

    def y(img):  # BT.601, MATLAB rgb2ycbcr on [0, 255]
        return 16 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255

    border = 4
    ya, yb = y(a)[border:-border, border:-border], y(b)[border:-border, border:-border]
    expected = 10 * np.log10(255.0 ** 2 / np.mean((ya - yb) ** 2))
    assert psnr_y(a / 255, b / 255, border=border) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_srgan_step_under_mixed_precision(policy):
    """Loss scaling (fp16) and bf16: finite float32 losses, both networks updated."""
    from common.precision import set_precision

    set_precision(policy)  # the autouse conftest fixture restores float32
    config = get_config("bubbliiiing", **TINY)
    gen, disc = build_generator(preset=config), build_discriminator(config)
    assert gen.get_layer("res1_conv1").compute_dtype == policy.split("_")[1]
    gan = SRGAN(gen, disc, config=config, content_loss=losses.l1)
    gan.compile(make_optimizer(config), make_optimizer(config))
    if policy == "mixed_float16":
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    g_before, d_before = _snapshot(gen), _snapshot(disc)
    logs = _fit_one_step(gan, config)
    assert all(np.isfinite(v) for v in logs.values())
    assert any(_changed(g_before, gen)) and any(_changed(d_before, disc))
