"""DeblurGAN train step: gradient penalty by hand, one step of each update style, the lr schedule."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from common import losses
from deblur_gan.config import get_config
from deblur_gan.gan import LOSS_NAMES, DeblurGAN, learning_rate, make_content_loss, make_optimizer
from deblur_gan.model import build_discriminator, build_generator

TINY = dict(ngf=4, ndf=4, n_blocks=1, critic_updates=2, content_loss="l1")


# ----------------------------------------------------------------------------- gradient penalty
def _square_critic(weights):
    """D(x) = 1x1 conv of x**2 with kernel ``weights``: dD/dx = 2 * weights[c] * x per pixel."""
    inputs = keras.Input((None, None, 3))
    squared = layers.Multiply()([inputs, inputs])
    conv = layers.Conv2D(1, 1, use_bias=False)
    out = conv(squared)
    conv.set_weights([np.asarray(weights, "float32").reshape(1, 1, 3, 1)])
    return keras.Model(inputs, out)


@pytest.mark.parametrize("mode", ["standard", "official"])
def test_gradient_penalty_equals_hand_computation(mode):
    rng = np.random.default_rng(0)
    a = np.array([0.3, -0.5, 0.8])
    critic = _square_critic(a)
    real = rng.uniform(-1, 1, (3, 4, 5, 3)).astype("float32")
    fake = rng.uniform(-1, 1, (3, 4, 5, 3)).astype("float32")
    # the same mixing factors the penalty will draw (same seed, same shape)
    alpha_shape = (3, 1, 1, 1) if mode == "standard" else (1, 1, 1, 1)
    alpha = keras.ops.convert_to_numpy(keras.random.uniform(alpha_shape, 0.0, 1.0, seed=keras.random.SeedGenerator(7)))
    got = float(losses.gradient_penalty(critic, real, fake, keras.random.SeedGenerator(7), mode=mode))

    x_hat = real.astype(np.float64) + alpha * (fake - real)
    grad = 2.0 * a * x_hat  # (B, H, W, C)
    if mode == "standard":  # Gulrajani et al.: ||grad||_2 over (H, W, C) of each sample
        norms = np.sqrt((grad ** 2).sum(axis=(1, 2, 3)))
    else:  # official models/losses.py: gradients.norm(2, dim=1) on NCHW = over channels, per pixel
        norms = np.sqrt((grad ** 2).sum(axis=-1))
    expected = ((norms - 1.0) ** 2).mean()
    assert got == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- one train step
def _gan(preset, size, **overrides):
    cfg = get_config(preset, **{**TINY, "crop": (size, size), **overrides})
    keras.utils.set_random_seed(1)
    gan = DeblurGAN(build_generator(cfg), build_discriminator(cfg), cfg, make_content_loss(cfg), seed=0)
    # eager: the step's logic without minutes of graph tracing (the script tests run it compiled)
    gan.compile(make_optimizer(cfg, "g_adam"), make_optimizer(cfg, "d_adam"), run_eagerly=True)
    return gan, cfg


def _batch(size, batch=2):
    rng = np.random.default_rng(3)
    sharp = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    blurred = (0.5 * sharp + 0.5 * np.roll(sharp, 1, axis=2)).astype("float32")
    return blurred, sharp


def _snapshot(model):
    # kernels only: a conv bias in front of InstanceNorm has a zero gradient (the norm removes it)
    return [np.array(v) for v in model.trainable_variables if "kernel" in v.path]


@pytest.mark.parametrize("preset", ["paper", "keras-port"])
def test_one_step_changes_generator_and_critic(preset):
    gan, cfg = _gan(preset, 16)
    blurred, sharp = _batch(16)
    g_before, d_before = _snapshot(gan.generator), _snapshot(gan.discriminator)
    logs = gan.train_on_batch(blurred, sharp, return_dict=True)
    assert set(logs) == set(LOSS_NAMES)
    assert all(np.isfinite(float(v)) for v in logs.values())
    g_after, d_after = _snapshot(gan.generator), _snapshot(gan.discriminator)
    assert all(not np.array_equal(b, a) for b, a in zip(g_before, g_after))
    assert all(not np.array_equal(b, a) for b, a in zip(d_before, d_after))
    # official: one Adam step per critic update; Keras port: a real step and a fake step each
    per_update = 1 if cfg.update_style == "official" else 2
    assert int(gan.d_optimizer.iterations) == cfg.critic_updates * per_update
    assert int(gan.g_optimizer.iterations) == 1
    if preset == "paper":
        assert float(logs["gp"]) > 0
        assert float(logs["g_total"]) == pytest.approx(
            float(logs["g_adv"]) + cfg.content_weight * float(logs["g_content"]), rel=1e-4, abs=1e-4)
    else:
        assert float(logs["gp"]) == 0.0
        assert 0.0 < float(logs["g_adv"]) < 1.0  # mean(+1 * sigmoid score)


def test_official_generator_step_uses_the_critic_after_its_updates():
    """backward_G runs after the critic updates: with them the adversarial term differs."""
    results = []
    for critic_updates in (1, 3):
        gan, _ = _gan("paper", 16, critic_updates=critic_updates, dropout=0.0)
        blurred, sharp = _batch(16)
        logs = gan.train_on_batch(blurred, sharp, return_dict=True)
        results.append(float(logs["g_adv"]))
    assert results[0] != pytest.approx(results[1])


def test_perceptual_content_loss_pre_activation_with_random_vgg():
    cfg = get_config("paper")
    loss = make_content_loss(cfg, vgg_weights=None)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, -x)) > 0.0
    # pre-activation conv3_3 features can be negative (after a ReLU they could not)
    features = keras.ops.convert_to_numpy(loss.features(x))
    assert features.shape[-1] == 256 and features.min() < 0


# ----------------------------------------------------------------------------- schedule
def test_learning_rate_matches_official_update_loop():
    cfg = get_config("paper")  # 300 epochs, decay over the last 150
    steps = 10
    lr, expected = cfg.lr, {}
    for epoch in range(1, cfg.epochs + 1):  # official train.py, epochs counted from 1
        expected[epoch - 1] = lr
        if epoch > cfg.epochs - cfg.decay_epochs:
            lr -= cfg.lr / cfg.decay_epochs  # update_learning_rate()
    for k in (0, 149, 150, 151, 200, 299):
        assert learning_rate(cfg, k * steps + 3, steps) == pytest.approx(expected[k], abs=1e-12)
    assert learning_rate(cfg, 150 * steps, steps) == cfg.lr
    assert learning_rate(cfg, 299 * steps, steps) == pytest.approx(cfg.lr / 150)
    assert learning_rate(get_config("keras-port"), 10_000, 5) == 1e-4


@pytest.mark.parametrize("preset", ["paper", "keras-port"])
def test_compiled_step_equals_eager_step(preset):
    """The traced step (critic updates in a tf.while_loop) computes what the eager loop does."""
    results = []
    for eager in (True, False):
        cfg = get_config(preset, **{**TINY, "crop": (16, 16), "critic_updates": 3, "dropout": 0.0})
        keras.utils.set_random_seed(1)
        gan = DeblurGAN(build_generator(cfg), build_discriminator(cfg), cfg, make_content_loss(cfg), seed=0)
        gan.compile(make_optimizer(cfg, "g_adam"), make_optimizer(cfg, "d_adam"), run_eagerly=eager)
        logs = gan.train_on_batch(*_batch(16), return_dict=True)
        results.append((logs, _snapshot(gan.generator) + _snapshot(gan.discriminator)))
        assert int(gan.d_optimizer.iterations) == 3 * (1 if preset == "paper" else 2)
    (eager_logs, eager_weights), (graph_logs, graph_weights) = results
    for name in LOSS_NAMES:
        assert float(graph_logs[name]) == pytest.approx(float(eager_logs[name]), rel=1e-4, abs=1e-5)
    for a, b in zip(eager_weights, graph_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
