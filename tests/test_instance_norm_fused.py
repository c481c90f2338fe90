"""The fused-kernel instance norm (16-bit compute dtypes, training too) against the plain path.

Under mixed_bfloat16 / mixed_float16, ``ExactGroupNormalization`` runs TensorFlow's fused
batch-norm kernel in training as well as at inference; a WGAN-GP critic differentiates it twice.
The kernel takes float32 too, so its value, first derivative and the penalty's gradient with
respect to the weights (a second derivative) are compared here, in float32, with the plain path
that tests/test_instance_norm_grad.py checks against finite differences.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.layers import ExactGroupNormalization


def _derivatives(norm, fused: bool, x, kernel):
    """conv -> instance norm -> nonlinear critic; returns (value, d/dx, d(penalty)/d kernel)."""

    def critic(inputs):
        h = tf.nn.conv2d(inputs, kernel, 1, "SAME")
        h = norm._fused_instance_norm(h) if fused else norm(h, training=True)
        return tf.reduce_sum(tf.nn.leaky_relu(h, 0.2) * tf.sin(3.0 * h))

    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            value = critic(x)
        grad_x = inner.gradient(value, x)
        penalty = tf.reduce_mean(tf.square(tf.sqrt(tf.reduce_sum(tf.square(grad_x), axis=-1)) - 1.0))
    return value, grad_x, outer.gradient(penalty, kernel)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("affine", [False, True])
def test_fused_path_value_and_two_derivatives_equal_plain_path(batch, affine):
    keras.config.set_dtype_policy("float32")
    rng = np.random.default_rng(batch)
    x = tf.constant(rng.normal(size=(batch, 7, 6, 4)).astype("float32"))
    kernel = tf.Variable(rng.normal(size=(3, 3, 4, 5)).astype("float32"))
    norm = ExactGroupNormalization(groups=-1, epsilon=1e-5, center=affine, scale=affine,
                                   gamma_initializer="random_normal", beta_initializer="random_normal")
    norm.build((batch, 7, 6, 5))
    assert not norm._fused_applies(x[..., :1] * tf.ones((1, 1, 1, 5)))  # float32 takes the plain path
    plain = _derivatives(norm, False, x, kernel)
    fused = _derivatives(norm, True, x, kernel)
    for name, a, b in zip(("value", "first derivative", "penalty gradient"), plain, fused):
        error = float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(a)))
        assert error < 1e-5, f"{name}: relative difference {error:.2e}"


def test_bf16_training_uses_the_fused_kernel():
    x = np.random.default_rng(4).normal(3.0, 2.0, size=(2, 8, 8, 6)).astype("float32")
    keras.config.set_dtype_policy("float32")
    reference = ExactGroupNormalization(groups=-1, center=False, scale=False)(x, training=True)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = ExactGroupNormalization(groups=-1, center=False, scale=False)
        graph = tf.function(lambda t: layer(t, training=True)).get_concrete_function(
            tf.TensorSpec((2, 8, 8, 6), tf.bfloat16)).graph
        out = layer(tf.cast(x, tf.bfloat16), training=True)
    finally:
        keras.config.set_dtype_policy("float32")
    assert any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())
    assert out.dtype == tf.bfloat16
    # bf16 input rounding (2^-9 relative on values around 3 +- 2) and output rounding
    np.testing.assert_allclose(np.asarray(tf.cast(out, tf.float32)), reference, atol=0.03)


def test_deblurgan_critic_penalty_gradient_under_bf16_fused_as_plain(monkeypatch):
    """The paper critic (instance norm, official penalty) differentiated twice under mixed_bfloat16:
    through the fused kernel its weight gradient is the plain path's up to bf16 rounding (0.7%
    measured), far closer than either is to float32's (12-19% for this tiny critic)."""
    from common import losses
    from deblur_gan.model import build_discriminator

    rng = np.random.default_rng(7)
    real = tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32"))
    fake = tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32"))
    fused_applies = ExactGroupNormalization._fused_applies
    keras.utils.set_random_seed(1)
    weights = build_discriminator("paper", ndf=8).get_weights()
    grads = {}
    for name, policy, fused in (("float32", "float32", False), ("plain", "mixed_bfloat16", False),
                                ("fused", "mixed_bfloat16", True)):
        monkeypatch.setattr(ExactGroupNormalization, "_fused_applies",
                            fused_applies if fused else (lambda self, inputs: False))
        keras.config.set_dtype_policy(policy)
        try:
            critic = build_discriminator("paper", ndf=8)
        finally:
            keras.config.set_dtype_policy("float32")
        critic.set_weights(weights)
        seed = keras.random.SeedGenerator(3)  # the same mixing factor every time

        @tf.function
        def update():
            with tf.GradientTape() as tape:
                gp = losses.gradient_penalty(critic, real, fake, seed, mode="official")
                loss = losses.wasserstein_critic_loss(critic(real, training=True), critic(fake, training=True))
                loss = loss + 10.0 * gp
            return tape.gradient(loss, critic.trainable_variables)

        graph_ops = {op.type for op in update.get_concrete_function().graph.get_operations()}
        assert ("FusedBatchNormGradV3" in graph_ops) == fused, name
        grads[name] = np.concatenate([g.numpy().ravel() for g in update()])

    def distance(a, b):
        return np.linalg.norm(grads[a] - grads[b]) / np.linalg.norm(grads[b])

    assert distance("fused", "plain") < 0.03
    assert distance("fused", "plain") < 0.25 * distance("plain", "float32")
    assert distance("fused", "float32") < 1.1 * distance("plain", "float32")
