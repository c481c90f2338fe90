"""The learning benchmark's data: more crops of more scikit-image photos, with rotations.

Nothing is downloaded. Training scenes and evaluation scenes never overlap:

- training photos: the sample sets' seven (``common.sample_data``: astronaut, rocket, hubble deep
  field, immunohistochemistry, stereo motorcycle, retina, camera) plus six more photos scikit-image
  ships (brick, grass, gravel, moon, clock, cell; grey ones as R = G = B), each also rotated by 90,
  180 and 270 degrees: 52 training photos;
- evaluation photos: the sample sets' test scenes (chelsea, coffee, coins).

Each photo is scaled as the sample sets scale it (short side 320-512 px). Layouts:

- ``hr``: ``train/*.png`` the whole photos, ``test/*.png`` the evaluation photos with short side
  256 (super-resolution);
- ``pairs``: ``{train,test}/{A,B}/*.png`` 256 x 256 crops, B sharp, A blurred with the sample
  sets' DeblurGAN random-trajectory motion blur (``crops`` per training photo, 2 per test photo);
- ``images``: ``train/*.png`` / ``test/*.png`` 256 x 256 crops (inpainting).

Training files are named ``NNN_<photo>_r<angle>[_k].png`` with ``NNN`` a fixed random order
(``ORDER_SEED``), so the sorted file list does not hold one scene's rotations and crops next to each
other. Recipes that walk the files in order (DGF ``keras``, as the tutorial's main.py) would
otherwise see one scene for four batches running, and with its Adam at 1e-3 the generator's colours
follow the latest scene (measured: held-out PSNR swinging 5-15 dB with the scene-grouped names).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import sample_data
from common.image_io import write_image

EXTRA_TRAIN_PHOTOS = ("brick", "grass", "gravel", "moon", "clock", "cell")
TRAIN_PHOTOS = sample_data._TRAIN_PHOTOS + EXTRA_TRAIN_PHOTOS
TEST_PHOTOS = sample_data._TEST_PHOTOS
ROTATIONS = (0, 1, 2, 3)  # quarter turns
KINDS = ("hr", "pairs", "images")
CROP = sample_data._CROP  # 256
TEST_SHORT_SIDE = 256
TEST_CROPS = 2  # per evaluation photo (pairs, images)
ORDER_SEED = 7  # the training files' name order (module docstring)


def training_photos(limit: int | None = None):
    """(name, uint8 photo) for every training photo and rotation; ``limit`` photos (before
    rotation) at most."""
    for name in TRAIN_PHOTOS[:limit]:
        photo = sample_data._photo(name)
        for turns in ROTATIONS:
            yield f"{name}_r{90 * turns}", np.ascontiguousarray(np.rot90(photo, turns))


def test_photos(limit: int | None = None):
    for name in TEST_PHOTOS[:limit]:
        yield name, sample_data._photo(name)


def _ordered_names(files: int):
    """stem -> ``NNN_stem``, NNN the next number of a fixed random order of ``files`` numbers
    (module docstring: the training files' sorted order does not group a scene's files)."""
    order = iter(np.random.default_rng(ORDER_SEED).permutation(files))
    width = len(str(files - 1))
    return lambda stem: f"{next(order):0{width}d}_{stem}"


def build(kind: str, root: Path, photos: int | None = None, test_images: int | None = None,
          crops: int = 2, seed: int = 2024) -> dict:
    """Write data set ``kind`` under ``root``; returns counts {"train": n, "test": m}."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "test": 0}
    splits = (("train", training_photos(photos), crops), ("test", test_photos(test_images), TEST_CROPS))
    for split, items, per_photo in splits:
        items = list(items)
        named = _ordered_names(len(items) * (1 if kind == "hr" else per_photo)) if split == "train" else str
        for name, photo in items:
            if kind == "hr":
                if split == "test":
                    photo = sample_data._resize_side(photo, TEST_SHORT_SIDE, longest=False)
                write_image(root / split / f"{named(name)}.png", photo)
                counts[split] += 1
            elif kind == "pairs":
                for k, (sharp, blurred) in enumerate(sample_data._sharp_and_blurred(photo, per_photo, rng)):
                    stem = named(f"{name}_{k}")
                    write_image(root / split / "A" / f"{stem}.png", blurred)
                    write_image(root / split / "B" / f"{stem}.png", sharp)
                    counts[split] += 1
            elif kind == "images":
                for k, (top, left) in enumerate(sample_data._windows(photo, per_photo, CROP, rng)):
                    write_image(root / split / f"{named(f'{name}_{k}')}.png",
                                photo[top: top + CROP, left: left + CROP])
                    counts[split] += 1
            else:
                raise ValueError(f"unknown data kind {kind!r}; use one of {', '.join(KINDS)}")
    return counts
