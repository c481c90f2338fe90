import keras
import numpy as np
import pytest
import tensorflow as tf

from common import losses
from common.errors import UserError

rng = np.random.default_rng(1)


def _img(shape=(2, 16, 16, 3)):
    return rng.uniform(-1, 1, shape).astype("float32")


def test_pixel_and_adversarial_losses_match_numpy():
    a, b = _img(), _img()
    np.testing.assert_allclose(losses.l1(a, b), np.abs(a - b).mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.l2(a, b), ((a - b) ** 2).mean(), rtol=1e-6)
    real, fake = rng.normal(size=(4, 1)).astype("float32"), rng.normal(size=(4, 1)).astype("float32")
    np.testing.assert_allclose(losses.wasserstein_critic_loss(real, fake), fake.mean() - real.mean(), rtol=1e-5)
    np.testing.assert_allclose(losses.wasserstein_generator_loss(fake), -fake.mean(), rtol=1e-5)
    probs = 1 / (1 + np.exp(-fake))
    bce = -np.mean(np.log(probs))
    np.testing.assert_allclose(losses.bce_with_logits(1.0, fake), bce, rtol=1e-5)
    np.testing.assert_allclose(losses.bce_on_probabilities(np.ones_like(probs), probs), bce, rtol=1e-4)
    np.testing.assert_allclose(losses.non_saturating_generator_loss(probs), bce, rtol=1e-4)
    np.testing.assert_allclose(losses.non_saturating_generator_loss(fake, from_logits=True), bce, rtol=1e-5)
    np.testing.assert_allclose(losses.signed_label_wasserstein(-np.ones_like(fake), fake), -fake.mean(), rtol=1e-5)


def test_fp16_inputs_do_not_overflow():
    big = tf.constant(np.full((1, 4, 4, 8), 300.0), tf.float16)
    assert np.isfinite(float(losses.l2(big, -big)))


class LinearCritic(keras.Model):
    """D(x) = sum(w * x) per example: its input gradient is w, so the penalty is known exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = tf.constant(w)

    def call(self, x, training=False):
        return tf.reduce_sum(x * self.w, axis=(1, 2, 3))[:, None]


class QuadraticCritic(keras.Model):
    """D(x) = 0.5 * sum(x^2): input gradient is x itself."""

    def call(self, x, training=False):
        return 0.5 * tf.reduce_sum(x * x, axis=(1, 2, 3))[:, None]


def test_gradient_penalty_standard_equals_hand_computation():
    w = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    real, fake = _img((3, 4, 4, 3)), _img((3, 4, 4, 3))
    gp = losses.gradient_penalty(LinearCritic(w), real, fake, keras.random.SeedGenerator(0))
    expected = (np.sqrt((w ** 2).sum() + 1e-12) - 1) ** 2
    np.testing.assert_allclose(gp, expected, rtol=1e-5)


def test_gradient_penalty_per_example_alpha_and_official_variant():
    real, fake = _img((3, 4, 4, 3)), _img((3, 4, 4, 3))
    seed = keras.random.SeedGenerator(7)
    gp = float(losses.gradient_penalty(QuadraticCritic(), real, fake, seed))
    # reproduce alpha from the same seed: grad = x_hat, norm per example
    alpha = np.asarray(keras.random.uniform((3, 1, 1, 1), seed=keras.random.SeedGenerator(7)))
    x_hat = real + alpha * (fake - real)
    norms = np.sqrt((x_hat ** 2).sum(axis=(1, 2, 3)) + 1e-12)
    np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-5)
    assert len(np.unique(alpha)) == 3  # one alpha per example

    official = float(losses.gradient_penalty(QuadraticCritic(), real, fake, keras.random.SeedGenerator(7),
                                             mode="official"))
    a = np.asarray(keras.random.uniform((1, 1, 1, 1), seed=keras.random.SeedGenerator(7)))
    x_hat = real + a * (fake - real)
    per_pixel = np.sqrt((x_hat ** 2).sum(axis=-1) + 1e-12)
    np.testing.assert_allclose(official, np.mean((per_pixel - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_reaches_critic_weights():
    critic = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3, activation="tanh", name="c"),
                               keras.layers.Flatten(), keras.layers.Dense(1, name="d")])
    with tf.GradientTape() as tape:
        gp = losses.gradient_penalty(critic, _img((2, 4, 4, 3)), _img((2, 4, 4, 3)), keras.random.SeedGenerator(0))
    kernels = [v for v in critic.trainable_variables if "kernel" in v.path]
    grads = tape.gradient(gp, kernels)
    assert len(kernels) == 2
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)


def test_caffe_preprocess_matches_keras_applications():
    x = _img((2, 8, 8, 3))
    expected = keras.applications.vgg19.preprocess_input(((x + 1) * 127.5).copy())
    np.testing.assert_allclose(losses.caffe_preprocess(x), expected, atol=1e-4)


@pytest.mark.parametrize("pre_activation", [False, True])
def test_perceptual_loss_random_vgg(pre_activation):
    loss = losses.PerceptualLoss("vgg16", "block2_conv2", weights=None, pre_activation=pre_activation)
    a = _img((1, 32, 32, 3))
    assert float(loss(a, a)) == 0.0
    assert float(loss(a, _img((1, 32, 32, 3)))) > 0
    feats = np.asarray(loss.features(a))
    assert feats.shape == (1, 16, 16, 128)
    assert (feats.min() < 0) == pre_activation  # ReLU output is never negative
    assert not loss.extractor.trainable_weights


def test_perceptual_loss_is_float32_under_mixed_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    loss = losses.PerceptualLoss("vgg19", "block1_conv2", weights=None, feature_scale=1 / 12.75, distance="l1")
    value = loss(_img((1, 16, 16, 3)), _img((1, 16, 16, 3)))
    assert value.dtype == tf.float32
    assert loss.extractor.layers[-1].compute_dtype == "float32"


def test_missing_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        losses.resolve_vgg_weights(str(tmp_path / "nope.h5"), "vgg19")


def test_offline_imagenet_message_names_file_md5_and_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(losses, "keras_home", lambda: tmp_path)
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as err:
        losses.resolve_vgg_weights("imagenet", "vgg19")
    message = str(err.value)
    for part in ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6",
                 "KERAS_HOME", "--vgg-weights"):
        assert part in message
