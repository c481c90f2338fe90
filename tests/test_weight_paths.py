"""Weight files written with plain Keras layers load into our subclasses, and back.

Keras files a layer's variables under the snake-case name of its class (``layers/conv2d/vars/0``),
so our drop-in subclasses (NarrowConv2D, ExactGroupNormalization, ExactBatchNormalization, OnePassPReLU) must keep
Keras' class name there, or every generator.weights.h5 written before they existed stops loading.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from common.layers import ExactBatchNormalization, ExactGroupNormalization, NarrowConv2D, OnePassPReLU


def _model(conv, norm_in, norm_out, prelu=layers.PReLU):
    inputs = keras.Input((None, None, 4))
    x = layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    x = norm_in(name="norm_a")(x)
    x = prelu(shared_axes=[1, 2], name="prelu_a")(x)
    x = conv(3, 7, padding="same", name="conv_out")(x)
    x = norm_out(name="norm_b")(x)
    return keras.Model(inputs, x, name="probe")


def _plain():
    return _model(layers.Conv2D, lambda name: layers.GroupNormalization(groups=-1, name=name),
                  lambda name: layers.BatchNormalization(name=name))


def _ours():
    return _model(NarrowConv2D, lambda name: ExactGroupNormalization(groups=-1, name=name),
                  lambda name: ExactBatchNormalization(name=name), OnePassPReLU)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(size=weight.shape).astype("float32")
        if "variance" in weight.path:
            value = np.abs(value) + 0.5
        weight.assign(value)


@pytest.mark.parametrize("direction", ["plain_to_ours", "ours_to_plain"])
def test_weights_h5_moves_between_plain_keras_layers_and_ours(tmp_path, direction):
    source, target = (_plain(), _ours()) if direction == "plain_to_ours" else (_ours(), _plain())
    _randomize(source, seed=1)
    path = tmp_path / "probe.weights.h5"
    source.save_weights(path)
    target.load_weights(path)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    x = np.random.default_rng(2).normal(size=(1, 13, 17, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(source(x)), np.asarray(target(x)), rtol=1e-5, atol=1e-5)


def test_keras_file_round_trip_keeps_our_classes(tmp_path):
    model = _ours()
    _randomize(model, seed=3)
    path = tmp_path / "probe.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    kinds = {layer.name: type(layer) for layer in loaded.layers}
    assert kinds["conv_out"] is NarrowConv2D
    assert kinds["norm_a"] is ExactGroupNormalization
    assert kinds["norm_b"] is ExactBatchNormalization
    assert kinds["prelu_a"] is OnePassPReLU
    x = np.random.default_rng(4).normal(size=(1, 9, 11, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), atol=1e-6)
