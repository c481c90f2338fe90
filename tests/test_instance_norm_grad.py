"""Second derivatives of the normalisation layers against float64 finite differences.

A WGAN-GP critic update differentiates the penalty E[(||dD/dx|| - 1)^2] with respect to the
critic's weights: a second derivative of D. ``ops.moments`` (inside Keras' GroupNormalization and
BatchNormalization) stops the gradient through the mean inside the variance, which leaves first
derivatives right and second derivatives wrong (issue 14: 3.6e-2 relative error in the DeblurGAN
critic's gradient). The layers in common.layers compute the moments plainly.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from common.layers import ExactBatchNormalization, ExactGroupNormalization, instance_norm


def _critic(norm_layer):
    """conv -> norm -> LeakyReLU -> conv -> norm -> LeakyReLU -> 1-channel conv, all float64."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 3), dtype="float64")
    x = layers.Conv2D(4, 3, dtype="float64", name="conv1")(inputs)
    x = norm_layer("norm1")(x)
    x = layers.LeakyReLU(0.2, dtype="float64")(x)
    x = layers.Conv2D(4, 3, dtype="float64", name="conv2")(x)
    x = norm_layer("norm2")(x)
    x = layers.LeakyReLU(0.2, dtype="float64")(x)
    x = layers.Conv2D(1, 1, dtype="float64", name="conv_out")(x)
    return keras.Model(inputs, x)


NORMS = {
    "instance": lambda name: instance_norm(name=name, epsilon=1e-5, affine=False),
    "instance_affine": lambda name: ExactGroupNormalization(groups=-1, epsilon=1e-5, center=True, scale=True,
                                                            gamma_initializer="random_normal",
                                                            dtype="float64", name=name),
    "batch": lambda name: ExactBatchNormalization(epsilon=1e-3, gamma_initializer="random_normal",
                                                  dtype="float64", name=name),
    # Keras' own layers, to show that the test can tell the difference
    "keras_group": lambda name: layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False,
                                                          dtype="float64", name=name),
    "keras_batch": lambda name: layers.BatchNormalization(epsilon=1e-3, dtype="float64", name=name),
}


def _penalty(model, x):
    """The official DeblurGAN penalty form (norm over channels per pixel), in float64."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(model(x, training=True))
    grads = tape.gradient(total, x)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=-1))
    return tf.reduce_mean(tf.square(norms - 1.0))


def _fd_relative_error(norm: str) -> float:
    keras.config.set_dtype_policy("float64")  # instance_norm() takes the global policy
    model = _critic(NORMS[norm])
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 8, 8, 3)))
    kernel = model.get_layer("conv1").kernel
    with tf.GradientTape() as outer:
        p = _penalty(model, x)
    analytic = outer.gradient(p, kernel.value).numpy()
    base = kernel.numpy()
    errors = []
    h = 1e-6  # truncation error ~h^2 (8e-8 at 1e-5), rounding ~1e-16 / h
    for _ in range(3):
        v = rng.normal(size=base.shape)
        kernel.assign(base + h * v)
        plus = float(_penalty(model, x))
        kernel.assign(base - h * v)
        minus = float(_penalty(model, x))
        kernel.assign(base)
        fd = (plus - minus) / (2 * h)
        exact = float(np.sum(analytic * v))
        errors.append(abs(fd - exact) / abs(fd))
    return max(errors)


@pytest.mark.parametrize("norm", ["instance", "instance_affine", "batch"])
def test_penalty_gradient_matches_finite_differences(norm):
    error = _fd_relative_error(norm)
    print(f"{norm}: relative error of d(penalty)/d(kernel) vs central differences = {error:.2e}")
    assert error < 1e-6


@pytest.mark.parametrize("norm", ["keras_group", "keras_batch"])
def test_keras_layers_get_the_penalty_gradient_wrong(norm):
    """If this starts failing, Keras computes exact moments and the Exact* layers could go."""
    error = _fd_relative_error(norm)
    print(f"{norm}: relative error = {error:.2e}")
    assert error > 1e-4


def test_instance_norm_float32_statistics_under_mixed_precision():
    x = np.random.default_rng(1).normal(40.0, 3.0, size=(2, 8, 8, 4)).astype("float32")
    ref = instance_norm()(x)
    keras.config.set_dtype_policy("mixed_float16")
    layer = instance_norm()
    out = layer(x.astype("float16"))
    assert layer.compute_dtype == "float16" and out.dtype == "float16"
    # a float16 variance of values around 40 would lose most digits; float32 statistics do not
    np.testing.assert_allclose(np.asarray(out, "float32"), ref, atol=1e-2)


def test_same_weights_and_names_as_group_normalization(tmp_path):
    inputs = keras.Input((None, None, 5))
    x = instance_norm(name="n1")(inputs)
    x = ExactGroupNormalization(groups=-1, center=True, scale=True, name="n2")(x)
    x = ExactBatchNormalization(name="n3")(x)
    model = keras.Model(inputs, x)
    reference = keras.Model(inputs, layers.BatchNormalization(name="n3")(
        layers.GroupNormalization(groups=-1, name="n2")(layers.GroupNormalization(groups=-1, center=False,
                                                                                  scale=False, name="n1")(inputs))))
    assert [w.path for w in model.weights] == [w.path for w in reference.weights]
    assert model.count_params() == reference.count_params() == 2 * 5 + 4 * 5
    data = np.random.default_rng(2).normal(size=(2, 4, 3, 5)).astype("float32")
    for w, r in zip(model.weights, reference.weights):
        w.assign(np.random.default_rng(3).normal(size=w.shape) if "variance" not in w.path else np.ones(w.shape))
        r.assign(w.numpy())
    np.testing.assert_allclose(model(data, training=True), reference(data, training=True), atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("n1")) is ExactGroupNormalization
    assert type(loaded.get_layer("n3")) is ExactBatchNormalization
    np.testing.assert_allclose(loaded(data), model(data), atol=1e-6)
