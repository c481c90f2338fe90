"""common.image_io: every format and mode comes back as RGB uint8; range helpers."""

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.image_io import (
    IMAGE_EXTENSIONS, list_images, read_image, signed_to_uint8, signed_to_unit, uint8_to_signed,
    uint8_to_unit, unit_to_signed, unit_to_uint8, write_image,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_lossless_round_trip(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    if suffix == ".webp":
        Image.fromarray(RGB).save(path, lossless=True)
    else:
        write_image(path, RGB)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
    np.testing.assert_array_equal(out, RGB)


def test_jpeg_reads_close(tmp_path):
    smooth = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], 16, 0)
    smooth = np.repeat(smooth, 3, axis=2)
    write_image(tmp_path / "x.jpg", smooth, quality=100)
    out = read_image(tmp_path / "x.jpg")
    assert out.shape == (16, 32, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth).max() <= 4


def test_grayscale_becomes_rgb(tmp_path):
    gray = RNG.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (9, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_bilevel_becomes_rgb(tmp_path):
    Image.fromarray(np.eye(6, dtype=bool)).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert out.shape == (6, 6, 3) and set(np.unique(out)) == {0, 255}


def test_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([RGB, RNG.integers(0, 256, (12, 20, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB)


def test_gray_alpha(tmp_path):
    la = np.stack([np.full((4, 5), 77, np.uint8), np.zeros((4, 5), np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out.shape == (4, 5, 3) and (out == 77).all()


def test_palette(tmp_path):
    image = Image.fromarray(RGB).quantize(colors=8)
    assert image.mode == "P"
    image.save(tmp_path / "p.png")
    expected = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_cmyk_jpeg(tmp_path):
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (12, 20, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path, suffix):
    values = np.array([[0, 257, 1000], [32768, 65280, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / f"g16{suffix}")
    assert Image.open(tmp_path / f"g16{suffix}").mode.startswith("I")
    out = read_image(tmp_path / f"g16{suffix}")
    expected = np.round(values / 257.0).astype(np.uint8)  # 0, 1, 4, 128, 254, 255
    np.testing.assert_array_equal(out[..., 0], expected)
    assert out.shape == (2, 3, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_rgb_is_scaled(tmp_path, suffix):
    import cv2

    rgb16 = RNG.integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    rgb16[0, 0] = (65535, 32768, 0)
    assert cv2.imwrite(str(tmp_path / f"c16{suffix}"), rgb16[..., ::-1])
    out = read_image(tmp_path / f"c16{suffix}")
    np.testing.assert_array_equal(out, np.round(rgb16 / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(out[0, 0], (255, 128, 0))


def test_exif_orientation_is_applied(tmp_path):
    # A 30x10 (w x h) image stored with orientation 6 ("rotate 90 CW to display") shows as 10x30.
    stored = np.zeros((10, 30, 3), np.uint8)
    stored[:, :5] = (255, 0, 0)  # red stripe on the stored image's left edge
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (30, 10, 3)
    # Rotated clockwise: the stored left edge becomes the top.
    assert out[:4, :, 0].mean() > 200 and out[:4, :, 1].mean() < 60
    assert out[-4:, :, 0].mean() < 60


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match="broken.png: cannot read image"):
        read_image(bad)


def test_truncated_file_names_the_file(tmp_path):
    write_image(tmp_path / "t.png", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="t.png"):
        read_image(tmp_path / "t.png")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_list_images(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.txt", ".hidden.png", "d.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.webp"]
    assert ".png" in IMAGE_EXTENSIONS and ".tiff" in IMAGE_EXTENSIONS
    with pytest.raises(UserError, match="not a folder"):
        list_images(tmp_path / "missing")


def test_write_float_and_parents(tmp_path):
    unit = np.array([[[0.0, 0.5, 1.0], [1.2, -0.3, 0.002]]], np.float32)
    path = write_image(tmp_path / "deep" / "er" / "f.png", unit)
    np.testing.assert_array_equal(read_image(path), [[[0, 128, 255], [255, 0, 1]]])


def test_write_gray_and_mask(tmp_path):
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    write_image(tmp_path / "m.png", mask)
    assert Image.open(tmp_path / "m.png").mode == "L"
    assert read_image(tmp_path / "m.png")[1, 1, 0] == 255


def test_write_unknown_suffix(tmp_path):
    with pytest.raises(UserError, match="unknown image format"):
        write_image(tmp_path / "x.xyz", RGB)


def test_range_helpers_numpy():
    x = np.array([0, 1, 127, 128, 255], np.uint8)
    unit = uint8_to_unit(x)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, x / 255.0, atol=1e-7)
    np.testing.assert_array_equal(unit_to_uint8(unit), x)
    signed = uint8_to_signed(x)
    np.testing.assert_allclose(signed, x / 127.5 - 1, atol=1e-6)
    assert signed.min() == -1.0 and signed.max() == 1.0
    np.testing.assert_array_equal(signed_to_uint8(signed), x)
    np.testing.assert_allclose(unit_to_signed(unit), signed, atol=1e-6)
    np.testing.assert_allclose(signed_to_unit(signed), unit, atol=1e-6)
    # round and clip
    np.testing.assert_array_equal(unit_to_uint8(np.array([-0.5, 0.499 / 255, 0.501 / 255, 2.0])),
                                  [0, 0, 1, 255])
    np.testing.assert_array_equal(signed_to_uint8(np.array([-3.0, 3.0])), [0, 255])


def test_range_helpers_keep_tensors():
    import tensorflow as tf

    x = tf.constant([0, 255], tf.uint8)
    signed = uint8_to_signed(x)
    assert tf.is_tensor(signed) and signed.dtype == tf.float32
    back = signed_to_uint8(signed)
    assert tf.is_tensor(back) and back.dtype == tf.uint8
    assert back.numpy().tolist() == [0, 255]
    assert unit_to_uint8(tf.constant([0.5])).numpy().tolist() == [128]
