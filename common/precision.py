"""Choosing and setting the Keras dtype policy (``--precision``).

The policy must be set before any model is built. Variables stay float32 under every mixed
policy; the models keep their last activation in float32 and all losses are computed in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

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
    import keras  # here, so that the command-line parsers can import this module without Keras

    policy = resolve_precision(name)
    keras.config.set_dtype_policy(policy)
    return policy


# Families whose generators stay float32 under ``--precision auto`` at inference, because their
# mixed_bfloat16 output is not safely within 40 dB PSNR of the float32 output (issue 10; measured
# with ``python benchmarks/precision_agreement.py``, 256x256 scikit-image photos):
# - dgf_deblur: 36.4 and 39.2 dB with the weights of two real train.py runs (keras preset,
#   runs/learning/dgf_deblur-keras*), although random weights briefly fitted gave 54-59 dB. Cause:
#   the trained network carries activations of 1e2-1e3 (fuse_lrelu up to 961) into the 3x3
#   output conv, whose result must be right to ~1e-2 before the tanh; bf16 stores those inputs to
#   ~0.3% (relative error 3e-3 at every layer, 2.8e-2 after the tanh), so no single layer kept in
#   float32 would fix it. (A later run that learned, runs/learning/dgf_deblur-keras-20, 720 steps,
#   gave 57.6 dB: the runs that did not learn are the unsafe case, and a user's run can be one).
# GLCIC stayed float32 here until real trained weights were measured: briefly fitted random weights
# gave 41.3 / 42.0 dB inside the hole, the lowest of all families, but the networks of two real
# train.py runs (the sample demo, and 1,200 steps of the paper recipe at full width, past the mean
# fill baseline) gave 48.6 and 50.5 dB (mixed_float16: 60.0 dB): rising from fitted to trained
# weights where DGF fell, so auto runs it in 16 bits (README, Performance).
INFERENCE_FLOAT32_FAMILIES: frozenset[str] = frozenset({"dgf_deblur"})

INFERENCE_HELP = ("auto: mixed_bfloat16 on CPUs with bfloat16 units (AVX-512 BF16 / AMX), "
                  "mixed_float16 on a GPU, else float32; DGF stays float32 (its 16-bit "
                  "output is not safely within 40 dB PSNR of float32: "
                  "benchmarks/precision_agreement.py). float32: the exact float32 path")


def resolve_inference_precision(name: str, family: str) -> str:
    """``--precision`` of predict.py / test.py / the web page: as :func:`resolve_precision`, except
    that ``auto`` stays float32 for the families in :data:`INFERENCE_FLOAT32_FAMILIES`."""
    if name == "auto" and family in INFERENCE_FLOAT32_FAMILIES:
        return "float32"
    return resolve_precision(name)


def describe_precision(name: str, policy: str, family: str | None = None) -> str:
    """The ``precision:`` line the inference scripts print: what ``name`` became, and why."""
    if name != "auto":
        return f"precision: {policy}"
    if policy == "float32":
        why = ("this generator's 16-bit output is not close enough to float32"
               if family in INFERENCE_FLOAT32_FAMILIES else "no GPU and no bfloat16 units")
        return f"precision: float32 (auto: {why})"
    where = "a GPU" if policy == "mixed_float16" else "this CPU's bfloat16 units"
    return f"precision: {policy} (auto, for {where}; --precision float32 for the exact float32 path)"


def set_inference_precision(name: str, family: str) -> str:
    """Set the dtype policy of predict.py / test.py, print the ``precision:`` line on stderr and
    return the concrete policy name. Must run before the generator is built."""
    import sys

    import keras

    policy = resolve_inference_precision(name, family)
    keras.config.set_dtype_policy(policy)
    print(describe_precision(name, policy, family), file=sys.stderr)
    return policy


def uses_loss_scaling() -> bool:
    """float16 needs loss scaling; bfloat16 has float32's exponent range and does not."""
    import keras

    return keras.config.dtype_policy().name == "mixed_float16"
