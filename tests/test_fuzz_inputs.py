"""Awkward and broken input files through every family's predict.py (tiny untrained runs).

Every file is either restored at its displayed size (x scale for SRGAN) or named in one
``failed NAME: reason`` line; nothing else in the folder is silently ignored; no traceback; the
last line says how many succeeded and failed; the inputs' bytes are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import re

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.image_io import read_image
from tiny_runs import make_tiny_run

FAMILIES = ("deblur_gan", "srgan", "dgf_deblur", "glcic_inpaint")
rng = np.random.default_rng(7)


def _rgb(height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(path, image, **options):
    image.save(path, **options)
    return path


def make_awkward_folder(folder):
    """Files that must be restored -> their displayed (height, width); the broken ones -> None."""
    import cv2

    folder.mkdir()
    expect = {}

    def ok(name, height, width):
        expect[name] = (height, width)

    base = _rgb(20, 24)
    _save(folder / "ok.png", Image.fromarray(base)); ok("ok.png", 20, 24)
    _save(folder / "gray.png", Image.fromarray(base[..., 0])); ok("gray.png", 20, 24)
    _save(folder / "gray_alpha.png", Image.fromarray(base[..., :2].copy(), "LA")); ok("gray_alpha.png", 20, 24)
    rgba = np.dstack([base, np.full((20, 24), 128, np.uint8)])
    _save(folder / "rgba.png", Image.fromarray(rgba, "RGBA")); ok("rgba.png", 20, 24)
    palette = Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    _save(folder / "palette.png", palette); ok("palette.png", 20, 24)
    _save(folder / "palette.gif", palette, transparency=0); ok("palette.gif", 20, 24)
    _save(folder / "photo.bmp", Image.fromarray(base)); ok("photo.bmp", 20, 24)
    _save(folder / "cmyk.jpg", Image.fromarray(base).convert("CMYK")); ok("cmyk.jpg", 20, 24)
    sixteen = (base[..., 0].astype(np.uint16) * 257)
    _save(folder / "gray16.png", Image.fromarray(sixteen)); ok("gray16.png", 20, 24)
    cv2.imwrite(str(folder / "rgb16.png"), base.astype(np.uint16) * 257); ok("rgb16.png", 20, 24)
    _save(folder / "photo.webp", Image.fromarray(base), quality=90); ok("photo.webp", 20, 24)
    _save(folder / "photo.tiff", Image.fromarray(base)); ok("photo.tiff", 20, 24)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: stored 24 wide, shown 20 wide
    _save(folder / "rotated.jpg", Image.fromarray(base), exif=exif.tobytes()); ok("rotated.jpg", 24, 20)
    for height, width in ((1, 1), (2, 3), (1, 17), (17, 1)):
        name = f"tiny_{width}x{height}.png"
        _save(folder / name, Image.fromarray(_rgb(height, width))); ok(name, height, width)
    # colliding names: distinct outputs
    _save(folder / "ok.jpg", Image.fromarray(base)); ok("ok.jpg", 20, 24)

    png, jpg = (folder / "ok.png").read_bytes(), (folder / "photo.bmp")
    _save(folder / "valid.jpg", Image.open(jpg).convert("RGB")); ok("valid.jpg", 20, 24)
    jpeg = (folder / "valid.jpg").read_bytes()
    broken = {
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "empty.png": b"",
        "text.jpg": b"this is a text file, not a JPEG\n",
    }
    for seed in range(3):  # random byte corruptions past the signature
        for name, data, start in (("png", png, 8), ("jpg", jpeg, 2)):
            damaged = bytearray(data)
            where = np.random.default_rng(seed).integers(start, len(data), 12)
            for position in where:
                damaged[position] ^= 0xFF
            broken[f"corrupt_{seed}.{name}"] = bytes(damaged)
    for name, data in broken.items():
        (folder / name).write_bytes(data)
        expect[name] = None  # may decode (a JPEG often does) or be named as failed
    (folder / "folder.png").mkdir()
    expect["folder.png"] = "fail"
    (folder / "notes.txt").write_text("not an image")
    return expect


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    expect = make_awkward_folder(root / "in")
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in (root / "in").iterdir() if p.is_file()}
    return root, expect, digests


def _output_for(out, name, names):
    stem, suffix = name.rsplit(".", 1)
    collide = sum(n.rsplit(".", 1)[0] == stem for n in names) > 1
    return out / (f"{stem}_{suffix}.png" if collide else f"{stem}.png")


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_reports_every_awkward_file(family, awkward, tmp_path, capsys):
    root, expect, digests = awkward
    run = make_tiny_run(family, tmp_path / "runs")
    scale = 4 if family == "srgan" else 1
    out = tmp_path / "out"
    predict = importlib.import_module(f"{family}.predict")
    code = predict.main(["--weights", str(run), "--input", str(root / "in"), "--output", str(out)])
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert code == 1, text  # some files failed
    assert "Traceback" not in text
    failed = {line.split(":", 1)[0][len("failed "):] for line in text.splitlines()
              if line.startswith("failed ")}
    failed_names = {name.rsplit("/", 1)[-1] for name in failed}
    lines = [line for line in captured.err.splitlines() if line.strip()]
    summary = re.fullmatch(r"(\d+) succeeded, (\d+) failed.*", lines[-1])
    assert summary, lines[-1]
    assert any(line.startswith("skipped ") and "notes.txt" in line for line in lines)
    restored = 0
    for name, size in expect.items():
        target = _output_for(out, name, list(expect))
        if size == "fail" or name in failed_names:
            assert name in failed_names and not target.exists(), name
            continue
        assert target.is_file(), f"{name}: neither restored nor reported\n{text}"
        restored += 1
        if size is not None:
            height, width = size
            assert read_image(target).shape == (height * scale, width * scale, 3), name
    must_restore = [n for n, s in expect.items() if isinstance(s, tuple)]
    assert not set(must_restore) & failed_names, f"readable files failed: {set(must_restore) & failed_names}"
    assert {"truncated.png", "empty.png", "text.jpg", "folder.png"} <= failed_names
    assert (int(summary.group(1)), int(summary.group(2))) == (restored, len(failed_names))
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (root / "in").iterdir() if p.is_file()}
    assert after == digests


def test_read_image_reports_unreadable_permissions(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    Image.fromarray(_rgb(4, 4)).save(path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    # as root chmod 000 would not stop the read, so the failure is simulated
    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(UserError, match="Permission denied") as info:
        read_image(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_displayed_orientation_and_palette_gif(awkward):
    root, _, _ = awkward
    rotated = read_image(root / "in" / "rotated.jpg")
    stored = np.asarray(Image.open(root / "in" / "valid.jpg").convert("RGB"))
    assert rotated.shape == (24, 20, 3)
    # orientation 6: the displayed image is the stored one turned 90 degrees clockwise
    assert np.abs(rotated.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 8
    gif = read_image(root / "in" / "palette.gif")
    png = read_image(root / "in" / "palette.png")
    assert gif.shape == png.shape == (20, 24, 3)


def test_one_failing_image_does_not_stop_the_batch(tmp_path, capsys):
    """Out of memory, a TensorFlow op error and a plain bug on single files: one line each, the
    others are written, Ctrl-C still stops the loop."""
    import tensorflow as tf

    from common.inference import Batch, process_files

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c", "d"):
        Image.fromarray(_rgb(6, 5)).save(folder / f"{name}.png")
    errors = {"a": MemoryError(), "b": tf.errors.ResourceExhaustedError(None, None, "OOM when allocating"),
              "c": tf.errors.InvalidArgumentError(None, None, "paddings must be less\nthan the dimension")}

    def transform(image, path):
        if path.stem in errors:
            raise errors[path.stem]
        return 255 - image

    inputs = sorted(folder.iterdir())
    written, failures = process_files(inputs, tmp_path / "out", transform, with_path=True)
    err = capsys.readouterr().err
    assert written == 1 and [p.name for p, _ in failures] == ["a.png", "b.png", "c.png"]
    lines = [line for line in err.splitlines() if line.startswith("failed ")]
    assert len(lines) == 3
    assert "out of memory on this 5x6 image; pass --tile" in lines[0] and "out of memory" in lines[1]
    assert lines[2].endswith("InvalidArgumentError on this 5x6 image: paddings must be less")
    assert err.strip().splitlines()[-1].startswith("1 succeeded, 3 failed")
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "d.png"), 255 - read_image(folder / "d.png"))

    batch = Batch()
    with pytest.raises(KeyboardInterrupt):
        with batch.item("x"):
            raise KeyboardInterrupt
    assert batch.finish() == 0 and batch.summary() == "0 succeeded, 0 failed"


@pytest.mark.parametrize("family", FAMILIES)
def test_test_script_goes_on_after_a_broken_image(family, tmp_path, capsys):
    """A truncated image among good ones: one ``failed`` line, the others scored, exit status 1."""
    run = make_tiny_run(family, tmp_path / "runs")
    data = tmp_path / "data" / "test"
    paired = family in ("deblur_gan", "dgf_deblur")
    for name in ("a", "b", "c"):
        image = Image.fromarray(_rgb(24, 28))
        for folder in (("A", "B") if paired else ("",)):
            (data / folder).mkdir(parents=True, exist_ok=True)
            image.save(data / folder / f"{name}.png")
    broken = data / ("B" if paired else "") / "b.png"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])  # header kept, pixels cut
    out = tmp_path / "out"
    argv = ["--weights", str(run), "--data", str(tmp_path / "data"), "--output", str(out)]
    if family == "glcic_inpaint":
        argv += ["--size", "24"]
    code = importlib.import_module(f"{family}.test").main(argv)
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("failed ")]
    assert code == 1 and len(failed) == 1 and "b.png" in failed[0], err
    assert err.strip().splitlines()[-1] == "2 succeeded, 1 failed"
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]][:2] in (["a", "c"], ["a.png", "c.png"])
