"""Bitwise-reproducible training: TensorFlow op determinism plus every seed.

``tf.config.experimental.enable_op_determinism`` makes TensorFlow pick deterministic kernels (and
raise where an op has none, mostly on GPUs) and run ``tf.data`` in a fixed order; with the Python,
NumPy and TensorFlow seeds set, two runs of the same command give the same weights bit for bit.
It costs speed (some GPU kernels are slower, parallel reductions are ordered), so it is off
unless ``--deterministic`` asks for it. Issue 14: without it a compiled DeblurGAN step gave
different weights in 2 of 3 identical runs.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.framework import config as _tf_config


def enable(seed: int | None = None) -> None:
    """Turn on op determinism for this process, and seed Python, NumPy and TensorFlow."""
    tf.config.experimental.enable_op_determinism()
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


def is_enabled() -> bool:
    """Whether op determinism is on in this process (recorded in a run's config.json)."""
    return bool(_tf_config.is_op_determinism_enabled())


def disable() -> None:
    """Turn op determinism off again (tests restore the default with it)."""
    _tf_config.disable_op_determinism()
