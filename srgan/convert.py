"""Upstream SRGAN weights -> our generator: detection of the variant, and the convert command.

    python -m srgan.convert --input Generator_SRGAN.h5 --output srgan_bubbliiiing.weights.h5
    python -m srgan.convert --input pre_generator.h5 --output srresnet_krasserm.weights.h5

Accepted files (Keras 2 / tf.keras HDF5 from ``save_weights``, the SRResNet layout of paper Fig. 4):

* bubbliiiing/srgan-keras ``Generator_SRGAN.h5`` -> preset ``bubbliiiing``: LR input in [-1, 1]
  (utils.preprocess_input), BatchNorm epsilon 1e-3. Its only Lambda layers are the pixel shuffles.
* krasserm/super-resolution ``pre_generator.h5`` (SRResNet) / ``gan_generator.h5`` (SRGAN) ->
  preset ``paper`` with ``bn_epsilon=1e-3`` (tf.keras' default; the paper's Lasagne used 1e-4).
  model/srgan.py takes pixels in [0, 255] and normalises inside Lambda layers: ``normalize_01``
  (x / 255: the paper's LR range [0, 1], our ``lr_range="unit"``) before the first conv and
  ``denormalize_m11`` ((x + 1) * 127.5) after the tanh, which our uint8 conversion does outside.
  Those two extra Lambda layers tell the files apart.

Both pixel shuffles are ``tf.nn.depth_to_space`` (TensorFlow's channel order, as our
SubpixelConv2D), so the 256-channel convs load without a permutation.
"""

from __future__ import annotations

import math
from pathlib import Path

from common.cli import run_cli
from common.errors import UserError
from common.upstream_io import Keras2File, read_keras2_h5
from common.weights import assign_in_order, check_preset, convert_main
from srgan.config import PRESETS, get_config

FAMILY = "srgan"


def _kind(arrays) -> str:
    if len(arrays) == 4 and arrays[0].ndim == 1:
        return "bn"
    if len(arrays) == 1 and arrays[0].ndim == 3:
        return "prelu"
    if arrays and arrays[0].ndim == 4:
        return "conv"
    return "other"


def detect_keras2(weights: Keras2File, path) -> tuple[str, dict, str]:
    """``(preset, config fields, description)`` of a Keras 2 SRResNet generator file."""
    arrays = list(weights.layers.values())
    kinds = [_kind(a) for a in arrays]
    not_generator = (f"{path}: not an SRGAN generator (expected conv k9 + PReLU, residual blocks, "
                     "pixel-shuffle upsampling, conv k9 to RGB); the discriminator has nothing to load here")
    if len(arrays) < 8 or "other" in kinds or kinds[:2] != ["conv", "prelu"] or kinds[-1] != "conv":
        raise UserError(not_generator)
    head, tail = arrays[0][0], arrays[-1][0]
    filters = int(head.shape[3])
    if head.shape[2] != 3 or tail.shape[3] != 3:
        raise UserError(not_generator)
    # after the head: blocks of conv bn prelu conv bn, then trunk conv bn, then (conv prelu) x n_up
    body = kinds[2:-1]
    n_up = 0
    while body[-2:] == ["conv", "prelu"]:
        body, n_up = body[:-2], n_up + 1
    blocks, rest = divmod(len(body) - 2, 5)
    if n_up == 0 or rest or body[-2:] != ["conv", "bn"] or body[:-2] != ["conv", "bn", "prelu", "conv", "bn"] * blocks:
        raise UserError(not_generator)
    up_filters = int(arrays[-3][0].shape[3])
    fields = {"filters": filters, "num_res_blocks": blocks, "scale": 2 ** n_up, "upsample_filters": up_filters,
              "head_kernel": int(head.shape[0]), "tail_kernel": int(tail.shape[0])}
    lambdas = [n for n in weights.layer_names if "lambda" in n.lower()]
    first_weighted = weights.layer_names.index(next(iter(weights.layers)))
    normalises_inside = any("lambda" in n.lower() for n in weights.layer_names[:first_weighted])
    if normalises_inside or len(lambdas) == n_up + 2:
        name = Path(path).name.lower()
        stage = "srresnet" if name.startswith("pre") or "srresnet" in name else "srgan"
        fields.update(bn_epsilon=1e-3, stage=stage)
        what = (f"krasserm/super-resolution {'SRResNet' if stage == 'srresnet' else 'SRGAN'} generator "
                f"(tf.keras), paper preset with BN epsilon 1e-3, LR input [0, 1], x{2 ** n_up}")
        return "paper", fields, what
    if len(lambdas) == n_up:
        what = (f"bubbliiiing/srgan-keras generator (Keras 2), bubbliiiing preset: LR input [-1, 1], "
                f"BN epsilon 1e-3, x{2 ** n_up}")
        return "bubbliiiing", fields, what
    raise UserError(f"{path}: an SRResNet generator, but neither bubbliiiing's (pixel-shuffle Lambdas "
                    f"only) nor krasserm's (normalising Lambdas around the network) layout: found "
                    f"{len(lambdas)} Lambda layers for {n_up} upsamplings; its input range is unknown, "
                    "so it is not loaded")


def load_upstream(path, kind: str, preset: str | None = None):
    """``(generator, config, description)`` from an upstream SRGAN file; a ``preset`` that
    contradicts the file is an error naming both."""
    from srgan.model import build_generator

    path = Path(path)
    if kind != "keras2-h5":
        raise UserError(f"{path}: a {kind} file is not an SRGAN release this project reads; pass "
                        "bubbliiiing's Generator_SRGAN.h5, krasserm's pre_generator.h5 / gan_generator.h5, "
                        "or one of our runs")
    weights = read_keras2_h5(path)
    detected, fields, what = detect_keras2(weights, path)
    check_preset(path, detected, preset, what)
    config = get_config(detected, **fields)
    if not math.log2(config.scale).is_integer():
        raise UserError(f"{path}: scale {config.scale} is not a power of two")
    generator = build_generator(preset=config)
    assign_in_order(generator, list(weights.layers.items()), path)
    return generator, config, what


def main(argv=None) -> int:
    from srgan.inference import load

    return convert_main(FAMILY, load, argv, presets=PRESETS)


__all__ = ["detect_keras2", "load_upstream", "main"]

if __name__ == "__main__":
    run_cli(main)
