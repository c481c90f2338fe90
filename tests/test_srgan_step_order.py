"""SRGAN `bubbliiiing` step: the critic's fakes come from G's moving statistics as they were
before the step (bubbliiiing/srgan-keras utils/utils_fit.py: ``G_model.predict`` runs before any
training-mode forward of G)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from srgan.config import get_config
from srgan.data import make_lr
from srgan.gan import SRGAN, make_optimizer
from srgan.model import build_discriminator, build_generator

# bn_momentum 0.5: one training-mode forward moves the moving averages far enough that fakes made
# after it are clearly different from fakes made before it (the test can fail).
TINY = dict(filters=8, num_res_blocks=1, upsample_filters=16, d_first_filters=4,
            d_blocks=((4, 2), (8, 1)), d_dense_units=8, hr_crop=16, batch_size=2, bn_momentum=0.5)


class RecordingSRGAN(SRGAN):
    """Keeps the fakes the critic step received, in a variable (works inside ``fit``'s graph)."""

    def __init__(self, *args, fake_shape, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen_fakes = tf.Variable(tf.zeros(fake_shape), trainable=False)

    def _discriminator_step(self, hr, fake):
        self.seen_fakes.assign(tf.cast(fake, tf.float32))
        return super()._discriminator_step(hr, fake)


def _set_moving_statistics(model, rng):
    """Non-default moving mean / variance in every BatchNormalization layer."""
    count = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0.0, 0.5, shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 3.0, shape).astype("float32"))
            count += 1
    assert count > 0


def _networks_and_batch(config, seed):
    """Tiny G and D (G with non-default moving statistics) and one (lr, hr) batch."""
    gen, disc = build_generator(preset=config), build_discriminator(config)
    rng = np.random.default_rng(seed)
    _set_moving_statistics(gen, rng)
    hr = rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    lr = np.asarray(make_lr(tf.constant(hr), config.scale, config.lr_range))
    return gen, disc, lr, hr


def test_critic_fakes_use_the_moving_statistics_from_before_the_step():
    """Inside fit's compiled step (the parity tests run the step eagerly)."""
    keras.utils.set_random_seed(3)
    config = get_config("bubbliiiing", content_weight=0.0, **TINY)
    assert config.d_fakes_inference_bn
    gen, disc, lr, hr = _networks_and_batch(config, 0)

    before = gen.get_weights()
    expected = np.asarray(gen(lr, training=False))  # G.predict before the step
    gan = RecordingSRGAN(gen, disc, config=config, fake_shape=hr.shape)
    gan.compile(make_optimizer(config), make_optimizer(config))
    gan.fit(tf.data.Dataset.from_tensors((lr, hr)), epochs=1, verbose=0)

    seen = gan.seen_fakes.numpy()
    np.testing.assert_allclose(seen, expected, atol=1e-6, rtol=0)
    # The check can fail: the old order (training-mode forward, then the inference-mode fakes),
    # from the same pre-step weights, gives fakes made with moved statistics.
    gen.set_weights(before)
    gen(lr, training=True)
    old_order = np.asarray(gen(lr, training=False))
    assert np.max(np.abs(old_order - expected)) > 1e-4  # 100x the tolerance above


def test_paper_preset_critic_sees_the_training_mode_forward():
    keras.utils.set_random_seed(4)
    config = get_config("paper", stage="srgan", content_weight=0.0, d_head="gap", **TINY)
    assert not config.d_fakes_inference_bn
    gen, disc, lr, hr = _networks_and_batch(config, 1)

    weights = gen.get_weights()
    expected = np.asarray(gen(lr, training=True))  # batch statistics, pre-update weights
    gen.set_weights(weights)  # undo the moving-average update of that call
    gan = RecordingSRGAN(gen, disc, config=config, fake_shape=hr.shape)
    gan.compile(make_optimizer(config), make_optimizer(config))
    gan.train_step((tf.constant(lr), tf.constant(hr)))  # eager: the compiled step is tested above
    np.testing.assert_allclose(gan.seen_fakes.numpy(), expected, atol=1e-5, rtol=0)


def test_shared_optimizer_is_one_adam_and_scales_the_first_generator_update():
    """bubbliiiing's train.py compiles D and the combined model with ONE Adam: after a step its
    counter is 3 (D real, D fake, G), and G's first update has Adam's bias correction at t = 3:
    sqrt(1 - b2^3) / (1 - b1^3) * (1 - b1) / sqrt(1 - b2) = 0.6388 of the t = 1 update."""
    keras.utils.set_random_seed(5)
    gen, disc, lr, hr = _networks_and_batch(get_config("bubbliiiing", **TINY), 2)
    g_start, d_start = gen.get_weights(), disc.get_weights()
    deltas = {}
    for shared in (False, True):
        config = get_config("bubbliiiing", content_weight=0.0, shared_optimizer=shared, **TINY)
        gen, disc = build_generator(preset=config), build_discriminator(config)
        gen.set_weights(g_start)
        disc.set_weights(d_start)
        d_train, g_train = ([np.array(w) for w in m.trainable_weights] for m in (disc, gen))
        gan = SRGAN(gen, disc, config=config)
        gan.compile(make_optimizer(config), make_optimizer(config))
        gan.train_step((tf.constant(lr), tf.constant(hr)))
        if shared:
            assert gan.d_optimizer is gan.g_optimizer
            assert int(gan.g_optimizer.iterations.numpy()) == 3
            assert "d_optimizer" not in gan.checkpoint_items()
        else:
            assert int(gan.g_optimizer.iterations.numpy()) == 1
            assert int(gan.d_optimizer.iterations.numpy()) == 2
        deltas[shared] = [[np.asarray(w) - s for w, s in zip(model.trainable_weights, start)]
                          for model, start in ((disc, d_train), (gen, g_train))]
    b1, b2 = config.beta_1, config.beta_2
    factor = np.sqrt(1 - b2 ** 3) / (1 - b1 ** 3) * (1 - b1) / np.sqrt(1 - b2)
    assert factor == pytest.approx(0.6388, abs=1e-4)
    for two, one in zip(deltas[False][0], deltas[True][0]):  # D: t = 1, 2 in both forms
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-9)
    two, one = (np.concatenate([d.ravel() for d in deltas[k][1]]) for k in (False, True))
    # Elements where Adam's epsilon is negligible (not the conv biases before a BatchNorm, whose
    # gradient is ~0).
    big = np.abs(two) > 0.5 * config.lr
    assert big.mean() > 0.8
    np.testing.assert_allclose(one[big] / two[big], factor, rtol=2e-3)


def test_shared_optimizer_flag_reaches_the_config():
    from srgan.train import _given_overrides, build_parser

    assert _given_overrides(build_parser().parse_args(["--shared-optimizer"])) == {
        "shared_optimizer": True}
    assert "shared_optimizer" not in _given_overrides(build_parser().parse_args([]))
