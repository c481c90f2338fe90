"""Upstream DeblurGAN weights -> our generator: detection of the variant, and the convert command.

    python -m deblur_gan.convert --input latest_net_G.pth --output deblurgan_official.weights.h5
    python -m deblur_gan.convert --input generator.h5 --output deblurgan_keras_port.weights.h5

Accepted files (the architecture is read from the file, never assumed):

* the official PyTorch ``latest_net_G.pth`` (KupynOrest/DeblurGAN, a ``state_dict``; the legacy
  pre-1.6 pickle or the zip format), or an ``.npz`` of it -> preset ``paper``; ``ngf``, the number
  of blocks and downsamplings and the dropout come from the keys and shapes;
* RaphaelMeudec/deblur-gan's ``generator.h5`` (Keras 2 ``save_weights``) -> preset
  ``keras-port``: ``Conv2DTranspose`` layers mean the March 2018 file (``upsampling="transpose"``),
  plain convolutions the current file (``upsampling="nearest"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from common.cli import run_cli
from common.errors import UserError
from common.upstream_io import Keras2File, read_keras2_h5, read_pytorch
from common.weights import check_preset, convert_main
from deblur_gan.config import PRESETS, Config, get_config

FAMILY = "deblur_gan"
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")
_LAYER_KEY = re.compile(r"^model\.(\d+)\.weight$")


def strip_module(state: dict) -> dict:
    """Drop DataParallel's ``module.`` prefix."""
    return {k[len("module."):] if k.startswith("module.") else k: np.asarray(v) for k, v in state.items()}


def detect_pytorch(state: dict, path) -> tuple[dict, str]:
    """``(config fields, description)`` of an official ResnetGenerator ``state_dict``."""
    state = strip_module(state)
    first = state.get("model.1.weight")
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if first is None or first.ndim != 4 or first.shape[1] != 3 or not blocks:
        raise UserError(f"{path}: not an official DeblurGAN generator (no model.1.weight with 3 input "
                        "channels and model.N.conv_block.* keys); is it the discriminator "
                        "(latest_net_D.pth) or another model?")
    starts = sorted(blocks)
    if starts != list(range(starts[0], starts[0] + len(starts))) or (starts[0] - 4) % 3:
        raise UserError(f"{path}: the resnet blocks are at model.{starts}, not in the official layout")
    seconds = {max(v) for v in blocks.values()}
    if seconds not in ({5}, {6}):
        raise UserError(f"{path}: resnet blocks with convs at {sorted(seconds)}; this is not the "
                        "pre-2019 two-conv block of the paper model (the March 2019 one-conv block is "
                        "not supported)")
    dropout = 0.5 if seconds == {6} else 0.0
    fields = {"ngf": int(first.shape[0]), "n_blocks": len(starts),
              "n_downsampling": (starts[0] - 4) // 3, "dropout": dropout}
    what = (f"official DeblurGAN PyTorch generator, paper preset (ngf {fields['ngf']}, "
            f"{fields['n_blocks']} blocks, {'dropout 0.5' if dropout else 'no dropout'})")
    return fields, what


def detect_keras_port(weights: Keras2File, path) -> tuple[dict, str]:
    """``(config fields, description)`` of deblur-gan's ``generator.h5``."""
    kinds = []
    for name, arrays in weights.layers.items():
        if len(arrays) == 4 and arrays[0].ndim == 1:
            kinds.append("bn")
        elif arrays and arrays[0].ndim == 4:
            kinds.append("convt" if "transpose" in name else "conv")
        else:
            kinds.append("other")
    convs = [i for i, k in enumerate(kinds) if k in ("conv", "convt")]
    if "other" in kinds or not convs or kinds.count("bn") != len(convs) - 1:
        raise UserError(f"{path}: not a DeblurGAN Keras-port generator (expected convolutions each "
                        f"followed by BatchNormalization, found {len(convs)} convs and "
                        f"{kinds.count('bn')} BN layers); for the discriminator or another model there "
                        "is nothing to load")
    arrays = list(weights.layers.values())
    first, last = arrays[convs[0]][0], arrays[convs[-1]][0]
    if first.shape[:3] != (7, 7, 3) or last.shape[-1] != 3:
        raise UserError(f"{path}: first kernel {first.shape}, last {last.shape}: not a DeblurGAN "
                        "generator (7x7 RGB in, 7x7 RGB out)")
    ngf = int(first.shape[3])
    transposed = kinds.count("convt")
    # stem + n down + 2 per block + n up + out; the port has n_downsampling = 2
    n_down = transposed if transposed else 2
    n_blocks = (len(convs) - 2 - 2 * n_down) // 2
    if transposed not in (0, n_down) or n_blocks < 1 or len(convs) != 2 + 2 * n_down + 2 * n_blocks:
        raise UserError(f"{path}: {len(convs)} convolutions ({transposed} transposed) do not make a "
                        "Keras-port generator")
    upsampling = "transpose" if transposed else "nearest"
    fields = {"ngf": ngf, "n_blocks": n_blocks, "n_downsampling": n_down, "upsampling": upsampling}
    label = "Conv2DTranspose upsampling (March 2018 file)" if transposed else "nearest upsampling"
    return fields, f"Keras port (RaphaelMeudec/deblur-gan), {label}, ngf {ngf}, {n_blocks} blocks"


def load_upstream(path, kind: str, preset: str | None = None):
    """``(generator, config, description)`` from an upstream file of ``kind`` ("pytorch", "npz",
    "keras2-h5"). A ``preset`` contradicting the file is an error naming both."""
    from deblur_gan.model import build_generator, load_keras_port_h5, load_pytorch_weights

    path = Path(path)
    if kind in ("pytorch", "npz"):
        if kind == "npz":
            with np.load(path) as arrays:
                state = dict(arrays)
        else:
            state = read_pytorch(path)
        fields, what = detect_pytorch(state, path)
        check_preset(path, "paper", preset, what)
        cfg = get_config("paper", **fields)
        generator = build_generator(cfg)
        load_pytorch_weights(generator, strip_module(state), cfg)
        return generator, cfg, what
    if kind == "keras2-h5":
        fields, what = detect_keras_port(read_keras2_h5(path), path)
        check_preset(path, "keras-port", preset, what)
        cfg = get_config("keras-port", **fields)
        generator = build_generator(cfg)
        load_keras_port_h5(generator, path)
        return generator, cfg, what
    raise UserError(f"{path}: a {kind} file is not a DeblurGAN release; pass the official "
                    "latest_net_G.pth, the Keras port's generator.h5, or one of our runs")


def main(argv=None) -> int:
    from deblur_gan.inference import load

    return convert_main(FAMILY, load, argv, presets=PRESETS)


__all__ = ["detect_pytorch", "detect_keras_port", "load_upstream", "strip_module", "Config", "main"]

if __name__ == "__main__":
    run_cli(main)
