import keras
import numpy as np
import pytest

from common.errors import UserError
from common.image_io import read_image, write_image
from common import inference
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


def _reference_blend(generator, image, multiple, scale, tile, overlap):
    """The tile blending as it was before strips: float32 sums and weights for the whole result."""
    overlap = min(overlap, tile // 4)
    overlap -= overlap % multiple
    step = tile - overlap
    padded = inference.pad_to_multiple(image, multiple, inference.MIN_NETWORK_SIZE)
    ph, pw = padded.shape[:2]
    out = weight_sum = None
    for top in inference._tile_starts(ph, tile, step):
        for left in inference._tile_starts(pw, tile, step):
            crop = padded[top: top + tile, left: left + tile]
            result = inference._run(generator, crop[None], False)[0]
            th, tw = result.shape[:2]
            if out is None:
                out = np.zeros((ph * scale, pw * scale, result.shape[-1]), np.float32)
                weight_sum = np.zeros((ph * scale, pw * scale, 1), np.float32)
            wy = inference._ramp(th, overlap * scale, top == 0, top + crop.shape[0] >= ph)
            wx = inference._ramp(tw, overlap * scale, left == 0, left + crop.shape[1] >= pw)
            weights = (wy[:, None] * wx[None, :])[..., None]
            out[top * scale: top * scale + th, left * scale: left * scale + tw] += result * weights
            weight_sum[top * scale: top * scale + th, left * scale: left * scale + tw] += weights
    out /= np.maximum(weight_sum, 1e-8)
    return out[: image.shape[0] * scale, : image.shape[1] * scale]


class _FakeGenerator:
    """A cheap numpy "generator" whose output depends on the whole tile (its mean and a ramp over
    the tile's own coordinates), so overlapping tiles disagree and every blending weight shows."""

    def __init__(self, scale):
        self.scale, self.calls = scale, 0

    def __call__(self, batch):
        self.calls += 1
        x = np.repeat(np.repeat(batch[0], self.scale, 0), self.scale, 1)
        h, w = x.shape[:2]
        ramp = np.linspace(-0.3, 0.3, h, dtype=np.float32)[:, None, None] * np.linspace(1, 2, w, dtype=np.float32)[None, :, None]
        out = np.tanh(0.8 * x + batch[0].mean() + ramp)
        return out[None].astype(np.float32)


@pytest.fixture
def fake_run(monkeypatch):
    monkeypatch.setattr(inference, "_run", lambda generator, batch, training: generator(batch))


@pytest.mark.parametrize("scale, size, multiple, tile, overlap", [
    (1, (70, 95), 4, 32, 8),     # tiles do not divide the image; last tiles overlap more than 8
    (1, (37, 101), 1, 24, 32),   # odd sizes; overlap capped at tile // 4
    (4, (29, 43), 1, 12, 4),     # x4, odd sizes
    (4, (9, 50), 1, 16, 4),      # one strip (the image is lower than a tile)
    (2, (61, 18), 4, 16, 8),     # one column of tiles, padding to a multiple of 4
])
def test_strip_blending_equals_the_full_buffer_blending(fake_run, scale, size, multiple, tile, overlap):
    from srgan.data import generator_output_to_uint8

    generator = _FakeGenerator(scale)
    image = rng.uniform(-1, 1, size + (3,)).astype("float32")
    expected = _reference_blend(generator, image, multiple, scale, tile, overlap)
    calls = generator.calls
    got = restore_array(generator, image, multiple=multiple, scale=scale, tile=tile, overlap=overlap)
    assert generator.calls == 2 * calls and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # same sums in the same order: bit for bit
    as_uint8 = restore_array(generator, image, multiple=multiple, scale=scale, tile=tile, overlap=overlap,
                             finish=generator_output_to_uint8)
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8, generator_output_to_uint8(expected))


def test_strip_blending_of_a_keras_upscaler_equals_the_full_buffer_blending():
    x = inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(12, 3, padding="same", activation="tanh", name="c")(x)
    x = SubpixelConv2D(2, name="up")(x)
    model = keras.Model(inputs, x)
    image = rng.uniform(-1, 1, (45, 53, 3)).astype("float32")
    expected = _reference_blend(model, image, 1, 2, 20, 8)
    np.testing.assert_array_equal(restore_array(model, image, multiple=1, scale=2, tile=20, overlap=8), expected)


def test_finish_is_applied_to_the_whole_image_too(fake_run):
    generator = _FakeGenerator(2)
    image = rng.uniform(-1, 1, (13, 22, 3)).astype("float32")
    whole = restore_array(generator, image, multiple=1, scale=2, tile=0)
    halved = restore_array(generator, image, multiple=1, scale=2, tile=0, finish=lambda v: (v * 0.5).astype(np.float16))
    assert halved.dtype == np.float16 and halved.shape == (26, 44, 3)
    np.testing.assert_array_equal(halved, (whole * 0.5).astype(np.float16))


def test_strip_blending_never_holds_the_result_in_float32(fake_run, monkeypatch):
    # x4 of 128 x 200: the float32 result would be 4.9 MB (plus 1.6 MB of weights before); now
    # the uint8 result (1.2 MB), one strip of sums and weights (48 output rows: 0.6 MB) and small
    # temporaries.
    import tracemalloc

    from srgan.data import generator_output_to_uint8

    from common import tiling

    monkeypatch.setattr(tiling, "FINISH_BLOCK_PIXELS", 4096)
    image = rng.uniform(-1, 1, (128, 200, 3)).astype("float32")
    float_result = 128 * 4 * 200 * 4 * 3 * 4
    strip = 12 * 4 * 200 * 4 * (3 * 4 + 4)
    finished_rows = []

    def finish(block):
        finished_rows.append(block.shape[0])
        return generator_output_to_uint8(block)

    tracemalloc.start()
    try:
        out = restore_array(_FakeGenerator(4), image, multiple=1, scale=4, tile=12, overlap=4, finish=finish)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (512, 800, 3) and out.dtype == np.uint8
    assert sum(finished_rows) == 512 and max(finished_rows) <= 4096 // 800 + 1
    assert peak < out.nbytes + 1.5 * strip < 0.5 * float_result, peak


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
