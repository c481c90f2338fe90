"""common.motion_blur (DeblurGAN's random-trajectory blur) and datasets/make_blurred.py."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.signal import fftconvolve

from common.errors import UserError
from common.motion_blur import (
    EXPL_CHOICES,
    blur_image,
    make_blurred_pairs,
    random_motion_blur,
    random_trajectory,
    trajectory_psfs,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "datasets" / "make_blurred.py"


def _sharp(h=48, w=64, seed=0):
    """A sharp test image: a checkerboard plus noise (lots of high frequencies)."""
    yy, xx = np.mgrid[:h, :w]
    board = (((yy // 4) + (xx // 4)) % 2).astype(float)
    rng = np.random.default_rng(seed)
    img = 0.2 + 0.6 * board[..., None] * np.array([1.0, 0.8, 0.6]) + 0.1 * rng.random((h, w, 3))
    return np.round(img * 255).astype(np.uint8)


def _high_freq_energy(img):
    x = img.astype(float)
    return float(np.mean(np.diff(x, axis=0) ** 2) + np.mean(np.diff(x, axis=1) ** 2))


@pytest.mark.parametrize("expl", [None, 0.01, 0.003, 0.0])
def test_trajectory_length_and_position(expl):
    x = random_trajectory(expl=expl, rng=np.random.default_rng(1))
    assert x.dtype == np.complex128 and x.shape == (2000,)
    assert np.abs(np.diff(x)).sum() == pytest.approx(60.0, rel=1e-9)
    # centred: inside the 64 x 64 canvas, at least 1 px from the top-left edge
    assert x.real.min() >= 1.0 - 1e-9 and x.imag.min() >= 1.0 - 1e-9
    assert x.real.max() <= 64 and x.imag.max() <= 64
    # the start point lies on the integer grid after centring (upstream's second centring step)
    assert x[0].real == pytest.approx(round(x[0].real)) and x[0].imag == pytest.approx(round(x[0].imag))


def test_trajectory_other_sizes():
    x = random_trajectory(canvas=32, iters=500, max_len=20, expl=0.005, rng=np.random.default_rng(2))
    assert x.shape == (500,)
    assert np.abs(np.diff(x)).sum() == pytest.approx(20.0)


def test_psf_sums_and_nonnegative():
    psfs = trajectory_psfs(random_trajectory(expl=0.005, rng=np.random.default_rng(3)))
    assert len(psfs) == 4
    sums = [p.sum() for p in psfs]
    # (iters - 1) / iters for the full exposure: upstream's weight rule skips sample 0
    np.testing.assert_allclose(sums, [0.01, 0.1, 0.5, 0.9995], atol=1e-9)
    for p in psfs:
        assert p.shape == (64, 64) and p.min() >= 0
    # cumulative exposures: each kernel contains the previous one
    for a, b in zip(psfs, psfs[1:]):
        assert np.all(b >= a - 1e-15)


def _psfs_reference_loop(traj, canvas, fraction):
    """A plain-loop transliteration of generate_PSF.py PSF.fit (upstream), for comparison."""
    iters = len(traj)
    acc = np.zeros((canvas, canvas))
    tri = lambda u: max(0.0, 1.0 - abs(u))  # noqa: E731
    out = []
    for j, f in enumerate(fraction):
        prev = 0 if j == 0 else fraction[j - 1]
        for t in range(iters):
            if f * iters >= t and prev * iters < t - 1:
                w = 1
            elif f * iters >= t - 1 and prev * iters < t - 1:
                w = f * iters - (t - 1)
            elif f * iters >= t and prev * iters < t:
                w = t - prev * iters
            elif f * iters >= t - 1 and prev * iters < t:
                w = (f - prev) * iters
            else:
                w = 0
            re, im = traj[t].real, traj[t].imag
            m2 = int(min(canvas - 1, max(1, math.floor(re))))
            m1 = int(min(canvas - 1, max(1, math.floor(im))))
            for r in (m1, m1 + 1):
                for c in (m2, m2 + 1):
                    acc[r, c] += w * tri(re - c) * tri(im - r)
        out.append(acc / iters)
    return out


def test_psfs_match_plain_loop_port():
    fraction = (1 / 100, 1 / 10, 1 / 2, 1)
    traj = random_trajectory(canvas=32, iters=300, max_len=20, expl=0.008, rng=np.random.default_rng(4))
    for got, want in zip(trajectory_psfs(traj, canvas=32, fraction=fraction),
                         _psfs_reference_loop(traj, 32, fraction)):
        np.testing.assert_allclose(got, want, atol=1e-15)


def test_psf_edge_clamping_as_upstream():
    # Points left of / above pixel 1 are clamped to the (1, 2) corner pair as upstream (m = max(1, .)).
    traj = np.linspace(0.2 + 0.4j, 6.5 + 3.3j, 50)
    for got, want in zip(trajectory_psfs(traj, canvas=16), _psfs_reference_loop(traj, 16, (1 / 100, 1 / 10, 1 / 2, 1))):
        np.testing.assert_allclose(got, want, atol=1e-15)
    assert trajectory_psfs(traj, canvas=16)[3][0].sum() == 0  # row 0 is never written
    # Past the bottom-right edge upstream raised IndexError; here the overflow is dropped.
    far = np.linspace(10 + 10j, 15.5 + 15.5j, 50)
    psf = trajectory_psfs(far, canvas=16)[3]
    assert psf.shape == (16, 16) and 0.5 < psf.sum() < 1.0


def test_seeding():
    img = _sharp()
    a = random_motion_blur(img, np.random.default_rng(7))
    b = random_motion_blur(img, np.random.default_rng(7))
    c = random_motion_blur(img, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    t1 = random_trajectory(rng=np.random.default_rng(5))
    np.testing.assert_array_equal(t1, random_trajectory(rng=np.random.default_rng(5)))
    assert not np.array_equal(t1, random_trajectory(rng=np.random.default_rng(6)))


@pytest.mark.parametrize("shape", [(48, 64), (70, 40), (32, 32)])
def test_blur_reduces_high_frequencies(shape):
    img = _sharp(*shape)
    out = random_motion_blur(img, np.random.default_rng(9), expl=0.005, part=3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert _high_freq_energy(out) < 0.5 * _high_freq_energy(img)
    assert out.min() == 0 and out.max() == 255  # the final global min-max


def test_blur_image_matches_upstream_steps():
    """Upstream: min-max, kernel zero-padded to the image size, fftconvolve 'same', min-max, x255."""
    img = _sharp(80, 80)
    psf = trajectory_psfs(random_trajectory(expl=0.005, rng=np.random.default_rng(10)))[2]
    x = (img.astype(float) - img.min()) / (img.max() - img.min())
    k = np.pad(psf, (80 - 64) // 2)
    y = np.stack([fftconvolve(x[..., c], k, "same") for c in range(3)], axis=-1)
    y = (y - y.min()) / (y.max() - y.min())
    want = np.rint(y * 255).astype(np.uint8)
    got = blur_image(img, psf)
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.mean(got != want) < 1e-3


def test_blur_grayscale_and_constant():
    img = _sharp()[..., 0]
    psf = trajectory_psfs(random_trajectory(expl=0.005, rng=np.random.default_rng(11)))[3]
    assert blur_image(img, psf).shape == img.shape
    flat = np.full((20, 20, 3), 77, np.uint8)
    np.testing.assert_array_equal(blur_image(flat, psf), flat)
    with pytest.raises(ValueError, match="uint8"):
        blur_image(img.astype(float), psf)


def test_expl_choices_are_upstream():
    assert EXPL_CHOICES == (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)


@pytest.fixture
def sharp_dir(tmp_path):
    d = tmp_path / "sharp"
    d.mkdir()
    Image.fromarray(_sharp(40, 48, 0)).save(d / "a.png")
    Image.fromarray(_sharp(36, 36, 1)).save(d / "b.jpg", quality=95)
    Image.fromarray(_sharp(44, 30, 2)).save(d / "c.png")
    return d


def _load_script():
    spec = importlib.util.spec_from_file_location("make_blurred_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_blurred_pairs_is_deterministic(sharp_dir, tmp_path):
    names = make_blurred_pairs(sharp_dir, tmp_path / "o1", seed=3, progress=False)
    make_blurred_pairs(sharp_dir, tmp_path / "o2", seed=3, progress=False)
    assert names == ["a.png", "b.png", "c.png"]
    for n in names:
        a1 = np.asarray(Image.open(tmp_path / "o1" / "A" / n))
        a2 = np.asarray(Image.open(tmp_path / "o2" / "A" / n))
        np.testing.assert_array_equal(a1, a2)


def test_make_blurred_refuses_input_folder(sharp_dir, tmp_path):
    script = _load_script()
    with pytest.raises(UserError, match="input folder"):
        script.main(["--input", str(sharp_dir), "--output", str(sharp_dir), "--quiet"])
    # --input DATA/B --output DATA would copy B onto itself
    b_dir = tmp_path / "data" / "B"
    b_dir.mkdir(parents=True)
    Image.fromarray(_sharp(20, 20)).save(b_dir / "x.png")
    with pytest.raises(UserError, match="input folder"):
        make_blurred_pairs(b_dir, tmp_path / "data", progress=False)
    with pytest.raises(UserError, match="not a folder"):
        script.main(["--input", str(sharp_dir / "missing"), "--output", str(tmp_path / "o"), "--quiet"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no images"):
        make_blurred_pairs(empty, tmp_path / "o", progress=False)
    assert sorted(p.name for p in sharp_dir.iterdir()) == ["a.png", "b.jpg", "c.png"]
    assert [p.name for p in b_dir.iterdir()] == ["x.png"]


def test_script_end_to_end(sharp_dir, tmp_path):
    out = tmp_path / "pairs"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--input", str(sharp_dir), "--output", str(out), "--seed", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    a_names = sorted(p.name for p in (out / "A").iterdir())
    b_names = sorted(p.name for p in (out / "B").iterdir())
    assert a_names == b_names == ["a.png", "b.png", "c.png"]
    for name in a_names:
        with Image.open(out / "A" / name) as a, Image.open(out / "B" / name) as b:
            assert a.size == b.size
            assert a.mode == b.mode == "RGB"
            sharp = np.asarray(b)
            blurred = np.asarray(a)
        assert _high_freq_energy(blurred) < _high_freq_energy(sharp)
    # B is the sharp input, losslessly copied as PNG
    np.testing.assert_array_equal(np.asarray(Image.open(out / "B" / "a.png")),
                                  np.asarray(Image.open(sharp_dir / "a.png")))
    # a user mistake ends in one error line and exit status 2
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--input", str(sharp_dir), "--output", str(sharp_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr
