"""common.grids writes readable PNG grids."""

import numpy as np
import pytest
from PIL import Image

from common.grids import metric_caption, save_grid


def _images(rng):
    return [
        rng.integers(0, 256, (40, 56, 3), dtype=np.uint8),
        rng.random((48, 32, 3)),  # float in [0, 1], another size
        rng.random((40, 40)),  # grayscale
    ]


def test_metric_caption():
    assert metric_caption(26.4123, 0.81234) == "PSNR 26.41 dB / SSIM 0.812"
    assert metric_caption(30) == "PSNR 30.00 dB"


def test_grid_size_grows_with_rows(tmp_path):
    rng = np.random.default_rng(0)
    row = _images(rng)
    caps = [metric_caption(20.0, 0.5), None, "sharp"]
    one = save_grid(tmp_path / "one.png", [row], ["blurred", "restored", "sharp"], [caps])
    two = save_grid(tmp_path / "sub" / "two.png", [row, _images(rng)], ["blurred", "restored", "sharp"],
                    [caps, caps], title="epoch 1")
    assert two == tmp_path / "sub" / "two.png"
    with Image.open(one) as im1, Image.open(two) as im2:
        im1.load()
        im2.load()
        assert im1.format == "PNG" and im2.format == "PNG"
        assert im2.size[1] > im1.size[1] + 40  # a second row of 48-px images (enlarged) and captions
        assert im2.size[0] >= im1.size[0]
        pixels = np.asarray(im2.convert("RGB"))
    assert pixels.std() > 10  # not a blank figure


def test_large_images_are_capped(tmp_path):
    big = np.zeros((2000, 3000, 3), np.uint8)
    path = save_grid(tmp_path / "big.png", [[big, big]], ["a", "b"], max_size=800)
    with Image.open(path) as im:
        assert im.size[0] < 1000


def test_bad_inputs(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="row 1"):
        save_grid(tmp_path / "x.png", [[img, img], [img]], ["a", "b"])
    with pytest.raises(ValueError, match="captions"):
        save_grid(tmp_path / "x.png", [[img, img]], ["a", "b"], captions=[["c"]])
    with pytest.raises(ValueError, match="dtype"):
        save_grid(tmp_path / "x.png", [[img.astype(np.int32), img]], ["a", "b"])
