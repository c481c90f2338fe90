"""DeblurGAN data on top of common.data: blurred / sharp pairs sized as the preset says.

Pairs are A (blurred) / B (sharp) folders or side-by-side images (``common.data.open_pairs``),
float RGB in [-1, 1]. The official AlignedDataset resizes each frame to ``cfg.resize`` (640 x 360)
and takes an aligned ``cfg.crop`` (256) with a random horizontal flip; the Keras port resizes the
whole frame to 256 x 256 (see config.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.data import open_pairs, pair_dataset
from common.errors import UserError
from deblur_gan.config import Config

GRID_PAIRS = 3  # pairs shown in the per-epoch result grids
GRID_CROP = (256, 256)  # their crop when the preset crops


def training_pairs(data_path: Path, cfg: Config, side_by_side: str):
    """The training split; a UserError when it is empty or its sizes cannot go through G as they are."""
    source = open_pairs(data_path, split="train", side_by_side=side_by_side)
    if len(source) == 0:
        raise UserError(f"{data_path}: no training pairs found")
    if cfg.train_size is None:
        height, width = source.load(0)[0].shape[:2]
        if height % cfg.multiple or width % cfg.multiple:
            raise UserError(f"{data_path}: images are {height}x{width}, not multiples of {cfg.multiple}; "
                            "pass --crop H W or --resize H W")
    return source


def training_dataset(source, cfg: Config, start_step: int = 0):
    """Endless ``(blurred, sharp)`` batches in [-1, 1]; a pure function of (seed, step), so resumable."""
    return pair_dataset(source, cfg.batch_size, crop=cfg.crop, resize=cfg.resize, flip=cfg.flip,
                        seed=cfg.seed, start_step=start_step)


def grid_pairs(data_path: Path, source, cfg: Config, side_by_side: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed ``(blurred, sharp)`` batch for the per-epoch grids: the first pairs of the test split
    when there is one, else of the training split."""
    try:
        grid_source = open_pairs(data_path, split="test", side_by_side=side_by_side)
    except UserError:
        grid_source = source
    grid = pair_dataset(grid_source, min(GRID_PAIRS, len(grid_source)),
                        crop=GRID_CROP if cfg.crop is not None else None, resize=cfg.resize, flip=False,
                        seed=cfg.seed, repeat=False, shuffle=False)
    blurred, sharp = (np.asarray(t) for t in next(iter(grid)))
    return blurred, sharp


__all__ = ["training_pairs", "training_dataset", "grid_pairs"]
