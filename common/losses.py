"""Losses shared by the families: VGG perceptual loss, adversarial losses, gradient penalty, pixels.

Conventions
- Images enter every loss in [-1, 1] (the tanh range of the generators).
- Every function returns a float32 scalar: the plain mean over this replica's batch. The
  GAN base class (:mod:`common.gan`) divides the total by the number of replicas before the
  gradient, so the summed gradients of a ``tf.distribute`` run equal a single-device run's.
- Everything is cast to float32 first, so fp16 activations cannot overflow in a square.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras
import tensorflow as tf
from keras import layers, ops

from common.errors import UserError

# keras.applications file names and md5 sums (keras/src/applications/vgg16.py, vgg19.py).
VGG_NOTOP_WEIGHTS = {
    "vgg16": ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6"),
}
# ImageNet mean in BGR order, as keras.applications' caffe preprocessing subtracts it.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def _f32(x):
    return ops.cast(x, "float32")


# ----------------------------------------------------------------------------- pixel losses
def l1(a, b):
    """Mean absolute error."""
    return ops.mean(ops.abs(_f32(a) - _f32(b)))


def l2(a, b):
    """Mean squared error."""
    return ops.mean(ops.square(_f32(a) - _f32(b)))


# ----------------------------------------------------------------------------- adversarial
def wasserstein_critic_loss(real_scores, fake_scores):
    """WGAN critic loss E[D(fake)] - E[D(real)] (Arjovsky et al. 2017; DeblurGAN Eq. 2)."""
    return ops.mean(_f32(fake_scores)) - ops.mean(_f32(real_scores))


def wasserstein_generator_loss(fake_scores):
    """WGAN generator loss -E[D(G(x))]."""
    return -ops.mean(_f32(fake_scores))


def signed_label_wasserstein(labels, scores):
    """The Keras DeblurGAN port's ``K.mean(y_true * y_pred)`` with labels +1 (real) / -1 (fake)."""
    return ops.mean(_f32(labels) * _f32(scores))


def bce_with_logits(labels, logits):
    """Binary cross-entropy on logits (numerically stable)."""
    labels = ops.broadcast_to(_f32(labels), ops.shape(logits))
    return ops.mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=_f32(logits)))


def bce_on_probabilities(labels, probs, epsilon: float = 1e-7):
    """Binary cross-entropy on sigmoid outputs, clipped like Keras' ``binary_crossentropy``."""
    probs = ops.clip(_f32(probs), epsilon, 1.0 - epsilon)
    labels = _f32(labels)
    return -ops.mean(labels * ops.log(probs) + (1.0 - labels) * ops.log(1.0 - probs))


def non_saturating_generator_loss(scores, from_logits: bool = False, epsilon: float = 1e-7):
    """-E[log D(G(x))] (Goodfellow et al. 2014 §3; SRGAN Eq. 6). ``epsilon`` guards log(0)."""
    scores = _f32(scores)
    if from_logits:
        return ops.mean(ops.softplus(-scores))  # -log(sigmoid(s))
    return -ops.mean(ops.log(scores + epsilon))


def gradient_penalty(critic, real, fake, seed_generator, mode: str = "standard", epsilon: float = 1e-12):
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, Alg. 1).

    mode="standard": one alpha ~ U[0, 1] per example, norm over all of (H, W, C) of each example.
    mode="official": DeblurGAN's models/losses.py: one alpha for the whole batch and the norm taken
    over channels only, per pixel (``gradients.norm(2, dim=1)``), then averaged.
    ``epsilon`` sits inside the square root so a zero gradient gives no NaN (keras-io#910).
    Call it inside the critic's tape so the penalty reaches the critic's weights.
    """
    real = _f32(real)
    fake = _f32(fake)
    batch = ops.shape(real)[0]
    alpha_shape = (batch, 1, 1, 1) if mode == "standard" else (1, 1, 1, 1)
    if mode not in ("standard", "official"):
        raise ValueError(f"gradient penalty mode must be 'standard' or 'official', got {mode!r}")
    alpha = keras.random.uniform(alpha_shape, 0.0, 1.0, seed=seed_generator)
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        scores = _f32(critic(interpolated, training=True))
        total = ops.sum(scores)
    grads = _f32(tape.gradient(total, interpolated))
    if mode == "standard":
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + epsilon)
    else:
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=-1) + epsilon)
    return ops.mean(ops.square(norms - 1.0))


# ----------------------------------------------------------------------------- perceptual
def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def cached_imagenet_weights(network: str) -> Path:
    return keras_home() / "models" / VGG_NOTOP_WEIGHTS[network][0]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_weights_message(network: str) -> str:
    fname, md5 = VGG_NOTOP_WEIGHTS[network]
    return (
        f"ImageNet weights for {network.upper()} are not available ({cached_imagenet_weights(network)} "
        f"is missing and could not be downloaded). Download {fname} (md5 {md5}) from the "
        f"keras-applications release page and either put it in $KERAS_HOME/models/ "
        f"(KERAS_HOME={keras_home()}) or pass --vgg-weights /path/to/{fname}; "
        f"--vgg-weights random runs the code path with an untrained VGG (not for real training)"
    )


def imagenet_weights_available(network: str, try_download: bool = True) -> bool:
    """True when the ImageNet notop weights are cached with the right md5, or could be downloaded."""
    path = cached_imagenet_weights(network)
    fname, md5 = VGG_NOTOP_WEIGHTS[network]
    if path.exists() and _md5(path) == md5:
        return True
    if not try_download:
        return False
    try:
        keras.utils.get_file(
            fname,
            f"https://storage.googleapis.com/tensorflow/keras-applications/{network}/{fname}",
            cache_subdir="models",
            file_hash=md5,
        )
        return True
    except Exception:  # offline, proxy refused, hash mismatch: all mean "not available"
        return False


def resolve_vgg_weights(spec, network: str):
    """Map the ``--vgg-weights`` value to what ``keras.applications`` takes.

    "imagenet" -> "imagenet" (Keras' cache or download), "random"/None -> None, else a local
    ``.h5`` path that must exist. Raises :class:`UserError` with the fix when weights are missing.
    """
    if spec in (None, "random", "none"):
        return None
    if spec == "imagenet":
        if not imagenet_weights_available(network):
            raise UserError(missing_weights_message(network))
        return "imagenet"
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: VGG weights file not found; pass an existing {VGG_NOTOP_WEIGHTS[network][0]}")
    return str(path)


def caffe_preprocess(images):
    """[-1, 1] RGB -> 0..255 BGR minus the ImageNet mean, as keras.applications.vgg*.preprocess_input."""
    images = (_f32(images) + 1.0) * 127.5
    bgr = images[..., ::-1]
    return bgr - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype="float32")


def vgg_weights_from_torchvision(state_dict, network: str, path) -> Path:
    """Write torchvision's ``vgg16`` / ``vgg19`` ``features`` weights as a Keras VGG notop file.

    ``state_dict``: name -> array of ``torchvision.models.vgg19(...).features.state_dict()`` (keys
    ``"<index>.weight"`` / ``"<index>.bias"``; a ``features.`` prefix is removed), or an ``.npz`` of it.
    The convs, in index order, become Keras' ``block<i>_conv<j>`` (kernels transposed to HWIO). The
    result feeds ``--vgg-weights PATH``; with ``vgg_preprocess="none"`` it reproduces a PyTorch recipe
    that put [-1, 1] images into torchvision's VGG (the official DeblurGAN ``PerceptualLoss``).
    """
    import numpy as np

    if isinstance(state_dict, (str, Path)):
        with np.load(state_dict) as arrays:
            state_dict = dict(arrays)
    arrays = {k[len("features."):] if k.startswith("features.") else k: np.asarray(v) for k, v in state_dict.items()}
    indices = sorted(int(k.split(".")[0]) for k in arrays if k.endswith(".weight") and arrays[k].ndim == 4)
    builders = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
    if network not in builders:
        raise UserError(f"network must be vgg16 or vgg19, got {network!r}")
    vgg = builders[network](include_top=False, weights=None, input_shape=(None, None, 3))
    convs = [layer for layer in vgg.layers if isinstance(layer, layers.Conv2D)]
    if len(indices) != len(convs):
        raise UserError(f"the weights hold {len(indices)} convolutions, {network} has {len(convs)}; "
                        f"pass torchvision's {network}().features.state_dict()")
    for layer, index in zip(convs, indices):
        kernel = arrays[f"{index}.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        if kernel.shape != tuple(layer.kernel.shape):
            raise UserError(f"features.{index}.weight has shape {arrays[f'{index}.weight'].shape}, which does not "
                            f"fit {layer.name} {tuple(layer.kernel.shape)}")
        layer.set_weights([kernel, arrays[f"{index}.bias"]])
    path = Path(path)
    vgg.save_weights(path)
    return path


def build_feature_extractor(network="vgg19", layer="block5_conv4", weights=None, pre_activation=False):
    """A frozen float32 VGG feature model ending at ``layer``.

    ``pre_activation=True`` returns the conv output before its ReLU (PyTorch ``features[:k]``
    slices such as DeblurGAN's conv3_3 index 14), by re-applying the layer's kernel without ReLU.
    """
    builders = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
    if network not in builders:
        raise ValueError(f"network must be vgg16 or vgg19, got {network!r}")
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # keras.applications has no dtype argument
    try:
        vgg = builders[network](include_top=False, weights=weights, input_shape=(None, None, 3))
        target = vgg.get_layer(layer)
        if pre_activation:
            linear = layers.Conv2D(
                target.filters, target.kernel_size, padding=target.padding, activation=None,
                name=f"{layer}_linear",
            )
            features = linear(target.input)
            linear.set_weights(target.get_weights())
        else:
            features = target.output
        extractor = keras.Model(vgg.input, features, name=f"{network}_{layer}")
    finally:
        keras.config.set_dtype_policy(previous_policy)
    extractor.trainable = False
    return extractor


class PerceptualLoss:
    """Distance between VGG features of two [-1, 1] images (Johnson et al. 2016).

    Args:
        network: "vgg16" or "vgg19".
        layer: keras.applications layer name, e.g. "block3_conv3" (DeblurGAN), "block5_conv4" (SRGAN).
        preprocess: "caffe" maps [-1, 1] to what the ImageNet weights expect (0..255 BGR minus
            mean); "none" feeds the input unchanged, reproducing upstream repositories that did so.
        feature_scale: multiplies the features (SRGAN paper: 1 / 12.75).
        distance: "mse" or "l1".
        weights: "imagenet", a local notop ``.h5`` path, or None for random weights (tests).
        pre_activation: take the conv output before its ReLU.
        extractor: a ready float32 feature model to use instead of building VGG (``network``,
            ``layer``, ``weights`` and ``pre_activation`` are then ignored), e.g. a small network
            shared with a PyTorch reference in a parity test.
    """

    def __init__(self, network="vgg19", layer="block5_conv4", preprocess="caffe", feature_scale=1.0,
                 distance="mse", weights="imagenet", pre_activation=False, extractor=None):
        if preprocess not in ("caffe", "none"):
            raise ValueError(f"preprocess must be 'caffe' or 'none', got {preprocess!r}")
        if distance not in ("mse", "l1"):
            raise ValueError(f"distance must be 'mse' or 'l1', got {distance!r}")
        self.preprocess = preprocess
        self.feature_scale = float(feature_scale)
        self.distance = distance
        if extractor is not None:
            extractor.trainable = False
            self.extractor = extractor
            return
        self.extractor = build_feature_extractor(
            network, layer, resolve_vgg_weights(weights, network) if isinstance(weights, str) else weights,
            pre_activation,
        )

    def features(self, images):
        images = _f32(images)
        if self.preprocess == "caffe":
            images = caffe_preprocess(images)
        return _f32(self.extractor(images, training=False)) * self.feature_scale

    def __call__(self, y_true, y_pred):
        target = ops.stop_gradient(self.features(y_true))
        predicted = self.features(y_pred)
        if self.distance == "mse":
            return ops.mean(ops.square(predicted - target))
        return ops.mean(ops.abs(predicted - target))
