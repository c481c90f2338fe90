"""common.metrics against scikit-image and hand NumPy formulas."""

import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from common import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.random((24, 30, 3))
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0.0, 1.0)
    return a, b


def test_psnr_matches_skimage_and_formula(pair):
    a, b = pair
    mse = np.mean((a - b) ** 2)
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-12)
    assert metrics.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0))


def test_psnr_uint8_equals_float_and_identical_is_inf(pair):
    a, b = pair
    a8, b8 = np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8)
    assert metrics.psnr(a8, b8) == pytest.approx(metrics.psnr(a8 / 255.0, b8 / 255.0))
    mse = np.mean((a8.astype(float) - b8) ** 2)
    assert metrics.psnr(a8, b8) == pytest.approx(10 * np.log10(255.0 ** 2 / mse))
    assert metrics.psnr(a, a) == float("inf")


def test_ssim_matches_skimage(pair):
    a, b = pair
    expected = structural_similarity(a, b, data_range=1.0, channel_axis=-1)
    assert metrics.ssim(a, b) == pytest.approx(expected)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a[..., 0], b[..., 0]) == pytest.approx(
        structural_similarity(a[..., 0], b[..., 0], data_range=1.0))


def test_rgb_to_y_hand_and_skimage(pair):
    a, _ = pair
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    hand = (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255
    np.testing.assert_allclose(metrics.rgb_to_y(a), hand, atol=1e-12)
    np.testing.assert_allclose(metrics.rgb_to_y(a), rgb2ycbcr(a)[..., 0] / 255, atol=1e-12)
    assert metrics.rgb_to_y(np.ones((2, 2, 3)))[0, 0] == pytest.approx(235 / 255)
    assert metrics.rgb_to_y(np.zeros((2, 2, 3)))[0, 0] == pytest.approx(16 / 255)
    # uint8 and grayscale (R = G = B)
    a8 = np.full((2, 2, 3), 255, np.uint8)
    assert metrics.rgb_to_y(a8)[0, 0] == pytest.approx(235 / 255)
    gray = a[..., 0]
    np.testing.assert_allclose(metrics.rgb_to_y(gray), metrics.rgb_to_y(np.stack([gray] * 3, -1)))


def test_y_metrics_match_skimage_protocol(pair):
    a, b = pair
    ya, yb = metrics.rgb_to_y(a)[3:-3, 3:-3], metrics.rgb_to_y(b)[3:-3, 3:-3]
    assert metrics.psnr_y(a, b, border=3) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=1.0))
    expected = structural_similarity(ya, yb, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert metrics.ssim_y(a, b, border=3) == pytest.approx(expected)


def test_border_crop_ignores_a_bad_border(pair):
    a, _ = pair
    b = a.copy()
    b[:4] = 1 - b[:4]  # ruin the top 4 rows only
    b[:, -4:] = 0.0
    assert np.isfinite(metrics.psnr_y(a, b))
    assert metrics.psnr_y(a, b, border=4) == float("inf")
    assert metrics.ssim_y(a, b, border=4) == pytest.approx(1.0)
    assert metrics.ssim_y(a, b) < 0.95


def test_mistakes_raise(pair):
    a, b = pair
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(a, b[:-1])
    with pytest.raises(ValueError, match="shape"):
        metrics.ssim_y(a, b[:, :-2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr(a * 2 - 1, b)  # a [-1, 1] image
    with pytest.raises(ValueError, match="border"):
        metrics.psnr_y(a, b, border=12)


def test_mean_metrics():
    out = metrics.mean_metrics([{"psnr": 20.0, "ssim": 0.5, "name": "a"}, {"psnr": 30.0, "ssim": 0.7}])
    assert out == pytest.approx({"psnr": 25.0, "ssim": 0.6})
    assert metrics.mean_metrics([]) == {}
