"""Load any accepted DGF weights and deblur uint8 photos with them (tiled automatically when large).

    loaded = load("generator_weights.h5")     # leftthomas' Keras 2 file, detected
    loaded = load("runs/dgf_deblur/keras")
    sharp = run(loaded, blurred_uint8)          # tile None: 512-px tiles above 1024 x 1024, 0: never

Accepted by :func:`load`: None (the newest run in runs/dgf_deblur), a run directory, our
``.weights.h5`` / ``.keras`` (a bare file is built from ``preset``, default ``keras``), and the
upstream files :mod:`dgf_deblur.convert` detects.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from common.weights import Loaded, config_from_run, describe, from_upstream, locate, own_origin

FAMILY = "dgf_deblur"
_ARCHITECTURE = ("growth_rate", "bottleneck_channels", "n_blocks", "tail_input", "global_skip", "use_bias")


def load(weights: str | os.PathLike | None = None, preset: str | None = None, *, source: str = "auto",
         **overrides) -> Loaded:
    """The generator of ``weights`` as a :class:`~common.weights.Loaded` (module docstring).

    ``preset`` picks the architecture of a bare own weights file; for a run or an upstream file it
    is only checked (a contradiction is a UserError naming both).
    """
    from dgf_deblur.config import DEFAULT_PRESET, Config, get_config

    overrides = {k: v for k, v in overrides.items() if v is not None}
    run_dir, path, kind, recorded = locate(FAMILY, weights, source)
    if kind != "own":
        from dgf_deblur.convert import load_upstream

        return from_upstream(path, kind, preset, overrides, _ARCHITECTURE, load_upstream)
    from dgf_deblur.model import build_generator

    cfg = config_from_run(Config, get_config, recorded, preset, DEFAULT_PRESET, path, **overrides)
    generator = build_generator(cfg)
    origin = own_origin(generator, path, run_dir)
    bare = "" if recorded else " (bare file: architecture from --preset)"
    return Loaded(generator, cfg, run_dir, describe(path, f"{origin}, preset {cfg.preset}{bare}"))


def run(loaded: Loaded, image: np.ndarray, *, tile: int | None = None, mask=None,
        train_mode: bool = False, **options) -> np.ndarray:
    """uint8 (H, W, 3) blurred -> uint8 (H, W, 3) deblurred. ``tile`` None: 512-px tiles for images
    over 1024 x 1024, 0: never tile. ``train_mode``: per-image BatchNorm statistics and dropout on,
    as the official test.lua."""
    if options:
        raise TypeError(f"dgf_deblur run(): unknown option(s) {', '.join(options)}")
    # train_mode: the network as trained (batch statistics), else BatchNormalization folded (common.folding)
    network = loaded.inference_network(train_mode)
    return deblur(network, image, SimpleNamespace(tile=tile, train_mode=train_mode))


def load_from_args(args) -> Loaded:
    """:func:`load` from --weights / --preset; prints the one ``weights:`` line."""
    import sys

    loaded = load(args.weights, args.preset)
    print(loaded.description, file=sys.stderr)
    return loaded


def add_model_flags(p, tile: bool = True):
    """Flags of test.py and predict.py: architecture of a bare weights file, inference mode, and
    (``tile``) --tile, which predict_parser already has."""
    from dgf_deblur.config import PRESETS

    g = p.add_argument_group("DGF model")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="architecture of a bare weights file (default: the run's, else keras); with an "
                        "upstream file only checked: the variant is detected from the file")
    g.add_argument("--train-mode", action="store_true",
                   help="run G in training mode (per-image BatchNorm statistics, dropout on), as the "
                        "official test.lua does")
    if not tile:
        return g
    g.add_argument("--tile", type=int,
                   help="process images in overlapping tiles of this size (bounds memory; default: "
                        "512 for images over 1024x1024, 0 = never)")
    return g


def tile_for(args, shape) -> int | None:
    """--tile as given: None = chosen from the image size and free memory by restore_array
    (common.tiling), 0 = the whole image."""
    return args.tile


def deblur(generator, image, args):
    """uint8 (H, W, 3) blurred -> uint8 (H, W, 3) deblurred.

    ``restore_array`` runs the generator as a graph: eagerly, this dense generator would keep every
    intermediate tensor alive (about 88 KB per pixel, 5.8 GB for one 256 x 256 tile).
    """
    from common.image_io import signed_to_uint8, uint8_to_signed
    from common.inference import restore_array

    # finish: converted to uint8 strip by strip as the tiles are blended (common.inference)
    return restore_array(generator, uint8_to_signed(image), multiple=1,
                         tile=tile_for(args, image.shape), training=args.train_mode,
                         finish=signed_to_uint8)
