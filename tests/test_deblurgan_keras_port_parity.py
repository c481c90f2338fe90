"""The `keras-port` training step against RaphaelMeudec/deblur-gan's Keras 2 step, gradient for gradient.

The reference is our own statement, in tf-keras (Keras 2), of the port's ``deblurgan/model.py``
(generator with UpSampling2D + conv, the discriminator with its Dense head), ``deblurgan/losses.py``
(``wasserstein_loss``, ``perceptual_loss``) and ``scripts/train.py`` (``g.predict``, then per critic
update ``d.train_on_batch(sharp, +1)`` and ``d.train_on_batch(fake, -1)``, then
``d_on_g.train_on_batch`` with ``loss_weights=[100, 1]`` and ``d.trainable = False``), at tiny
widths and 32 x 32 images, dropout off, and a small random network with VGG16's layer pattern up
to block3_conv3 (after its ReLU) in place of the ImageNet VGG16 on both sides.

Keras 2.1, which the port used, ran a frozen BatchNormalization on batch statistics inside
``train_on_batch``; TF2's Keras switched a frozen BatchNormalization to inference mode. The
reference therefore uses tf-keras' V1 BatchNormalization, which keeps the Keras 2.1 behaviour.

As in tests/test_deblurgan_parity.py the comparison is of each update's gradient at the same state:
before every reference ``train_on_batch`` the reference models get the weights our step held when
it made the same update.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras", reason="the Keras 2 reference needs tf-keras (requirements-dev.txt)")

import tensorflow as tf  # noqa: E402
from tf_keras import layers as k2  # noqa: E402
from tf_keras.src.layers.normalization.batch_normalization_v1 import BatchNormalization as BatchNormV1  # noqa: E402

from common.losses import PerceptualLoss  # noqa: E402
from recording_gan import RecordingDeblurGAN  # noqa: E402
from deblur_gan.config import get_config  # noqa: E402
from deblur_gan.gan import make_optimizer  # noqa: E402
from deblur_gan.model import build_discriminator, build_generator  # noqa: E402

SIZE, BATCH, NGF, NDF, BLOCKS, DENSE, CRITIC = 32, 2, 4, 4, 1, 16, 2
CFG = get_config("keras-port", ngf=NGF, ndf=NDF, n_blocks=BLOCKS, dropout=0.0, upsampling="nearest",
                 d_dense_units=DENSE, resize=(SIZE, SIZE), critic_updates=CRITIC, batch_size=BATCH)


# ----------------------------------------------------------------------------- Keras 2 statement
class ReflectionPadding2D(k2.Layer):
    """deblurgan/layer_utils.py ReflectionPadding2D: tf.pad(x, ..., 'REFLECT')."""

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], "REFLECT")


def reference_generator():
    """generator_model() with ngf, n_blocks_gen small and res_block(use_dropout=False)."""
    inputs = k2.Input((SIZE, SIZE, 3))
    x = ReflectionPadding2D(3)(inputs)
    x = k2.Conv2D(NGF, 7, padding="valid")(x)
    x = k2.Activation("relu")(BatchNormV1()(x))
    for i in range(2):
        x = k2.Conv2D(NGF * 2 ** (i + 1), 3, strides=2, padding="same")(x)
        x = k2.Activation("relu")(BatchNormV1()(x))
    for _ in range(BLOCKS):
        y = ReflectionPadding2D(1)(x)
        y = k2.Activation("relu")(BatchNormV1()(k2.Conv2D(NGF * 4, 3)(y)))
        y = BatchNormV1()(k2.Conv2D(NGF * 4, 3)(ReflectionPadding2D(1)(y)))
        x = k2.Add()([x, y])
    for i in range(2):
        x = k2.UpSampling2D()(x)
        x = k2.Conv2D(NGF * 2 ** (1 - i), 3, padding="same")(x)
        x = k2.Activation("relu")(BatchNormV1()(x))
    x = k2.Activation("tanh")(k2.Conv2D(3, 7, padding="valid")(ReflectionPadding2D(3)(x)))
    outputs = k2.Lambda(lambda z: z / 2)(k2.Add()([x, inputs]))
    return tf_keras.Model(inputs, outputs, name="Generator")


def reference_discriminator():
    """discriminator_model(): note range(n_layers), one more stride-2 conv than the official D."""
    inputs = k2.Input((SIZE, SIZE, 3))
    x = k2.LeakyReLU(0.2)(k2.Conv2D(NDF, 4, strides=2, padding="same")(inputs))
    for n in range(3):
        x = k2.Conv2D(NDF * min(2 ** n, 8), 4, strides=2, padding="same")(x)
        x = k2.LeakyReLU(0.2)(BatchNormV1()(x))
    x = k2.LeakyReLU(0.2)(BatchNormV1()(k2.Conv2D(NDF * 8, 4, strides=1, padding="same")(x)))
    x = k2.Conv2D(1, 4, strides=1, padding="same")(x)
    x = k2.Dense(DENSE, activation="tanh")(k2.Flatten()(x))
    x = k2.Dense(1, activation="sigmoid")(x)
    return tf_keras.Model(inputs, x, name="Discriminator")


def feature_layers(module):
    """VGG16 up to block3_conv3 (after its ReLU) with 4/8/8 channels, in Keras 3 or tf-keras."""
    inputs = module.Input((None, None, 3))
    x = inputs
    for item in ["c4", "c4", "p", "c8", "c8", "p", "c8", "c8", "c8"]:
        if item == "p":
            x = module.layers.MaxPooling2D(2)(x)
        else:
            x = module.layers.Conv2D(int(item[1:]), 3, padding="same", activation="relu")(x)
    return module.Model(inputs, x)


class RecordingAdam(tf_keras.optimizers.legacy.Adam):
    """Keras 2's Adam (epsilon on sqrt(v) before the bias correction) that records its gradients."""

    records: list

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        self.records.append({v.name: np.array(g) for g, v in grads_and_vars})
        return super().apply_gradients(grads_and_vars, *args, **kwargs)


def wasserstein_loss(y_true, y_pred):
    return tf_keras.backend.mean(y_true * y_pred)


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def _set_state(reference, ours, values=None):
    """Put our weights (``values``: variable path -> value; default: current) into the reference, layer by layer."""
    lookup = values or {w.path: np.array(w) for w in ours.weights}
    ref_layers, our_layers = _weighted_layers(reference), _weighted_layers(ours)
    assert len(ref_layers) == len(our_layers)
    for ref, our in zip(ref_layers, our_layers):
        ref.set_weights([lookup[w.path] for w in our.weights])


def _pairs(reference, ours):
    """(our variable path, reference variable name) for the trainable weights, layer by layer."""
    out = []
    for ref, our in zip(_weighted_layers(reference), _weighted_layers(ours)):
        out += [(o.path, r.name) for o, r in zip(our.trainable_weights, ref.trainable_weights)]
    return out


def _relative_error(ours, reference, pairs):
    diff = np.sqrt(sum(np.sum((ours[o] - reference[r]) ** 2) for o, r in pairs))
    return float(diff / np.sqrt(sum(np.sum(reference[r] ** 2) for _, r in pairs)))


@pytest.fixture(scope="module")
def step():
    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(CFG), build_discriminator(CFG, input_size=(SIZE, SIZE))
    features = feature_layers(keras)
    ref_g, ref_d, ref_features = reference_generator(), reference_discriminator(), feature_layers(tf_keras)
    ref_features.set_weights(features.get_weights())
    ref_features.trainable = False

    def perceptual_loss(y_true, y_pred):  # deblurgan/losses.py, with the small network for VGG16
        return tf_keras.backend.mean(tf_keras.backend.square(ref_features(y_true) - ref_features(y_pred)))

    # scripts/train.py: compile d, freeze it, compile d_on_g, unfreeze
    d_opt = RecordingAdam(learning_rate=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    g_opt = RecordingAdam(learning_rate=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    d_opt.records, g_opt.records = [], []
    inputs = k2.Input((SIZE, SIZE, 3))
    generated = ref_g(inputs)
    d_on_g = tf_keras.Model(inputs, [generated, ref_d(generated)])
    ref_d.trainable = True
    ref_d.compile(optimizer=d_opt, loss=wasserstein_loss, run_eagerly=True)
    ref_d.trainable = False
    d_on_g.compile(optimizer=g_opt, loss=[perceptual_loss, wasserstein_loss], loss_weights=[100, 1],
                   run_eagerly=True)
    ref_d.trainable = True

    rng = np.random.default_rng(0)
    sharp = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype("float32")
    blurred = (0.5 * sharp + 0.25 * np.roll(sharp, 1, axis=2) + 0.25 * np.roll(sharp, -1, axis=1)).astype("float32")

    gan = RecordingDeblurGAN(generator, discriminator, CFG, PerceptualLoss(preprocess="none", extractor=features))
    gan.compile(make_optimizer(CFG, "g_adam"), make_optimizer(CFG, "d_adam"), run_eagerly=True)
    _set_state(ref_g, generator)
    _set_state(ref_d, discriminator)
    initial_fakes = np.asarray(generator(blurred, training=False))  # what g.predict gives before the step
    logs = gan.train_on_batch(blurred, sharp, return_dict=True)
    assert [r[0] for r in gan.records] == ["d_adam"] * (2 * CRITIC) + ["g_adam"]

    # the reference step, each update started from the state ours started from
    real, fake = np.ones((BATCH, 1), "float32"), -np.ones((BATCH, 1), "float32")
    generated_images = ref_g.predict(blurred, batch_size=BATCH, verbose=0)
    critic, d_losses = [], []
    for k in range(CRITIC):
        losses = []
        for j, (images, labels) in enumerate(((sharp, real), (generated_images, fake))):
            _, grads, state = gan.records[2 * k + j]
            _set_state(ref_d, discriminator, state[discriminator.name])
            losses.append(float(ref_d.train_on_batch(images, labels)))
            critic.append((grads, d_opt.records[-1]))
        d_losses.append(0.5 * (losses[1] + losses[0]))
    _, g_grads, state = gan.records[-1]
    _set_state(ref_d, discriminator, state[discriminator.name])
    _set_state(ref_g, generator, state[generator.name])
    ref_d.trainable = False
    total, content, adversarial = (float(v) for v in d_on_g.train_on_batch(blurred, [sharp, real]))
    ref_d.trainable = True
    reference_logs = {"d_loss": d_losses[-1], "gp": 0.0, "g_adv": adversarial, "g_content": content,
                      "g_total": total}
    return dict(critic=critic, generator=(g_grads, g_opt.records[-1]), logs=logs, reference_logs=reference_logs,
                pairs_d=_pairs(ref_d, discriminator), pairs_g=_pairs(ref_g, generator),
                generated=(generated_images, initial_fakes))


def test_fakes_come_from_inference_mode_generator(step):
    ref, ours = step["generated"]
    np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-5)


def test_critic_gradients_equal_keras2(step):
    errors = [_relative_error(ours, ref, step["pairs_d"]) for ours, ref in step["critic"]]
    print("critic steps (real, fake, ...), relative gradient error:", ", ".join(f"{e:.1e}" for e in errors))
    assert len(errors) == 2 * CRITIC and max(errors) <= 1e-4


def test_generator_gradient_equals_keras2(step):
    ours, ref = step["generator"]
    pairs = step["pairs_g"]
    assert set(ref) == {r for _, r in pairs}  # d_on_g trains exactly G's weights (D frozen)
    error = _relative_error(ours, ref, pairs)
    print(f"generator step, relative gradient error: {error:.1e}")
    assert error <= 1e-4


def test_logged_losses_equal_keras2(step):
    for name, expected in step["reference_logs"].items():
        got = float(step["logs"][name])
        print(f"{name}: ours {got:.7g}, Keras 2 {expected:.7g}")
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-7), name
