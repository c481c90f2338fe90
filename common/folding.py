"""BatchNormalization folded into the convolution before it, for inference.

At inference a BatchNormalization is a per-channel affine map,
``y = (x - mean) * gamma / sqrt(var + eps) + beta``; when ``x`` comes straight from a convolution
that nothing else reads, the map can be moved into that convolution's kernel and bias:

    kernel' = kernel * s,  bias' = (bias - mean) * s + beta,  s = gamma / sqrt(var + eps)

Keras runs an inference BatchNormalization as its own float32 multiply-add (with two casts under a
mixed policy) that never fuses into the convolution: 9% of SRGAN's and 17% of GLCIC's generator
time on a CPU (README "Performance"). :func:`fold_batch_norm` returns a copy of a functional model
with every such pair folded (nested functional models too), the original untouched: the training
graph keeps its BatchNormalization layers, whose batch statistics are needed in training mode.
Float32 outputs agree to rounding (about 1e-6); under mixed_bfloat16 the folded kernel is rounded
to bfloat16 once instead of the BatchNormalization's output being rounded, an error of the same size
(tests/test_folding.py).
"""

from __future__ import annotations

import numpy as np


def _foldable_conv(layer) -> bool:
    import keras

    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        return False
    config = layer.get_config()
    return (config.get("activation") in ("linear", None)
            and config.get("groups", 1) == 1
            and config.get("data_format", "channels_last") == "channels_last"
            and len(layer._inbound_nodes) == 1 and len(layer._outbound_nodes) == 1)


def foldable_pairs(model) -> list:
    """``(conv, batch_norm)`` pairs of ``model`` (nested models included) that can be folded: the
    BatchNormalization's only input is a Conv2D / Conv2DTranspose without activation, called once,
    whose output nothing else reads; channels last."""
    import keras

    # Keras 3's internals: _flatten_layers walks nested models too; a layer's calls are its
    # _inbound_nodes (their input tensors carry _keras_history, the producing layer) and the nodes
    # reading its output its _outbound_nodes
    pairs = []
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        if layer.axis not in (-1, 3) or getattr(layer, "renorm", False):
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        if len(inputs) != 1:
            continue
        producer = inputs[0]._keras_history.operation
        if _foldable_conv(producer):
            pairs.append((producer, layer))
    return pairs


def folded_weights(conv, batch_norm) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, bias)`` of ``conv`` followed by ``batch_norm`` (inference mode) as one conv,
    computed in float64 and returned as float32."""
    import keras

    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    # Conv2D kernels are (kh, kw, in, out), Conv2DTranspose kernels (kh, kw, out, in)
    out_axis = 2 if isinstance(conv, keras.layers.Conv2DTranspose) else 3
    channels = kernel.shape[out_axis]
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(channels)
    mean = np.asarray(batch_norm.moving_mean.numpy(), np.float64)
    variance = np.asarray(batch_norm.moving_variance.numpy(), np.float64)
    gamma = np.asarray(batch_norm.gamma.numpy(), np.float64) if batch_norm.scale else np.ones(channels)
    beta = np.asarray(batch_norm.beta.numpy(), np.float64) if batch_norm.center else np.zeros(channels)
    scale = gamma / np.sqrt(variance + batch_norm.epsilon)
    shape = [1, 1, 1, 1]
    shape[out_axis] = channels
    folded_kernel = kernel * scale.reshape(shape)
    folded_bias = (bias - mean) * scale + beta
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def fold_batch_norm(model):
    """A copy of the functional ``model`` for inference, each pair of :func:`foldable_pairs` one
    conv; every other layer is rebuilt from its config with the same weights, names and dtype
    policies. The copy holds its own variables (made from ``model``'s weights now): changing
    ``model``'s weights later does not change it. A model without foldable pairs is returned as is.
    """
    import keras

    pairs = foldable_pairs(model)
    if not pairs:
        return model
    folded = {id(conv): (conv, norm) for conv, norm in pairs}
    dropped = {id(norm) for _, norm in pairs}
    made = []  # (original layer, its copy)

    def clone(layer):
        if id(layer) in dropped:
            return layer  # never called: call() below passes its input through
        config = layer.get_config()
        if id(layer) in folded:
            config.update(use_bias=True, bias_initializer="zeros")
        copy = layer.__class__.from_config(config)
        made.append((layer, copy))
        return copy

    def call(layer, *args, **kwargs):
        if id(layer) in dropped:
            return args[0]
        return layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call, recursive=True)
    for layer, new in made:
        if id(layer) in folded:
            new.set_weights(list(folded_weights(*folded[id(layer)])))
        else:
            new.set_weights(layer.get_weights())
    return copy


__all__ = ["fold_batch_norm", "foldable_pairs", "folded_weights"]
