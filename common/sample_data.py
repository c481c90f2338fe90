"""Bundled sample data sets, made from the photos scikit-image ships (no download).

``sample_dir(kind)`` builds a set once and returns its folder. Sets live under
``<repo>/datasets/sample/<kind>/`` (gitignored), or under ``$GAN_RESTORATION_SAMPLE_DIR/<kind>/``.
A set is built in a temporary folder and renamed into place, so an interrupted build never leaves
a half-made set behind; a set made by an older recipe (``SAMPLE_VERSION``) is rebuilt.

Kinds (train photos and test photos are different scenes):

- ``blurred_pairs``: ``train/{A,B}``, ``test/{A,B}``; 256x256 PNG crops, B sharp, A blurred with
  DeblurGAN's random-trajectory motion blur (:mod:`common.motion_blur` trajectories and kernels,
  drawn as ``random_motion_blur`` draws them; the kernel normalised so brightness is kept).
- ``side_by_side``: ``train/``, ``test/`` of 512x256 JPEG images, SHARP LEFT, blurred right, like
  the DGF tutorial's ``data/small`` (read with ``open_pairs(..., side_by_side="target_left")``).
- ``hr_images``: ``train/``, ``test/`` PNG photos, short side 256-320 px (long side at most 512),
  for super-resolution.
- ``lr_images``: a few small PNG photos (64-128 px, odd sizes included) to upscale.
- ``inpaint``: ``train/``, ``test/`` 256x256 JPEG photos; ``test/masks/<name>.png`` masks
  (white = hole) for the test photos.

The photos are scaled so their short side is at most 512 px before cropping, so that a crop shows
a recognisable part of the scene.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError
from common.image_io import write_image

SAMPLE_KINDS = ("blurred_pairs", "side_by_side", "hr_images", "lr_images", "inpaint")
SAMPLE_VERSION = "3"
ENV_VAR = "GAN_RESTORATION_SAMPLE_DIR"
_VERSION_FILE = ".sample_version"

# Scenes: train and test never share a photo.
_TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "motorcycle", "retina", "camera")
_TEST_PHOTOS = ("chelsea", "coffee", "coins")

_CROP = 256
# Blur a larger window and keep its centre, so the 256 crop has no border effects from the
# 64-px blur canvas (DeblurGAN's Trajectory default canvas=64).
_BLUR_MARGIN = 32


def sample_root() -> Path:
    """Folder holding the sample sets (``$GAN_RESTORATION_SAMPLE_DIR`` or ``datasets/sample``)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "datasets" / "sample"


def _photo(name: str) -> np.ndarray:
    """One scikit-image photo as RGB uint8, short side scaled down to at most 512 px."""
    import skimage.data

    if name == "motorcycle":
        image = skimage.data.stereo_motorcycle()[0]
    elif name == "retina":
        image = skimage.data.retina()[205:1205, 205:1205]  # the fundus without the black corners
    else:
        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    short = min(image.shape[:2])
    low = 2 * _BLUR_MARGIN + _CROP
    if short > 512 or short < low:
        scale = (512 if short > 512 else low) / short
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    return image


def _resize_side(image: np.ndarray, side: int, longest: bool = True) -> np.ndarray:
    """Resize so that the long side (or the short one) is ``side`` pixels (Lanczos)."""
    scale = side / (max(image.shape[:2]) if longest else min(image.shape[:2]))
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def _windows(image: np.ndarray, count: int, size: int, rng: np.random.Generator):
    """``count`` random ``size`` x ``size`` windows (top, left) inside ``image``."""
    height, width = image.shape[:2]
    for _ in range(count):
        yield int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def _motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """DeblurGAN's random-trajectory blur (common.motion_blur), brightness-preserving.

    The trajectory, exposure fraction and kernel are drawn as ``random_motion_blur`` draws them
    (upstream blur_image.py ``__main__``), but the kernel is normalised to sum 1 and centred on
    its centre of mass, and the result is not min-max stretched: upstream's stretch brightens a
    crop by up to ~10% when blurring lowers its highlights (which would teach the sample models
    to darken images), and its off-centre kernels shift the blurred image against the sharp one.
    """
    from common import motion_blur

    # blur_image.py __main__: expl drawn from these values, the 10/50/100% exposure kernels.
    expl_choices = getattr(motion_blur, "EXPL_CHOICES", (0.01, 0.009, 0.008, 0.007, 0.005, 0.003))
    part_choices = getattr(motion_blur, "PART_CHOICES", (1, 2, 3))
    expl = float(rng.choice(np.asarray(expl_choices, dtype=np.float64)))
    trajectory = motion_blur.random_trajectory(canvas=64, max_len=60, expl=expl, rng=rng)
    psf = motion_blur.trajectory_psfs(trajectory, canvas=64)[int(rng.choice(part_choices))]
    psf = np.asarray(psf, np.float64) / np.sum(psf)
    # 'same'-size linear convolution by FFT (numpy's: importing scipy.signal costs seconds).
    height, width = image.shape[:2]
    k_h, k_w = psf.shape
    size = (-(-(height + k_h - 1) // 64) * 64, -(-(width + k_w - 1) // 64) * 64)
    spectrum = np.fft.rfft2(image.astype(np.float64), s=size, axes=(0, 1))
    spectrum *= np.fft.rfft2(psf, s=size)[:, :, None]
    full = np.fft.irfft2(spectrum, s=size, axes=(0, 1))
    # Centre the kernel on its centre of mass, not on the canvas centre: upstream trajectories
    # wander off-centre, which would shift the blurred image by up to ~20 px against the sharp one.
    top = int(round(float(np.sum(psf.sum(axis=1) * np.arange(k_h)))))
    left = int(round(float(np.sum(psf.sum(axis=0) * np.arange(k_w)))))
    blurred = full[top: top + height, left: left + width]
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def _sharp_and_blurred(image: np.ndarray, count: int, rng: np.random.Generator):
    """``count`` (sharp, blurred) 256x256 crops of ``image``.

    The blur sees real surroundings (a 32 px margin of the photo) plus a mirrored frame, so the
    crop has no dark zero-boundary edge.
    """
    window = _CROP + 2 * _BLUR_MARGIN
    m = _BLUR_MARGIN
    for top, left in _windows(image, count, window, rng):
        region = image[top: top + window, left: left + window]
        padded = np.pad(region, ((m, m), (m, m), (0, 0)), mode="reflect")
        blurred = _motion_blur(padded, rng)
        yield (np.ascontiguousarray(region[m: m + _CROP, m: m + _CROP]),
               np.ascontiguousarray(blurred[2 * m: 2 * m + _CROP, 2 * m: 2 * m + _CROP]))


def _build_blurred_pairs(root: Path, rng: np.random.Generator) -> None:
    for split, photos, per_photo in (("train", _TRAIN_PHOTOS[:5], 2), ("test", _TEST_PHOTOS[:2], 2)):
        for name in photos:
            pairs = _sharp_and_blurred(_photo(name), per_photo, rng)
            for k, (sharp, blurred) in enumerate(pairs):
                write_image(root / split / "A" / f"{name}_{k}.png", blurred)
                write_image(root / split / "B" / f"{name}_{k}.png", sharp)


def _build_side_by_side(root: Path, rng: np.random.Generator) -> None:
    # DGF tutorial data: 512x256 JPEGs, sharp left, blurred right.
    for split, photos, per_photo in (("train", _TRAIN_PHOTOS, 1), ("test", _TEST_PHOTOS, 1)):
        for name in photos:
            for k, (sharp, blurred) in enumerate(_sharp_and_blurred(_photo(name), per_photo, rng)):
                write_image(root / split / f"{name}_{k}.jpg",
                            np.concatenate([sharp, blurred], axis=1), quality=95)


def _build_hr_images(root: Path, rng: np.random.Generator) -> None:
    for split, photos in (("train", _TRAIN_PHOTOS[:5]), ("test", _TEST_PHOTOS)):
        for name in photos:
            short_side = int(rng.integers(256, 321))
            write_image(root / split / f"{name}.png",
                        _resize_side(_photo(name), short_side, longest=False))


def _build_lr_images(root: Path, rng: np.random.Generator) -> None:
    del rng
    # Small photos, some with odd sizes, for the upscaling demos.
    for name, long_side in (("chelsea", 128), ("coffee", 113), ("rocket", 97), ("astronaut", 64)):
        write_image(root / f"{name}.png", _resize_side(_photo(name), long_side))


def _random_mask(rng: np.random.Generator, size: int = _CROP) -> np.ndarray:
    """1 or 2 rectangular holes, sides 48-96 px (white = hole)."""
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        h, w = (int(v) for v in rng.integers(48, 97, size=2))
        top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        mask[top: top + h, left: left + w] = 255
    return mask


def _build_inpaint(root: Path, rng: np.random.Generator) -> None:
    for split, photos, per_photo in (("train", _TRAIN_PHOTOS, 2), ("test", _TEST_PHOTOS, 1)):
        for name in photos:
            image = _photo(name)
            for k, (top, left) in enumerate(_windows(image, per_photo, _CROP, rng)):
                crop = image[top: top + _CROP, left: left + _CROP]
                write_image(root / split / f"{name}_{k}.jpg", crop, quality=95)
                if split == "test":
                    write_image(root / split / "masks" / f"{name}_{k}.png", _random_mask(rng))


_BUILDERS = {
    "blurred_pairs": (_build_blurred_pairs, 1001),
    "side_by_side": (_build_side_by_side, 1002),
    "hr_images": (_build_hr_images, 1003),
    "lr_images": (_build_lr_images, 1004),
    "inpaint": (_build_inpaint, 1005),
}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_current(folder: Path) -> bool:
    marker = folder / _VERSION_FILE
    return marker.is_file() and marker.read_text().strip() == SAMPLE_VERSION


def sample_dir(kind: str, force: bool = False) -> Path:
    """The folder of the bundled sample set ``kind`` (built on first use, in a few seconds)."""
    if kind not in _BUILDERS:
        raise UserError(f"unknown sample set {kind!r}; use one of {', '.join(SAMPLE_KINDS)}")
    root = sample_root()
    final = root / kind
    if not force and _is_current(final):
        return final
    builder, seed = _BUILDERS[kind]
    try:
        root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{kind}.building-", dir=root))
    except OSError as error:
        raise UserError(f"{root}: cannot create the sample data folder ({error}); set "
                        f"{ENV_VAR} to a writable folder") from error
    try:
        builder(temp, np.random.default_rng(seed))
        (temp / _VERSION_FILE).write_text(SAMPLE_VERSION + "\n")
        temp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700)
        if final.exists():
            if not force and _is_current(final):  # another process finished first
                return final
            stale = Path(tempfile.mkdtemp(prefix=f".{kind}.old-", dir=root))
            os.replace(final, stale / kind)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(temp, final)
        except OSError:
            if not _is_current(final):  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final


def build_all(force: bool = False) -> dict[str, Path]:
    """Build every sample set; returns {kind: folder}."""
    return {kind: sample_dir(kind, force=force) for kind in SAMPLE_KINDS}
