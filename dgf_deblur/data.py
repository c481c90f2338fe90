"""DGF data on top of common.data: blurred / sharp pairs as the DGF tutorial and train.lua load them.

The DGF data (deshake_256, leftthomas ``data/small``) is one 512 x 256 JPEG per pair, sharp LEFT
(``cfg.side_by_side``); A/B folders and the tutorial's HDF5 file work too (``common.data.open_pairs``).
Each half is resized to ``cfg.load_size`` (data_utils.py build_hdf5 / train.lua loadSize 256), then
cropped to ``cfg.crop_size`` (train.lua fineSize), flipped when ``cfg.flip``; float RGB in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.data import open_pairs, pair_dataset
from common.errors import UserError
from dgf_deblur.config import Config

GRID_PAIRS = 3  # pairs shown in the per-epoch result grids
GRID_MIN_SIDE = 128  # the grids' crop: at least this (the generator runs as a graph there)


def _resize(cfg: Config):
    return None if cfg.load_size is None else (cfg.load_size, cfg.load_size)


def training_pairs(data_path: Path, cfg: Config):
    """The training split; a UserError when it holds fewer pairs than one batch."""
    source = open_pairs(data_path, split="train", side_by_side=cfg.side_by_side)
    if len(source) < cfg.batch_size:
        raise UserError(f"{data_path}: {len(source)} training pairs, fewer than --batch-size "
                        f"{cfg.batch_size}; add data or lower --batch-size")
    return source


def training_dataset(source, cfg: Config, start_step: int = 0):
    """Endless ``(blurred, sharp)`` batches in [-1, 1]; a pure function of (seed, step), so resumable.
    main.py walks the file list in order (``cfg.shuffle`` False); train.lua draws at random."""
    return pair_dataset(source, cfg.batch_size, crop=(cfg.crop_size, cfg.crop_size), resize=_resize(cfg),
                        flip=cfg.flip, seed=cfg.seed, start_step=start_step, shuffle=cfg.shuffle)


def grid_pairs(data_path: Path, source, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """A fixed ``(blurred, sharp)`` batch for the per-epoch grids: the first pairs of the test split
    when there is one, else of the training split."""
    try:
        grid_source = open_pairs(data_path, split="test", side_by_side=cfg.side_by_side)
    except UserError:
        grid_source = source
    crop = (max(cfg.crop_size, GRID_MIN_SIDE),) * 2
    grid = pair_dataset(grid_source, min(GRID_PAIRS, len(grid_source)), crop=crop, resize=_resize(cfg),
                        flip=False, seed=cfg.seed, repeat=False, shuffle=False)
    blurred, sharp = (np.asarray(t) for t in next(iter(grid)))
    return blurred, sharp


__all__ = ["training_pairs", "training_dataset", "grid_pairs"]
