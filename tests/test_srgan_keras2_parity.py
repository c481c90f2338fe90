"""Same-state gradients: our SRGAN `bubbliiiing` step against bubbliiiing/srgan-keras's Keras 2 loop.

The reference (tf-keras, Keras 2.1 semantics spelled out) states utils/utils_fit.py fit_one_epoch:

    G_result = G_model.predict(imgs_lr)                       # inference-mode BatchNorm
    D_model.train_on_batch(imgs_hr, ones)                     # BCE, one (shared) Adam step
    D_model.train_on_batch(G_result, zeros)                   # another
    image_features = VGG_model.predict(imgs_hr)
    Combine_model.train_on_batch(imgs_lr, [imgs_hr, ones, image_features])

with train.py's Combine_model = Model(lr, [G(lr), D(G(lr)), VGG(G(lr))]), compiled after
``D_model.trainable = False`` (so it trains G only, D in training-mode BatchNorm: learning phase
1), ``loss=['mse', 'binary_crossentropy', 'mse']``, ``loss_weights=[1, 1e-3, 2e-6]``, and ONE Adam
instance shared by D_model and Combine_model. nets/srgan.py's networks at tiny widths; a tiny
random VGG-like feature net stands in for VGG19 on both sides.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import losses
from srgan.config import get_config
from srgan.data import make_lr
from srgan.gan import SRGAN, make_optimizer
from srgan.model import build_discriminator, build_generator

tk = pytest.importorskip("tf_keras")
from keras2_reference import (  # noqa: E402  (tests/helpers)
    GradientRecorder, copy_weights, feature_nets, keras21_bce, keras21_mse, make_keras21_batchnorm,
    relative_error,
)

TINY = dict(filters=8, num_res_blocks=1, upsample_filters=16, d_first_filters=4,
            d_blocks=((4, 2), (8, 1), (8, 2)), d_dense_units=8, hr_crop=32, batch_size=2,
            bn_momentum=0.5)
# float32 gradients of the same graph computed by two frameworks' kernels: measured at most
# 6.7e-7 relative per update. Fakes made in the old order (after G's training-mode forward) give
# 2.1e-3 on the D fake update, so 1e-5 separates the two by two orders of magnitude each way.
TOLERANCE = 1e-5


class RecordingSRGAN(GradientRecorder, SRGAN):
    recorded: list


def _upstream_networks(cfg, bessel):
    """nets/srgan.py build_generator / build_discriminator in tf-keras, widths from ``cfg``."""
    L = tk.layers
    BN = make_keras21_batchnorm(tk)

    def bn():
        return BN(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon, bessel=bessel)

    def prelu():
        return L.PReLU(shared_axes=[1, 2])

    lr = L.Input((None, None, 3))
    x = prelu()(L.Conv2D(cfg.filters, cfg.head_kernel, padding="same")(lr))
    skip = x
    for _ in range(cfg.num_res_blocks):
        y = prelu()(bn()(L.Conv2D(cfg.filters, 3, padding="same")(x)))
        y = bn()(L.Conv2D(cfg.filters, 3, padding="same")(y))
        x = L.Add()([y, x])
    x = L.Add()([bn()(L.Conv2D(cfg.filters, 3, padding="same")(x)), skip])
    for _ in range(int(np.log2(cfg.scale))):
        x = L.Conv2D(cfg.upsample_filters, 3, padding="same")(x)
        x = prelu()(L.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(x))  # SubpixelConv2D
    sr = L.Conv2D(3, cfg.tail_kernel, padding="same", activation="tanh")(x)
    generator = tk.Model(lr, sr)

    image = L.Input((None, None, 3))
    x = L.LeakyReLU(0.2)(L.Conv2D(cfg.d_first_filters, 3, padding="same")(image))
    for filters, strides in cfg.d_blocks:
        x = L.LeakyReLU(0.2)(bn()(L.Conv2D(filters, 3, strides=strides, padding="same")(x)))
    x = L.LeakyReLU(0.2)(L.Dense(cfg.d_dense_units)(L.GlobalAveragePooling2D()(x)))
    discriminator = tk.Model(image, L.Dense(1, activation="sigmoid")(x))
    return generator, discriminator


def _upstream_steps(G, D, vgg, optimizer, lr, hr, cfg, steps):
    """fit_one_epoch's iterations; returns each update's gradients (D real, D fake, G) per step."""
    ones, zeros = np.ones((len(hr), 1), "float32"), np.zeros((len(hr), 1), "float32")
    # D_model.trainable is False when D's and Combine_model's train functions are built (their
    # first train_on_batch), and Keras 2's Container.updates is [] for a non-trainable model: no
    # step ever moves D's BatchNorm moving averages (nothing reads them in training either).
    d_moving = [w.numpy() for w in D.non_trainable_weights]

    def keep_d_moving_averages():
        for w, value in zip(D.non_trainable_weights, d_moving):
            w.assign(value)

    recorded = []
    for _ in range(steps):
        fakes = G(lr, training=False)  # G_model.predict

        for images, labels in ((hr, ones), (fakes, zeros)):  # D_model.train_on_batch x 2
            with tf.GradientTape() as tape:
                loss = keras21_bce(labels, D(images, training=True))
            keep_d_moving_averages()
            grads = tape.gradient(loss, D.trainable_weights)
            optimizer.apply_gradients(zip(grads, D.trainable_weights))
            recorded.append([g.numpy() for g in grads])

        features = vgg(hr, training=False)  # VGG_model.predict
        with tf.GradientTape() as tape:  # Combine_model.train_on_batch: G's weights only
            sr = G(lr, training=True)
            loss = (cfg.pixel_weight * keras21_mse(hr, sr)
                    + cfg.adv_weight * keras21_bce(ones, D(sr, training=True))
                    + cfg.content_weight * keras21_mse(features, vgg(sr, training=False)))
        keep_d_moving_averages()
        grads = tape.gradient(loss, G.trainable_weights)
        optimizer.apply_gradients(zip(grads, G.trainable_weights))
        recorded.append([g.numpy() for g in grads])
    return recorded


def _setup(shared):
    keras.utils.set_random_seed(7)
    # content_weight 2e-2 instead of 2e-6, so the feature term shows in G's gradient at this size
    cfg = get_config("bubbliiiing", shared_optimizer=shared, content_weight=2e-2, **TINY)
    gen, disc = build_generator(preset=cfg), build_discriminator(cfg)
    up_gen, up_disc = _upstream_networks(cfg, bessel=True)
    rng = np.random.default_rng(0)
    # Non-default moving statistics, so that G.predict's fakes depend on them: fakes made after a
    # training-mode forward of G (moving averages already moved) would not match.
    for layer in gen.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 3.0, layer.moving_variance.shape))
    copy_weights(gen, up_gen)
    copy_weights(disc, up_disc)
    feat, up_feat = feature_nets(tk)
    hr = rng.uniform(-1, 1, (cfg.batch_size, cfg.hr_crop, cfg.hr_crop, 3)).astype("float32")
    lr = np.asarray(make_lr(tf.constant(hr), cfg.scale, cfg.lr_range))

    gan = RecordingSRGAN(gen, disc, config=cfg,
                         content_loss=lambda a, b: losses.l2(feat(a), feat(b)))
    gan.recorded = []
    gan.compile(make_optimizer(cfg), make_optimizer(cfg))
    up_optimizer = tk.optimizers.legacy.Adam(learning_rate=cfg.lr, beta_1=cfg.beta_1,
                                             beta_2=cfg.beta_2, epsilon=cfg.adam_epsilon)
    return cfg, gan, (up_gen, up_disc, up_feat, up_optimizer), lr, hr


def test_one_step_gradients_match_the_keras2_loop():
    """Step 1 from the same weights: the D real / D fake / G gradients and the losses agree."""
    cfg, gan, (up_gen, up_disc, up_feat, up_opt), lr, hr = _setup(False)
    logs = gan.train_step((tf.constant(lr), tf.constant(hr)))
    reference = _upstream_steps(up_gen, up_disc, up_feat, up_opt, lr, hr, cfg, steps=1)
    assert len(gan.recorded) == len(reference) == 3
    errors = [relative_error(ours, ref) for ours, ref in zip(gan.recorded, reference)]
    print("relative gradient errors (D real, D fake, G):", errors)
    assert max(errors) < TOLERANCE
    assert np.isfinite(float(logs["g_content"])) and float(logs["g_content"]) > 0


def test_two_steps_with_the_shared_adam_match_the_keras2_loop():
    """``shared_optimizer=True``: two whole steps (six updates on one Adam counter, Keras 2.1's
    BatchNorm with its n / (n - 1) moving-variance correction in the reference) agree: the six
    updates' gradients to the float floor, the weights to Adam's amplification of that floor."""
    cfg, gan, (up_gen, up_disc, up_feat, up_opt), lr, hr = _setup(True)
    starts = {id(m): [np.array(w) for w in m.trainable_weights]
              for m in (gan.generator, gan.discriminator)}
    for _ in range(2):
        gan.train_step((tf.constant(lr), tf.constant(hr)))
    reference = _upstream_steps(up_gen, up_disc, up_feat, up_opt, lr, hr, cfg, steps=2)
    assert int(gan.g_optimizer.iterations.numpy()) == int(up_opt.iterations.numpy()) == 6
    errors = [relative_error(ours, ref) for ours, ref in zip(gan.recorded, reference)]
    trainable, moving = [], []
    for ours, theirs, grads in ((gan.generator, up_gen, gan.recorded[2]),
                                (gan.discriminator, up_disc, gan.recorded[0])):
        scale = max(np.linalg.norm(g) for g in grads)
        for start, a, b, g in zip(starts[id(ours)], ours.trainable_weights,
                                  theirs.trainable_weights, grads):
            # A conv bias just before a BatchNorm has a gradient of rounding noise (the batch mean
            # cancels it), which Adam turns into lr-sized steps of random sign: not comparable.
            if np.linalg.norm(g) > 1e-4 * scale:
                trainable.append(relative_error([np.asarray(a) - start], [np.asarray(b) - start]))
        if ours is gan.generator:  # ours moves D's moving averages, upstream's never (unused)
            moving += [(np.asarray(a), np.asarray(b)) for a, b in
                       zip(ours.non_trainable_weights, theirs.non_trainable_weights)]
    print("gradient errors:", errors, "weight-change error:", max(trainable),
          "moving statistics max |difference|:", max(np.abs(a - b).max() for a, b in moving))
    assert max(errors) < TOLERANCE
    # measured 1.2e-5: BN gammas whose gradients are ~1e-4, near Adam's epsilon
    assert max(trainable) < 1e-4
    for a, b in moving:
        # G's moving variances differ by Keras 2.1's n / (n - 1) (1.2e-5 at n = 2 x 8 x 8; 3e-5
        # relative at bubbliiiing's 4 x 96 x 96: negligible).
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
