"""Pieces shared by the same-state gradient tests against the upstream Keras 2 training loops.

The upstream loops (bubbliiiing/srgan-keras, leftthomas/ImageDeblurring) ran on Keras 2.1. The
tests restate each loop in tf-keras (the Keras 2 API on TF 2) with Keras 2.1's semantics written
out explicitly: a GradientTape per ``train_on_batch`` over the weights that were trainable when
that model was compiled, Keras 2.1's clipped ``binary_crossentropy``, Keras 2.1's BatchNormalization
and the legacy Adam. Our Keras 3 models get the same weights; :class:`GradientRecorder` captures
the gradients our ``train_step`` hands to each optimizer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

K_EPSILON = 1e-7  # keras.backend.epsilon()


def keras21_bce(labels, probs):
    """Keras 2.1 ``binary_crossentropy`` on probabilities (tensorflow_backend.py): clip to
    [eps, 1 - eps], back to logits, ``sigmoid_cross_entropy_with_logits``; mean over the last axis,
    then over the batch (all sample weights 1)."""
    probs = tf.clip_by_value(probs, K_EPSILON, 1.0 - K_EPSILON)
    logits = tf.math.log(probs / (1.0 - probs))
    labels = tf.broadcast_to(tf.cast(labels, probs.dtype), tf.shape(probs))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def keras21_mse(target, pred):
    """Keras 2.1 ``mean_squared_error``: mean over the last axis, then over everything else."""
    return tf.reduce_mean(tf.square(pred - target))


def make_keras21_batchnorm(tk):
    """Keras 2.1's BatchNormalization layer, written for tf-keras.

    Training mode normalises with the batch moments (``tf.nn.moments``, biased) and moves the
    averages by ``x -= (x - value) * (1 - momentum)``; ``bessel=True`` multiplies the variance fed
    to the moving average by n / (n - 1 - epsilon) as Keras 2.1.3+ does (Keras 3 does not).
    Weight order gamma, beta, moving_mean, moving_variance, as Keras 3's layer.
    """

    class Keras21BatchNorm(tk.layers.Layer):
        def __init__(self, momentum=0.99, epsilon=1e-3, bessel=True, **kwargs):
            super().__init__(**kwargs)
            self.momentum, self.epsilon, self.bessel = momentum, epsilon, bessel

        def build(self, input_shape):
            c = int(input_shape[-1])
            self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
            self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
            self.moving_mean = self.add_weight(name="moving_mean", shape=(c,),
                                               initializer="zeros", trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=(c,),
                                                   initializer="ones", trainable=False)

        def call(self, x, training=None):
            if not training:
                return tf.nn.batch_normalization(x, self.moving_mean, self.moving_variance,
                                                 self.beta, self.gamma, self.epsilon)
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            out = tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)
            if self.bessel:
                n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), x.dtype)
                variance = variance * n / (n - (1.0 + self.epsilon))
            decay = 1.0 - self.momentum
            self.moving_mean.assign_sub((self.moving_mean - mean) * decay)
            self.moving_variance.assign_sub((self.moving_variance - variance) * decay)
            return out

    return Keras21BatchNorm


def copy_weights(source, target):
    """Keras 3 model -> tf-keras model of the same layout (the same order of weights)."""
    values = source.get_weights()
    assert [v.shape for v in values] == [tuple(w.shape) for w in target.weights]
    target.set_weights(values)


class GradientRecorder:
    """Mixin for a GANModel subclass: keeps each ``apply`` call's gradients (eager steps only)."""

    def apply(self, tape, scaled_loss, variables, optimizer):
        grads = tape.gradient(scaled_loss, variables)
        self.recorded.append([np.asarray(g) for g in grads])
        optimizer.apply(grads, variables)


def relative_error(ours, reference) -> float:
    """||ours - reference|| / ||reference|| over all variables of one update."""
    a = np.concatenate([np.ravel(g) for g in ours])
    b = np.concatenate([np.ravel(g) for g in reference])
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def feature_nets(tk):
    """A tiny random VGG-like feature extractor (conv-ReLU x 2, max-pool, conv-ReLU), in Keras 3
    and in tf-keras with the same weights: the stand-in for VGG on both sides."""
    def build(L, Model, Input):
        x = inp = Input((None, None, 3))
        x = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(2)(x)
        return Model(inp, L.Conv2D(6, 3, padding="same", activation="relu")(x))

    ours = build(keras.layers, keras.Model, keras.Input)
    theirs = build(tk.layers, tk.Model, tk.Input)
    copy_weights(ours, theirs)
    return ours, theirs
