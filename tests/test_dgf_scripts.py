"""End-to-end tests of dgf_deblur/train.py, test.py and predict.py on tiny data in a temp dir."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# A tiny network so each script run takes seconds on a CPU.
TINY_FLAGS = ["--growth-rate", "4", "--bottleneck-channels", "8", "--n-blocks", "2",
              "--dilations", "1,2", "--d-channels", "4", "--crop-size", "32", "--patch-size", "16",
              "--load-size", "0"]
COMMON_TRAIN = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "1",
                "--vgg-weights", "random", "--precision", "float32", "--no-progress"]


def _run(script, *args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, str(REPO / "dgf_deblur" / script), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _side_by_side_set(root: Path, size=40, counts=(("train", 3), ("test", 2))) -> Path:
    """Side-by-side JPEGs like the DGF data: sharp LEFT, blurred right (a horizontal box blur)."""
    rng = np.random.default_rng(0)
    for split, count in counts:
        (root / split).mkdir(parents=True)
        for i in range(count):
            sharp = rng.integers(0, 256, (size, size, 3)).astype(np.float32)
            blurred = sum(np.roll(sharp, k, axis=1) for k in range(-2, 3)) / 5
            pair = np.concatenate([sharp, blurred], axis=1).astype(np.uint8)
            Image.fromarray(pair).save(root / split / f"{split}_{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One keras-preset run on side-by-side images, shared by the test/predict tests."""
    tmp = tmp_path_factory.mktemp("dgf")
    data = _side_by_side_set(tmp / "data")
    run = tmp / "run"
    result = _run("train.py", "--data", data, "--out", run, *COMMON_TRAIN, *TINY_FLAGS, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, data, run


def test_train_writes_the_run_directory(trained):
    tmp, data, run = trained
    for name in ("config.json", "generator.weights.h5", "generator.keras", "discriminator.keras"):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("ckpt-2.index"))
    assert (run / "samples" / "epoch_0001.png").is_file()
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["preset"] == "keras"
    assert record["config"]["growth_rate"] == 4 and record["config"]["dilations"] == [1, 2]
    assert record["config"]["load_size"] is None and record["config"]["steps_per_epoch"] == 2
    assert any("UNTRAINED" in w for w in record["warnings"])
    # Rerunning the finished run resumes, finds it complete, and keeps the checkpoint.
    again = _run("train.py", "--data", data, "--out", run, *COMMON_TRAIN, *TINY_FLAGS, cwd=tmp)
    assert again.returncode == 0 and "already complete" in again.stdout


def test_test_script_scores_and_grids(trained):
    tmp, data, run = trained
    out = tmp / "test_out"
    result = _run("test.py", "--weights", run, "--data", data, "--output", out, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["image"] for r in rows] == ["test_0", "test_1", "mean"]
    assert all(float(r["psnr"]) > 0 and float(r["blurred_psnr"]) > 0 for r in rows)
    assert Image.open(out / "images" / "test_0.png").size == (40, 40)
    assert (out / "grids" / "grid_000.png").is_file()
    assert "mean" in result.stdout


def test_predict_any_size_and_tiles(trained):
    tmp, data, run = trained
    inputs = tmp / "photos"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(inputs / "odd.png")
    Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)).save(inputs / "large.jpg")
    whole = _run("predict.py", "--weights", run, "--input", inputs, "--output", tmp / "whole",
                 "--tile", "0", "--grid", cwd=tmp)
    assert whole.returncode == 0, whole.stderr[-3000:]
    tiled = _run("predict.py", "--weights", run, "--input", inputs, "--output", tmp / "tiled",
                 "--tile", "32", cwd=tmp)
    assert tiled.returncode == 0, tiled.stderr[-3000:]
    assert Image.open(tmp / "whole" / "odd.png").size == (53, 37)
    assert Image.open(tmp / "tiled" / "large.png").size == (70, 90)
    assert (tmp / "whole" / "grids" / "large.png").is_file()
    a = np.asarray(Image.open(tmp / "whole" / "large.png"), np.float32)
    b = np.asarray(Image.open(tmp / "tiled" / "large.png"), np.float32)
    # Tiles are blended; away from seams they equal the whole-image result.
    assert np.mean(np.abs(a - b)) < 8.0


def test_paper_preset_trains_from_the_hdf5_file(tmp_path):
    from common.data import open_pairs
    from common.datasets_tools import build_hdf5

    data = _side_by_side_set(tmp_path / "images", size=40)
    h5 = tmp_path / "data.h5"
    build_hdf5(data, h5, size=32)
    pairs = open_pairs(h5, split="train")
    blurred, sharp = pairs.load(0)
    assert len(pairs) == 3 and blurred.shape == sharp.shape == (32, 32, 3)
    # Sharp is the left half: it has more high-frequency energy than the box-blurred right half.
    assert np.abs(np.diff(sharp.astype(float), axis=1)).mean() > np.abs(np.diff(blurred.astype(float), axis=1)).mean()
    result = _run("train.py", "--data", h5, "--preset", "paper", "--out", tmp_path / "run",
                  *COMMON_TRAIN, *TINY_FLAGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["discriminator"] == "patchgan" and record["config"]["conditional"]


def test_user_mistakes_end_in_one_error_line(tmp_path):
    missing = _run("train.py", "--data", tmp_path / "nope", "--out", tmp_path / "run",
                   *COMMON_TRAIN, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith("error:")
    bad = _run("train.py", "--data", tmp_path, "--crop-size", "30", "--patch-size", "16",
               "--out", tmp_path / "run", *COMMON_TRAIN, cwd=tmp_path)
    assert bad.returncode == 2 and "multiple of patch_size" in bad.stderr
    no_run = _run("predict.py", "--weights", tmp_path / "missing", "--input", tmp_path, cwd=tmp_path)
    assert no_run.returncode == 2 and "error:" in no_run.stderr
