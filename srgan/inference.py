"""Load any accepted SRGAN / SRResNet weights and upscale uint8 images with them (whole or tiled).

    loaded = load("Generator_SRGAN.h5")    # bubbliiiing's release, detected (LR input [-1, 1])
    loaded = load("runs/srgan/paper-srgan")
    hr = run(loaded, lr_uint8, tile=128)   # (H, W, 3) -> (4H, 4W, 3)

Accepted by :func:`load`: None (the newest run in runs/srgan), a run directory, our ``.weights.h5``
/ ``.keras`` (a bare file is built from ``preset``, default ``bubbliiiing``), and the upstream
releases :mod:`srgan.convert` detects. The input range of an upstream file is part of what is
detected, so a file never runs with another preset's range.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.cli import load_run_config
from common.errors import UserError
from common.weights import Loaded, check_preset, describe, from_upstream, locate, own_origin
from srgan.config import DEFAULT_PRESET, Config, get_config

FAMILY = "srgan"
_ARCHITECTURE = ("scale", "filters", "num_res_blocks", "upsample_filters", "head_kernel", "tail_kernel",
                 "bn_epsilon", "lr_range")


def run_config(run_dir: Path | None, preset: str) -> Config:
    """The config a run used (its config.json), or ``preset`` for a bare weights file."""
    recorded = load_run_config(run_dir)
    if not recorded:
        return get_config(preset)
    return Config.from_dict(recorded)  # UserError for a config.json of another family


def load(weights: str | os.PathLike | None = None, preset: str | None = None, *, source: str = "auto",
         **overrides) -> Loaded:
    """The generator of ``weights`` as a :class:`~common.weights.Loaded` (module docstring).

    ``preset`` picks the architecture and input range of a bare own weights file; for a run or an
    upstream file it is only checked (a contradiction is a UserError naming both).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    run_dir, path, kind, recorded = locate(FAMILY, weights, source)
    if kind != "own":
        from srgan.convert import load_upstream

        return from_upstream(path, kind, preset, overrides, _ARCHITECTURE, load_upstream)

    from srgan.model import build_generator

    if recorded:
        config = Config.from_dict(recorded)
        check_preset(path, config.preset, preset, f"a {config.preset} run")
        config = get_config(config, **overrides)
    else:
        config = get_config(preset or DEFAULT_PRESET, **overrides)
    generator = build_generator(preset=config)
    origin = own_origin(generator, path, run_dir)
    bare = "" if recorded else " (bare file: architecture and input range from --preset)"
    what = f"{origin}, preset {config.preset}, stage {config.stage}, x{config.scale}{bare}"
    return Loaded(generator, config, run_dir, describe(path, what))


def run(loaded: Loaded, image: np.ndarray, *, tile: int | None = None, mask=None, **options) -> np.ndarray:
    """uint8 LR image (H, W, 3) -> uint8 SR image (scale*H, scale*W, 3). ``tile``: input pixels."""
    from common.inference import restore_array
    from srgan.data import generator_output_to_uint8, uint8_to_generator_input

    if options:
        raise TypeError(f"srgan run(): unknown option(s) {', '.join(options)}")
    config = loaded.config
    if tile and tile < 8:  # None: automatic, 0: whole image
        raise UserError(f"--tile {tile}: use at least 8 input pixels (e.g. --tile 128)")
    x = uint8_to_generator_input(image, config.lr_range)
    # converted to uint8 strip by strip: a x4 result is never held whole in float32
    return restore_array(loaded.inference_network(), x, multiple=1, scale=config.scale, tile=tile,
                         finish=generator_output_to_uint8)


def add_model_flags(p):
    """--preset of test.py and predict.py."""
    from srgan.config import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS),
                   help=f"architecture and input range of a bare weights file (default {DEFAULT_PRESET}; "
                        "a run records its own, an upstream file is detected and only checked)")
    return p


def load_from_args(args) -> Loaded:
    """:func:`load` from --weights / --preset; prints the one ``weights:`` line."""
    import sys

    loaded = load(args.weights, args.preset)
    print(loaded.description, file=sys.stderr)
    return loaded


def label(config: Config) -> str:
    """Column title of the model's results."""
    return "SRResNet" if config.stage == "srresnet" else "SRGAN"


__all__ = ["load", "run", "run_config", "add_model_flags", "load_from_args", "label", "FAMILY"]
