"""datasets/*.py end to end on tiny images (each run once as `python datasets/X.py`)."""

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from common.image_io import list_images, read_image, write_image

REPO = Path(__file__).resolve().parents[1]


def _run(*args, env=None):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environment.update(env or {})
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=environment)


def _error_lines(result):
    """stderr lines that are ours (TensorFlow may log its own start-up lines before them)."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _script(name):
    """Import datasets/<name>.py as a module (to call main(argv) in-process for error cases)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _img(seed, shape=(8, 10, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _gopro_tree(root, frames=("000001", "000002")):
    seed = 0
    for split, sequences in (("train", ["GOPR0372_07_00", "GOPR0374_11_00"]), ("test", ["GOPR0384_11_00"])):
        for sequence in sequences:
            for frame in frames:
                for kind in ("blur", "blur_gamma", "sharp"):
                    write_image(root / split / sequence / kind / f"{frame}.png", _img(seed))
                    seed += 1
    return root


def test_gopro_script(tmp_path):
    raw = _gopro_tree(tmp_path / "GOPRO_Large")
    result = _run("datasets/gopro.py", "--input", raw, "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "train: 4 pairs" in result.stdout and "test: 2 pairs" in result.stdout
    a = tmp_path / "out" / "train" / "A" / "GOPR0372_07_00_000002.png"
    np.testing.assert_array_equal(read_image(a), read_image(
        raw / "train" / "GOPR0372_07_00" / "blur" / "000002.png"))
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "test" / "B" / "GOPR0384_11_00_000001.png"),
        read_image(raw / "test" / "GOPR0384_11_00" / "sharp" / "000001.png"))

    main = _script("gopro").main
    main(["--input", str(raw), "--output", str(tmp_path / "gamma"), "--gamma", "--link"])
    np.testing.assert_array_equal(
        read_image(tmp_path / "gamma" / "train" / "A" / "GOPR0372_07_00_000001.png"),
        read_image(raw / "train" / "GOPR0372_07_00" / "blur_gamma" / "000001.png"))
    with pytest.raises(UserError, match="not empty"):
        main(["--input", str(raw), "--output", str(tmp_path / "out")])
    (raw / "test" / "GOPR0384_11_00" / "sharp" / "000002.png").unlink()
    with pytest.raises(UserError, match="GOPR0384_11_00: 1 frames are in only one.*000002"):
        main(["--input", str(raw), "--output", str(tmp_path / "again")])
    assert not (tmp_path / "again").exists()  # checked before anything is written


def test_side_by_side_scripts(tmp_path):
    for k in range(3):
        write_image(tmp_path / "A" / f"{k}.png", _img(k))
        write_image(tmp_path / "B" / f"{k}.png", _img(10 + k))
    result = _run("datasets/side_by_side.py", "combine", "--a", tmp_path / "A", "--b",
                  tmp_path / "B", "--output", tmp_path / "sbs", "--order", "target_left")
    assert result.returncode == 0, result.stderr
    combined = read_image(tmp_path / "sbs" / "1.png")
    assert combined.shape == (8, 20, 3)
    np.testing.assert_array_equal(combined[:, :10], _img(11))  # target (B) left
    np.testing.assert_array_equal(combined[:, 10:], _img(1))

    result = _run("datasets/side_by_side.py", "split", "--input", tmp_path / "sbs", "--output",
                  tmp_path / "ab", "--order", "target_left")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in list_images(tmp_path / "ab" / "A")] == ["0.png", "1.png", "2.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "ab" / "A" / "2.png"), _img(2))
    np.testing.assert_array_equal(read_image(tmp_path / "ab" / "B" / "2.png"), _img(12))

    main = _script("side_by_side").main
    # split folders are handled one by one; degraded_left is the default
    for split in ("train", "test"):
        write_image(tmp_path / "A2" / split / "x.png", _img(1))
        write_image(tmp_path / "B2" / split / "x.png", _img(2))
    main(["combine", "--a", str(tmp_path / "A2"), "--b", str(tmp_path / "B2"),
          "--output", str(tmp_path / "sbs2")])
    np.testing.assert_array_equal(read_image(tmp_path / "sbs2" / "test" / "x.png")[:, :10], _img(1))
    write_image(tmp_path / "odd" / "o.png", _img(0, (4, 5, 3)))
    with pytest.raises(UserError, match="odd width"):
        main(["split", "--input", str(tmp_path / "odd"), "--output", str(tmp_path / "o2")])
    write_image(tmp_path / "B" / "extra.png", _img(0))
    with pytest.raises(UserError, match="1 in B/ without a partner in A/: extra"):
        main(["combine", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"),
              "--output", str(tmp_path / "sbs3")])


def test_build_hdf5_script_and_error_line(tmp_path):
    import h5py

    for split, count in (("train", 3), ("test", 1)):
        for k in range(count):
            sharp, blurred = _img(k, (12, 12, 3)), _img(50 + k, (12, 12, 3))
            write_image(tmp_path / "small" / split / f"{k}.png", np.concatenate([sharp, blurred], 1))
    out = tmp_path / "data" / "data.h5"
    result = _run("datasets/build_hdf5.py", "--input", tmp_path / "small", "--output", out,
                  "--size", "12")
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as h5:
        assert set(h5) >= {"train_data_full", "train_data_blur", "test_data_full", "test_data_blur"}
        np.testing.assert_array_equal(h5["train_data_full"][2], _img(2, (12, 12, 3)))
        np.testing.assert_array_equal(h5["train_data_blur"][2], _img(52, (12, 12, 3)))
        assert h5["test_data_blur"].shape == (1, 12, 12, 3)
    assert [p.name for p in out.parent.iterdir()] == ["data.h5"]  # no temporary file left

    # A user mistake ends in one "error:" line and exit status 2, not a traceback.
    result = _run("datasets/build_hdf5.py", "--input", tmp_path / "small", "--output", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert _error_lines(result) == [
        f"error: {out}: exists; choose another --output or pass --overwrite"]

    main = _script("build_hdf5").main
    main(["--input", str(tmp_path / "small"), "--output", str(out), "--size", "8", "--overwrite"])
    with h5py.File(out, "r") as h5:
        assert h5["train_data_full"].shape == (3, 8, 8, 3)


def test_download_offline_is_one_line(tmp_path):
    result = _run("datasets/download.py", "div2k", "--output", tmp_path / "div2k",
                  "--base-url", "http://127.0.0.1:9/")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: http://127.0.0.1:9/DIV2K_train_HR.zip:")
    assert "--archive" in lines[0]


def _zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _png_bytes(tmp_path, seed):
    path = tmp_path / f"_tmp{seed}.png"
    write_image(path, _img(seed))
    data = path.read_bytes()
    path.unlink()
    return data


def test_download_gopro_archive(tmp_path):
    raw = _gopro_tree(tmp_path / "src" / "GOPRO_Large", frames=("000001",))
    files = {p.relative_to(tmp_path / "src").as_posix(): p.read_bytes()
             for p in raw.rglob("*.png")}
    archive = _zip(tmp_path / "GOPRO_Large.zip", files)
    result = _run("datasets/download.py", "gopro", "--output", tmp_path / "gopro",
                  "--archive", archive)
    assert result.returncode == 0, result.stderr
    assert len(list_images(tmp_path / "gopro" / "train" / "A")) == 2
    assert len(list_images(tmp_path / "gopro" / "test" / "B")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GOPRO_Large.zip", "gopro", "src"]

    main = _script("download").main
    with pytest.raises(UserError, match="GoPro needs --archive"):
        main(["gopro", "--output", str(tmp_path / "g2")])


def test_download_div2k_and_celeba_archives(tmp_path, capsys):
    main = _script("download").main
    train = _zip(tmp_path / "DIV2K_train_HR.zip",
                 {"DIV2K_train_HR/0001.png": _png_bytes(tmp_path, 1),
                  "DIV2K_train_HR/0002.png": _png_bytes(tmp_path, 2)})
    valid = _zip(tmp_path / "DIV2K_valid_HR.zip", {"DIV2K_valid_HR/0801.png": _png_bytes(tmp_path, 3)})
    main(["div2k", "--output", str(tmp_path / "div2k"), "--archive", str(train),
          "--archive", str(valid)])
    assert [p.name for p in list_images(tmp_path / "div2k" / "train")] == ["0001.png", "0002.png"]
    assert [p.name for p in list_images(tmp_path / "div2k" / "test")] == ["0801.png"]
    assert train.exists() and valid.exists()  # the user's archives are kept

    celeba = _zip(tmp_path / "img_align_celeba.zip",
                  {f"img_align_celeba/{n}.jpg": _png_bytes(tmp_path, 4)
                   for n in ("000001", "162770", "162771", "182638")})
    main(["celeba", "--output", str(tmp_path / "celeba"), "--archive", str(celeba)])
    assert len(list_images(tmp_path / "celeba" / "train")) == 2
    assert len(list_images(tmp_path / "celeba" / "val")) == 1
    assert [p.name for p in list_images(tmp_path / "celeba" / "test")] == ["182638.jpg"]
    with pytest.raises(UserError, match="CelebA needs --archive"):
        main(["celeba", "--output", str(tmp_path / "c2")])
    assert "mmlab.ie.cuhk.edu.hk" in capsys.readouterr().out
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.zip: not a valid zip"):
        main(["celeba", "--output", str(tmp_path / "c3"), "--archive", str(bad)])


def test_sample_script(tmp_path):
    result = _run("datasets/sample.py", "--kind", "lr_images",
                  env={"GAN_RESTORATION_SAMPLE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "lr_images") in result.stdout
    assert len(list_images(tmp_path / "lr_images")) >= 3
