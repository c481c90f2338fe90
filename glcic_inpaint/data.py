"""GLCIC data on top of common.data: folders of ordinary photos; the holes are made on the fly
(glcic_inpaint/masks.py), so there are no pairs.

Training images: short side resized to a random size in ``config.resize_short_side`` ([256, 384],
paper), then a random ``config.image_size`` crop (256), uint8 -> the preset's value range in gan.py.
The mean colour that fills the holes (``paper``) is the training set's (:func:`dataset_mean_color`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.data import image_dataset, open_images
from common.errors import UserError
from glcic_inpaint.config import Config


def training_images(data: Path):
    """The photos of ``data/train`` (or of ``data`` itself)."""
    return open_images(data, split="train")


def grid_images(data: Path, source):
    """Photos for the per-epoch grids: ``data/test`` when there is one, else the training photos."""
    if (Path(data) / "test").is_dir():
        try:
            return open_images(data, split="test")
        except UserError:
            pass
    return source


def training_dataset(source, config: Config, start_step: int = 0):
    """Endless uint8 batches of ``config.image_size`` crops; a pure function of (seed, step)."""
    return image_dataset(source, config.batch_size, crop=config.image_size,
                         resize_short_side=config.resize_short_side, flip=config.flip,
                         seed=config.seed, start_step=start_step)


def dataset_mean_color(source, config: Config, limit: int = 1000) -> tuple[float, float, float]:
    """Training-set mean colour in the preset's value range: the mean of per-image mean colours
    (otenim's ``mpv``) over at most ``limit`` images spread evenly over the source (deterministic).
    """
    count = len(source)
    indices = np.unique(np.linspace(0, count - 1, num=min(count, limit)).round().astype(int))
    means = [source.load(int(i)).reshape(-1, 3).mean(axis=0) / 255.0 for i in indices]
    mean = np.mean(means, axis=0)
    if config.value_range == "signed":
        mean = mean * 2.0 - 1.0
    return tuple(round(float(v), 6) for v in mean)


__all__ = ["training_images", "grid_images", "training_dataset", "dataset_mean_color"]
