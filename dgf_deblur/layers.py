"""Serializable layers for the DGF patch discriminator (replacing upstream's per-patch Lambdas).

leftthomas model.py cuts the 256 x 256 image into 16 patches with 16 ``Lambda`` slices whose bounds
are computed from ``channel_rate`` instead of the patch size (a bug hidden only because
``patch_shape = (channel_rate, channel_rate, 3)``). :class:`SplitPatches` folds the patches into the
batch axis, sliced by the patch size, so one application of the shared patch classifier scores all
of them; :class:`MeanPatchScores` averages each image's patch scores (upstream ``Average()``).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from common.layers import as_pair as _pair

_PACKAGE = "dgf_deblur"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SplitPatches(layers.Layer):
    """(B, H, W, C) -> (B * n, ph, pw, C): non-overlapping patches, each pixel in exactly one.

    ``n = (H // ph) * (W // pw)``; H and W must be multiples of the patch size. Patches of one image
    are consecutive in the output, in row-major order (row of patches first, as upstream's loops):
    output ``b * n + i * (W // pw) + j`` is ``x[b, i*ph:(i+1)*ph, j*pw:(j+1)*pw, :]``.
    """

    def __init__(self, patch_size=64, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _pair(patch_size)

    def build(self, input_shape):
        _, height, width, _ = input_shape
        ph, pw = self.patch_size
        for size, patch, axis in ((height, ph, "height"), (width, pw, "width")):
            if size is not None and size % patch != 0:
                raise ValueError(
                    f"SplitPatches: image {axis} {size} is not a multiple of the patch {axis} "
                    f"{patch}; the patches must tile the image exactly"
                )
        self.built = True

    def call(self, inputs):
        ph, pw = self.patch_size
        shape = ops.shape(inputs)
        height, width, channels = shape[1], shape[2], shape[3]
        rows, cols = height // ph, width // pw
        x = ops.reshape(inputs, (-1, rows, ph, cols, pw, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, rows, cols, ph, pw, C)
        return ops.reshape(x, (-1, ph, pw, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        ph, pw = self.patch_size
        if batch is None or height is None or width is None:
            out_batch = None
        else:
            out_batch = batch * (height // ph) * (width // pw)
        return (out_batch, ph, pw, channels)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanPatchScores(layers.Layer):
    """(B * n, k) scores of :class:`SplitPatches` patches -> (B, k): the mean over each image's n.

    Averages what it is given (upstream averages the per-patch sigmoid probabilities).
    """

    def __init__(self, num_patches=16, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = int(num_patches)

    def call(self, inputs):
        k = ops.shape(inputs)[-1]
        x = ops.reshape(inputs, (-1, self.num_patches, k))
        return ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        batch, k = input_shape
        return (None if batch is None else batch // self.num_patches, k)

    def get_config(self):
        return {**super().get_config(), "num_patches": self.num_patches}
