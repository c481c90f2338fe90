"""Loading a trained SRGAN generator and upscaling uint8 images with it (whole or tiled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.cli import load_run_config, resolve_weights
from common.errors import UserError
from common.inference import restore_array
from srgan.config import Config, get_config
from srgan.data import generator_output_to_uint8, uint8_to_generator_input
from srgan.model import build_generator


def run_config(run_dir: Path | None, preset: str) -> Config:
    """The config a run used (its config.json), or ``preset`` for a bare weights file."""
    recorded = load_run_config(run_dir)
    if not recorded:
        return get_config(preset)
    return Config.from_dict(recorded)  # UserError for a config.json of another family


def load_generator(weights: str | None, preset: str):
    """``(generator, config, run_dir, weights_file)`` from ``--weights`` (newest run when None)."""
    run_dir, weights_file = resolve_weights("srgan", weights)
    config = run_config(run_dir, preset)
    generator = build_generator(preset=config)
    try:
        generator.load_weights(weights_file)
    except (ValueError, KeyError) as err:
        raise UserError(f"{weights_file}: does not fit the SRGAN generator of preset "
                        f"{config.preset!r} at scale {config.scale} ({err}); pass the matching "
                        "--preset / run directory") from err
    return generator, config, run_dir, weights_file


def upscale(generator, config: Config, image: np.ndarray, tile: int | None = None) -> np.ndarray:
    """uint8 LR image (H, W, 3) -> uint8 SR image (scale*H, scale*W, 3)."""
    x = uint8_to_generator_input(image, config.lr_range)
    if tile is not None and tile < 8:
        raise UserError(f"--tile {tile}: use at least 8 input pixels (e.g. --tile 128)")
    out = restore_array(generator, x, multiple=1, scale=config.scale, tile=tile)
    return generator_output_to_uint8(out)
