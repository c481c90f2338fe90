"""DeblurGAN's synthetic camera-shake blur (random trajectories, after Boracchi & Foi 2012).

A fresh NumPy 2 port of ``motion_blur/`` in KupynOrest/DeblurGAN:

* :func:`random_trajectory` - ``generate_trajectory.py`` ``Trajectory.fit``: a particle with an
  initial velocity, Gaussian and centripetal (inertial) perturbations and rare impulsive
  reversals; the speed is renormalised at every step so the path is ``max_len`` pixels long.
* :func:`trajectory_psfs` - ``generate_PSF.py`` ``PSF.fit``: the trajectory splatted bilinearly
  on a ``canvas`` x ``canvas`` grid, one kernel per exposure fraction (cumulative: 1%, 10%, 50%,
  100% of the trajectory, summing to about those fractions).
* :func:`blur_image` - ``blur_image.py`` ``BlurImage.blur_image``: global min-max, per-channel
  'same' FFT convolution (zero boundary), global min-max again, to uint8.
* :func:`random_motion_blur` - the ``__main__`` batch of ``blur_image.py``: one trajectory per
  image with ``expl`` drawn from {0.01, 0.009, 0.008, 0.007, 0.005, 0.003} and one of the 10%,
  50% or 100% exposure kernels.
* :func:`make_blurred_pairs` - the folder tool behind ``datasets/make_blurred.py``.

Differences from upstream (none changes the distribution of kernels):

* randomness comes from a ``np.random.Generator`` (upstream used the global ``np.random``), so
  results are reproducible from a seed; the random numbers are drawn in a different order;
* images may be non-square and smaller than the kernel canvas (upstream asserted square images
  at least as large as the kernel); the result is the same 'same'-mode convolution;
* colour order is kept RGB (upstream converted to BGR and wrote through ``cv2.imwrite``, so its
  files had R and B swapped relative to its own RGB input; with RGB throughout nothing swaps);
* a constant image is returned unchanged (upstream's min-max mapped it to black);
* a trajectory that touches the right/bottom edge of the canvas loses the part beyond it
  (upstream raised ``IndexError`` there); with the defaults this does not happen.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "EXPL_CHOICES",
    "PART_CHOICES",
    "DEFAULT_FRACTION",
    "random_trajectory",
    "trajectory_psfs",
    "blur_image",
    "random_motion_blur",
    "make_blurred_pairs",
]

# blur_image.py __main__: the "exploration" (anxiety) values drawn per image.
EXPL_CHOICES = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)
# blur_image.py __main__: part=np.random.choice([1, 2, 3]), i.e. the 10%, 50% or 100% kernel
# (the 1% kernel, index 0, is never used).
PART_CHOICES = (1, 2, 3)
# generate_PSF.py: fraction=[1/100, 1/10, 1/2, 1].
DEFAULT_FRACTION = (1 / 100, 1 / 10, 1 / 2, 1)


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)  # None -> fresh entropy; an int or SeedSequence -> seeded


def random_trajectory(canvas: int = 64, iters: int = 2000, max_len: float = 60, expl: float | None = None,
                      rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A random camera-shake trajectory: ``iters`` complex positions (x + i*y) in pixels.

    Port of ``Trajectory(canvas, iters, max_len, expl).fit()`` (generate_trajectory.py).
    ``expl`` (0.1 * U(0, 1) when ``None``, as upstream) scales the random perturbations and the
    probability of impulsive shakes; the docstring upstream recommends 0.005. The polyline has
    length ``max_len`` and is centred on the ``canvas`` x ``canvas`` grid.
    """
    if iters < 2:
        raise ValueError(f"iters must be at least 2, got {iters}")
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    rng = _rng(rng)
    if expl is None:
        expl = 0.1 * rng.uniform()  # generate_trajectory.py __init__
    expl = float(expl)
    if expl < 0:
        raise ValueError(f"expl must be >= 0, got {expl}")

    # Per-trajectory parameters, generate_trajectory.py fit():
    centripetal = 0.7 * rng.uniform()  # pull back towards the origin (inertia)
    prob_big_shake = 0.2 * rng.uniform()  # probability factor of an impulsive reversal
    gaussian_shake = 10.0 * rng.uniform()  # strength of the random direction change
    init_angle = 360.0 * rng.uniform()  # degrees

    step = max_len / (iters - 1)  # every step has this length, so the path is max_len long
    v0 = complex(math.cos(math.radians(init_angle)), math.sin(math.radians(init_angle)))
    v = v0 * step
    if expl > 0:
        v = v0 * expl

    # Draw the per-step random numbers up front (upstream drew them inside the loop).
    n = iters - 1
    shake = (rng.uniform(size=n) < prob_big_shake * expl).tolist()
    # Impulsive perturbation: reverse the velocity, give or take half a radian.
    turn = np.exp(1j * (np.pi + rng.uniform(size=n) - 0.5)).tolist()
    normal = rng.standard_normal((n, 2))
    gauss = (gaussian_shake * (normal[:, 0] + 1j * normal[:, 1])).tolist()

    # The recursion is inherently sequential; Python complex scalars are the fastest here.
    x = [0j] * iters
    pos = 0j
    for t in range(n):
        next_direction = 2.0 * v * turn[t] if shake[t] else 0.0
        dv = next_direction + expl * (gauss[t] - centripetal * pos) * step
        v = v + dv
        v = v / abs(v) * step
        pos = pos + v
        x[t + 1] = pos
    x = np.asarray(x, dtype=np.complex128)

    # Centre the motion (generate_trajectory.py): shift to the positive quadrant, make the
    # start point's fractional part zero, add 1 + 1i, then centre on the canvas.
    x -= complex(x.real.min(), x.imag.min())
    x -= complex(x[0].real % 1.0, x[0].imag % 1.0)
    x += 1 + 1j
    x += complex(math.ceil((canvas - x.real.max()) / 2), math.ceil((canvas - x.imag.max()) / 2))
    return x


def _triangle(u: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(u))


def trajectory_psfs(trajectory, canvas: int = 64, iters: int | None = None,
                    fraction: Sequence[float] = DEFAULT_FRACTION) -> list[np.ndarray]:
    """Blur kernels (float64, ``canvas`` x ``canvas``) for cumulative exposure fractions.

    Port of ``PSF(canvas, trajectory, fraction).fit()`` (generate_PSF.py). One accumulator is
    kept over all fractions (never reset), so kernel ``j`` covers the first ``fraction[j]`` of
    the trajectory and sums to ``fraction[j]`` (0.01, 0.1, 0.5, 1 by default; the weight rule
    gives the last kernel ``(iters - 1) / iters`` = 0.9995, as upstream). Rows are the
    imaginary part (y), columns the real part (x). ``iters`` defaults to ``len(trajectory)``.
    """
    traj = np.asarray(trajectory, dtype=np.complex128).ravel()
    if traj.size == 0:
        raise ValueError("trajectory is empty")
    canvas = int(canvas)
    if canvas < 2:
        raise ValueError(f"canvas must be at least 2, got {canvas}")
    iters = traj.size if iters is None else int(iters)
    fraction = [float(f) for f in fraction]
    if any(f <= 0 or f > 1 for f in fraction) or any(b < a for a, b in zip(fraction, fraction[1:])):
        raise ValueError(f"fraction must be increasing values in (0, 1], got {fraction}")

    t = np.arange(traj.size, dtype=np.float64)  # 0-based index, as upstream (ported from MATLAB)
    re, im = traj.real, traj.imag
    # Bilinear splat corners, clamped as upstream: m = min(canvas - 1, max(1, floor(.))), M = m + 1.
    m2 = np.clip(np.floor(re), 1, canvas - 1).astype(np.intp)
    m1 = np.clip(np.floor(im), 1, canvas - 1).astype(np.intp)
    corners = []
    for rows in (m1, m1 + 1):
        for cols in (m2, m2 + 1):
            corners.append((rows, cols, _triangle(re - cols) * _triangle(im - rows)))

    # One spare row/column: M = canvas would be out of range (upstream IndexError); cropped below.
    acc = np.zeros((canvas + 1, canvas + 1), dtype=np.float64)
    psfs = []
    prev = 0.0
    for f in fraction:
        big_p, big_f = prev * iters, f * iters
        # generate_PSF.py: the four-case weight ("t_proportion") of sample t for this fraction.
        weight = np.select(
            [
                (big_f >= t) & (big_p < t - 1),
                (big_f >= t - 1) & (big_p < t - 1),
                (big_f >= t) & (big_p < t),
                (big_f >= t - 1) & (big_p < t),
            ],
            [np.ones_like(t), big_f - (t - 1), t - big_p, np.full_like(t, (f - prev) * iters)],
            default=0.0,
        )
        for rows, cols, tri in corners:
            np.add.at(acc, (rows, cols), weight * tri)
        psfs.append(acc[:canvas, :canvas] / iters)
        prev = f
    return psfs


def blur_image(image_uint8: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Blur an image with one kernel, as ``BlurImage.blur_image`` (blur_image.py).

    ``image_uint8``: uint8 (H, W, C) or (H, W), any size (RGB order is kept). Steps: the image
    to float and min-max normalised to [0, 1] over all channels together; each channel
    convolved with the kernel (``scipy.signal.fftconvolve``, mode 'same', zero boundary); the
    result min-max normalised again over all channels (which cancels the kernel's sum and
    stretches the contrast the dark zero boundary leaves); times 255, rounded, to uint8.

    Upstream first zero-padded the kernel by ``(N - k) // 2`` on every side. In 'same' mode a
    kernel padded by the same amount on both sides gives exactly the same output (the centred
    crop moves by the padding), so the padding is skipped: the FFTs are then about image + 64
    instead of twice the image size (5x faster on 512x512; results agree to 1e-15).
    """
    from scipy.signal import fftconvolve  # imported here: scipy.signal takes seconds to import

    img = np.asarray(image_uint8)
    if img.dtype != np.uint8:
        raise ValueError(f"blur_image expects a uint8 image, got dtype {img.dtype}")
    if img.ndim not in (2, 3):
        raise ValueError(f"blur_image expects an image (H, W) or (H, W, C), got shape {img.shape}")
    kernel = np.asarray(psf, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"psf must be a 2-D kernel, got shape {kernel.shape}")

    x = img.astype(np.float64)
    lo, hi = x.min(), x.max()
    if hi <= lo:
        return img.copy()  # constant image: nothing to blur (upstream's min-max made it black)
    x = (x - lo) / (hi - lo)

    if x.ndim == 3:
        y = fftconvolve(x, kernel[:, :, None], mode="same", axes=(0, 1))
    else:
        y = fftconvolve(x, kernel, mode="same")

    lo, hi = y.min(), y.max()
    y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
    # cv2.imwrite(result * 255) on float32 converts with rounding and saturation.
    return np.clip(np.rint(np.abs(y) * 255.0), 0, 255).astype(np.uint8)


def random_motion_blur(image_uint8: np.ndarray, rng: np.random.Generator, canvas: int = 64, max_len: float = 60,
                       expl: float | Sequence[float] | None = None, part: int | None = None) -> np.ndarray:
    """Blur an image with one random trajectory, as the ``__main__`` batch of blur_image.py.

    ``expl``: a value, or values to draw from (default :data:`EXPL_CHOICES`).
    ``part``: index of the exposure kernel, 0..3 for 1/10/50/100% (default: drawn from
    :data:`PART_CHOICES`, i.e. 10%, 50% or 100%). The trajectory has the defaults of
    upstream's batch: ``canvas=64, iters=2000, max_len=60``.
    """
    rng = _rng(rng)
    if expl is None:
        expl = EXPL_CHOICES
    if not np.isscalar(expl):
        expl = float(rng.choice(np.asarray(expl, dtype=np.float64)))
    trajectory = random_trajectory(canvas=canvas, max_len=max_len, expl=expl, rng=rng)
    psfs = trajectory_psfs(trajectory, canvas=canvas)
    if part is None:
        part = int(rng.choice(PART_CHOICES))
    if not 0 <= int(part) < len(psfs):
        raise ValueError(f"part must be between 0 and {len(psfs) - 1}, got {part}")
    return blur_image(image_uint8, psfs[int(part)])


def _image_rng(seed: int, name: str) -> np.random.Generator:
    # Keyed by (seed, file name): an image gets the same blur whatever else is in the folder.
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))]))


def make_blurred_pairs(input_dir, output_dir, seed: int = 0, expl: float | Sequence[float] | None = None,
                       part: int | None = None, canvas: int = 64, max_len: float = 60,
                       progress: bool = True) -> list[str]:
    """Blur every image of ``input_dir`` into ``output_dir/A`` and copy it to ``output_dir/B``.

    Both are written as PNG with the input's file stem, so ``common.data.open_pairs(output_dir)``
    pairs them. Each image's blur is drawn from a generator seeded by ``(seed, file name)``.
    Existing files of the same name in A/B are replaced; the input folder is never written to.
    Returns the output file names. Raises :class:`common.errors.UserError` for user mistakes.
    """
    from tqdm.auto import tqdm

    from common.errors import UserError
    from common.image_io import list_images, read_image, write_image

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise UserError(f"{input_dir}: not a folder; pass --input a folder of sharp images")
    src = input_dir.resolve()
    out = output_dir.resolve()
    if src in (out, out / "A", out / "B"):
        raise UserError(
            f"{output_dir}: would write into the input folder {input_dir}; choose another --output"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{output_dir}: exists and is not a folder; choose another --output")
    files = list_images(input_dir)
    if not files:
        raise UserError(f"{input_dir}: no images found; pass a folder of PNG/JPEG images")
    by_name: dict[str, Path] = {}
    for f in files:
        name = f.stem + ".png"
        if name in by_name:
            raise UserError(
                f"{f}: has the same name as {by_name[name].name} once written as PNG; rename one of them"
            )
        by_name[name] = f

    dir_a, dir_b = output_dir / "A", output_dir / "B"
    dir_a.mkdir(parents=True, exist_ok=True)
    dir_b.mkdir(parents=True, exist_ok=True)
    for name, f in tqdm(by_name.items(), desc="blurring", unit="img", disable=not progress):
        sharp = read_image(f)
        blurred = random_motion_blur(sharp, _image_rng(seed, f.name), canvas=canvas, max_len=max_len,
                                     expl=expl, part=part)
        write_image(dir_a / name, blurred)
        write_image(dir_b / name, sharp)
    return list(by_name)
