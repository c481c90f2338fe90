"""Choosing and setting the Keras dtype policy (``--precision``).

The policy must be set before any model is built. Variables stay float32 under every mixed
policy; the models keep their last activation in float32 and all losses are computed in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras

CHOICES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bfloat16() -> bool:
    """True when the CPU has AMX or AVX-512 BF16 instructions (Linux ``/proc/cpuinfo``)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return any(flag in flags for flag in ("amx_bf16", "avx512_bf16"))


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_precision(name: str = "auto") -> str:
    """Turn ``auto`` into a concrete policy name.

    auto: mixed_float16 on a GPU; mixed_bfloat16 on a CPU with native bfloat16 matrix units
    (benchmarks/precision_speed.py measured it faster there and the training tests run under it);
    float32 otherwise.
    """
    if name not in CHOICES:
        raise ValueError(f"precision must be one of {', '.join(CHOICES)}, got {name!r}")
    if name != "auto":
        return name
    if gpu_available():
        return "mixed_float16"
    if cpu_has_fast_bfloat16():
        return "mixed_bfloat16"
    return "float32"


def set_precision(name: str = "auto") -> str:
    """Set the global dtype policy and return the concrete policy name."""
    policy = resolve_precision(name)
    keras.config.set_dtype_policy(policy)
    return policy


def uses_loss_scaling() -> bool:
    """float16 needs loss scaling; bfloat16 has float32's exponent range and does not."""
    return keras.config.dtype_policy().name == "mixed_float16"
