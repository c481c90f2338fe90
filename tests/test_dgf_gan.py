"""Tests for dgf_deblur.gan: one real train step per preset changes exactly the intended variables."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import losses
from dgf_deblur.config import get_config
from dgf_deblur.gan import DGFGAN, LOSS_NAMES, build_gan, make_optimizer

TINY = dict(growth_rate=4, bottleneck_channels=8, n_blocks=2, dilations=(1, 2), crop_size=32,
            patch_size=16, d_channels=4, d_layers=3, batch_size=2)


def _batch(seed=0, batch=2, size=32):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    blurred = (0.5 * sharp + 0.5 * np.roll(sharp, 2, axis=2)).astype("float32")
    return tf.constant(blurred), tf.constant(sharp)


def _snapshot(variables):
    return [np.array(v) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, np.array(v)) for b, v in zip(before, variables)]


def _gan(preset, g_lr=None, d_lr=None, **overrides):
    cfg = get_config(preset, **{**TINY, **overrides})
    keras.utils.set_random_seed(0)
    gan = build_gan(cfg, "l1-fallback")
    for name, lr in (("g_optimizer", g_lr), ("g_adv_optimizer", g_lr), ("d_optimizer", d_lr)):
        optimizer = gan.optimizers().get(name)
        if optimizer is not None and lr is not None:
            optimizer.learning_rate = lr
    return gan


@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_train_step_changes_generator_and_discriminator(preset):
    gan = _gan(preset)
    g_vars, d_vars = gan.generator.trainable_variables, gan.discriminator.trainable_variables
    g_before, d_before = _snapshot(g_vars), _snapshot(d_vars)
    g_stats_before = _snapshot(gan.generator.non_trainable_variables)
    logs = gan.train_step(_batch())
    assert set(logs) == set(LOSS_NAMES)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert all(_changed(g_before, g_vars)), "every generator weight should take a step"
    assert all(_changed(d_before, d_vars)), "every discriminator weight should take a step"
    assert any(_changed(g_stats_before, gan.generator.non_trainable_variables))


@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_generator_steps_never_touch_the_discriminator(preset):
    # With D's learning rate 0, only a generator optimizer could move D's weights (the Keras 2
    # d_on_g pitfall upstream): they must stay exactly as they were.
    gan = _gan(preset, d_lr=0.0)
    d_vars = gan.discriminator.trainable_variables
    before = _snapshot(d_vars)
    g_before = _snapshot(gan.generator.trainable_variables)
    gan.train_step(_batch())
    assert not any(_changed(before, d_vars))
    assert all(_changed(g_before, gan.generator.trainable_variables))


@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_discriminator_step_never_touches_the_generator(preset):
    gan = _gan(preset, g_lr=0.0)
    g_vars = gan.generator.trainable_variables
    before = _snapshot(g_vars)
    d_before = _snapshot(gan.discriminator.trainable_variables)
    gan.train_step(_batch())
    assert not any(_changed(before, g_vars))
    assert all(_changed(d_before, gan.discriminator.trainable_variables))


def test_keras_preset_uses_two_generator_optimizers():
    gan = _gan("keras")
    gan.train_step(_batch())
    assert int(gan.g_optimizer.iterations) == 1
    assert int(gan.g_adv_optimizer.iterations) == 1
    assert int(gan.d_optimizer.iterations) == 1
    assert "g_adv_optimizer" in gan.checkpoint_items()
    paper = _gan("paper")
    paper.train_step(_batch())
    assert paper.g_adv_optimizer is None and int(paper.g_optimizer.iterations) == 1


def test_paper_losses_add_up_and_use_the_blurred_condition():
    gan = _gan("paper")
    logs = {k: float(v) for k, v in gan.train_step(_batch()).items()}
    cfg = gan.config
    expected = cfg.adv_weight * logs["g_adv"] + cfg.perceptual_weight * logs["g_perceptual"] \
        + cfg.l1_weight * logs["g_l1"]
    assert logs["g_total"] == pytest.approx(expected, rel=1e-5)
    assert len(gan.discriminator.inputs) == 2
    # With the L1 fallback the perceptual term is the L1 term.
    assert logs["g_perceptual"] == pytest.approx(logs["g_l1"], rel=1e-6)


def test_d_loss_is_mean_bce_of_real_and_fake():
    gan = _gan("keras", d_joint_batch=False, fakes_from_inference_mode=True, d_lr=0.0, g_lr=0.0)
    blurred, sharp = _batch()
    fake = gan.generator(blurred, training=False)
    real_p = gan.discriminator(sharp, training=True)
    fake_p = gan.discriminator(fake, training=True)
    expected = 0.5 * (losses.bce_on_probabilities(1.0, real_p) + losses.bce_on_probabilities(0.0, fake_p))
    logs = gan.train_step((blurred, sharp))
    assert float(logs["d_loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_fit_runs_a_step_in_graph_mode_with_a_perceptual_loss():
    cfg = get_config("paper", **TINY)
    keras.utils.set_random_seed(0)
    perceptual = losses.PerceptualLoss("vgg16", cfg.perceptual_layer, preprocess="none",
                                       distance="l1", weights=None)
    gan = DGFGAN(*_models(cfg), cfg, perceptual)
    gan.compile(make_optimizer(cfg, "g"), make_optimizer(cfg, "d"))
    blurred, sharp = _batch()
    history = gan.fit(tf.data.Dataset.from_tensors((blurred, sharp)).repeat(), steps_per_epoch=2,
                      epochs=1, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history[name][-1]) for name in LOSS_NAMES)
    assert history.history["g_perceptual"][-1] > 0


def test_split_schedule_needs_its_second_optimizer():
    cfg = get_config("keras", **TINY)
    gan = DGFGAN(*_models(cfg), cfg, losses.l1)
    with pytest.raises(ValueError, match="g_adv_optimizer"):
        gan.compile(make_optimizer(cfg, "g"), make_optimizer(cfg, "d"))


def _models(cfg):
    from dgf_deblur.model import build_discriminator, build_generator

    return build_generator(cfg), build_discriminator(cfg)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step(policy):
    keras.config.set_dtype_policy(policy)  # conftest resets it to float32 afterwards
    gan = _gan("keras")
    if policy == "mixed_float16":
        assert isinstance(gan.g_adv_optimizer, keras.mixed_precision.LossScaleOptimizer)
    before = _snapshot(gan.generator.trainable_variables)
    logs = gan.train_step(_batch())
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(_changed(before, gan.generator.trainable_variables))
