"""Load any accepted DeblurGAN weights and deblur uint8 images with them.

    loaded = load("latest_net_G.pth")       # official PyTorch release, detected as the paper model
    loaded = load("runs/deblur_gan/paper")  # one of our runs (its config.json names the architecture)
    sharp = run(loaded, blurred_uint8, tile=512)

Accepted by :func:`load`: None (the newest run in runs/deblur_gan), a run directory, our
``.weights.h5`` / ``.keras`` (a bare file is built from ``preset``, default ``paper``), and the
upstream releases that :mod:`deblur_gan.convert` detects.
"""

from __future__ import annotations

import os

import numpy as np

from common.errors import UserError
from common.weights import Loaded, config_from_run, describe, from_upstream, locate, own_origin
from deblur_gan.config import DEFAULT_PRESET, PRESETS, Config, get_config

FAMILY = "deblur_gan"
# fields a bare weights file cannot tell; an upstream file fixes every other architecture field
_ARCHITECTURE = ("ngf", "n_blocks", "n_downsampling", "upsampling", "norm", "conv_padding", "dropout",
                 "global_residual", "conv_bias")


def load(weights: str | os.PathLike | None = None, preset: str | None = None, *, source: str = "auto",
         **overrides) -> Loaded:
    """The generator of ``weights`` (see the module docstring) as a :class:`~common.weights.Loaded`.

    ``preset`` picks the architecture of a bare own weights file; for a run or an upstream file it
    is only checked (a contradiction is a UserError naming both). ``overrides``: Config fields
    (e.g. ``upsampling="nearest"``), checked the same way. ``source``: convert's ``--from``.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    run_dir, path, kind, recorded = locate(FAMILY, weights, source)
    if kind == "own":
        cfg = config_from_run(Config, get_config, recorded, preset, DEFAULT_PRESET, path, **overrides)
        from deblur_gan.model import build_generator

        generator = build_generator(cfg)
        bare = "" if recorded else " (bare file: architecture from --preset)"
        what = f"{own_origin(generator, path, run_dir)}, preset {cfg.preset}{bare}"
        return Loaded(generator, cfg, run_dir, describe(path, what))
    from deblur_gan.convert import load_upstream

    return from_upstream(path, kind, preset, overrides, _ARCHITECTURE, load_upstream)


def check_options(loaded: Loaded, stochastic: bool = False) -> None:
    """UserError for options this generator cannot honour (before any image is processed)."""
    if stochastic and loaded.config.norm == "batch":
        raise UserError("--stochastic reproduces the official PyTorch inference (dropout on, InstanceNorm); "
                        "this generator uses BatchNorm, whose batch statistics would change the result")


def run(loaded: Loaded, image: np.ndarray, *, tile: int | None = None, mask=None,
        stochastic: bool = False, **options) -> np.ndarray:
    """uint8 (H, W, 3) blurred -> uint8 (H, W, 3) deblurred, at any size (reflect-padded to a
    multiple of 4 and cropped back). ``tile`` bounds memory; ``stochastic`` keeps dropout on, as the
    official test.py does."""
    from common.image_io import signed_to_uint8, uint8_to_signed
    from common.inference import restore_array

    if options:
        raise TypeError(f"deblur_gan run(): unknown option(s) {', '.join(options)}")
    check_options(loaded, stochastic)
    # finish: converted to uint8 strip by strip as the tiles are blended (common.inference)
    # stochastic: the network as trained (dropout on), else BatchNormalization folded (common.folding)
    return restore_array(loaded.inference_network(stochastic), uint8_to_signed(image),
                         multiple=loaded.config.multiple, tile=tile, training=stochastic,
                         finish=signed_to_uint8)


def add_model_flags(p):
    """Flags of test.py and predict.py that describe or check the generator."""
    g = p.add_argument_group("DeblurGAN model")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="architecture of a bare weights file (default: the run's, else paper); with an "
                        "upstream file only checked: the variant is detected from the file")
    g.add_argument("--upsampling", choices=("transpose", "nearest"),
                   help="generator upsampling of a bare weights file (upstream files: detected)")
    g.add_argument("--stochastic", action="store_true",
                   help="keep dropout active at inference, as the official test.py does (paper preset)")
    return g


def load_from_args(args) -> Loaded:
    """:func:`load` from --weights / --preset / --upsampling; prints the one ``weights:`` line."""
    import sys

    loaded = load(args.weights, args.preset, upsampling=args.upsampling)
    check_options(loaded, args.stochastic)
    print(loaded.description, file=sys.stderr)
    return loaded


__all__ = ["load", "run", "check_options", "add_model_flags", "load_from_args", "FAMILY"]
