import keras
import numpy as np
import pytest

from common.errors import UserError
from common.image_io import read_image, write_image
from common.inference import collect_inputs, pad_to_multiple, process_files, restore_array
from common.layers import SubpixelConv2D

rng = np.random.default_rng(3)


def _conv_net(scale=1):
    """A fully convolutional net with a small receptive field, downsampling by 4 inside."""
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.AveragePooling2D(4)(x)
    x = keras.layers.UpSampling2D(4 * scale)(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="c2")(x)
    return keras.Model(inputs, x)


def test_pad_to_multiple_reflects():
    image = rng.uniform(size=(5, 7, 3)).astype("float32")
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], image)
    np.testing.assert_array_equal(padded[5, :7], image[3])


@pytest.mark.parametrize("scale", [1, 2])
def test_any_size_output_matches_input_size(scale):
    model = _conv_net(scale)
    image = rng.uniform(-1, 1, (13, 22, 3)).astype("float32")
    out = restore_array(model, image, multiple=4, scale=scale)
    assert out.shape == (13 * scale, 22 * scale, 3)


def test_tiles_blend_to_the_whole_image_result():
    # A per-pixel network gives the same value in any tile, so tiling must reproduce it exactly:
    # any seam, gap or wrong weight would show.
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(3, 1, name="pointwise")(x)
    model = keras.Model(inputs, x)
    image = rng.uniform(-1, 1, (70, 95, 3)).astype("float32")
    whole = restore_array(model, image)
    tiled = restore_array(model, image, tile=32, overlap=8)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiles_with_context_stay_close_to_whole_image():
    model = _conv_net()
    image = rng.uniform(-1, 1, (64, 96, 3)).astype("float32")
    whole = restore_array(model, image)
    tiled = restore_array(model, image, tile=32, overlap=16)
    assert tiled.shape == whole.shape
    assert np.mean(np.abs(tiled - whole)) < 0.5 * np.mean(np.abs(whole))


def test_bad_tile_size_is_a_user_error():
    with pytest.raises(UserError, match="multiple of 4"):
        restore_array(_conv_net(), np.zeros((40, 40, 3), "float32"), tile=30)


def test_process_files_skips_bad_files_and_never_overwrites_inputs(tmp_path):
    folder = tmp_path / "in"
    write_image(folder / "a.png", rng.integers(0, 255, (9, 11, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"not an image")
    inputs = collect_inputs(folder)
    assert [p.name for p in inputs] == ["a.png", "broken.png"]
    written, failures = process_files(inputs, tmp_path / "out", lambda im: 255 - im)
    assert written == 1 and [p.name for p, _ in failures] == ["broken.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png"), 255 - read_image(folder / "a.png"))
    original = (folder / "a.png").read_bytes()
    written, failures = process_files([folder / "a.png"], folder, lambda im: 255 - im)
    assert written == 1 and not failures  # written next to it under another name
    assert (folder / "a.png").read_bytes() == original
    np.testing.assert_array_equal(read_image(folder / "a_out.png"), 255 - read_image(folder / "a.png"))


def test_collect_inputs_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        collect_inputs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        collect_inputs(tmp_path / "empty")
