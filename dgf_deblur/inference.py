"""What test.py and predict.py share: loading a trained generator and running it on photos."""

from __future__ import annotations

from common.cli import load_run_config, resolve_weights

FAMILY = "dgf_deblur"


def add_model_flags(p, tile: bool = True):
    """Flags of test.py and predict.py: architecture of a bare weights file, inference mode, and
    (``tile``) --tile, which predict_parser already has."""
    from dgf_deblur.config import PRESETS

    g = p.add_argument_group("DGF model")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="architecture of a bare weights file (default: the run's, else keras)")
    g.add_argument("--train-mode", action="store_true",
                   help="run G in training mode (per-image BatchNorm statistics, dropout on), as the "
                        "official test.lua does")
    if not tile:
        return g
    g.add_argument("--tile", type=int,
                   help="process images in overlapping tiles of this size (bounds memory; default: "
                        "512 for images over 1024x1024, 0 = never)")
    return g


def load(args):
    """(generator, config) from --weights / --preset."""
    from dgf_deblur.model import load_generator

    run_dir, weights = resolve_weights(FAMILY, args.weights)
    return load_generator(weights, load_run_config(run_dir), preset=args.preset)


def tile_for(args, shape) -> int | None:
    """--tile, or 512 automatically for images over 1024 x 1024 pixels."""
    if args.tile is not None:
        return args.tile or None
    return 512 if shape[0] * shape[1] > 1024 * 1024 else None


def deblur(generator, image, args):
    """uint8 (H, W, 3) blurred -> uint8 (H, W, 3) deblurred.

    ``restore_array`` runs the generator as a graph: eagerly, this dense generator would keep every
    intermediate tensor alive (about 88 KB per pixel, 5.8 GB for one 256 x 256 tile).
    """
    import numpy as np

    from common.image_io import signed_to_uint8, uint8_to_signed
    from common.inference import restore_array

    restored = restore_array(generator, uint8_to_signed(image), multiple=1,
                             tile=tile_for(args, image.shape), training=args.train_mode)
    return np.asarray(signed_to_uint8(np.clip(restored, -1.0, 1.0)))
