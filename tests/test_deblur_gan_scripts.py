"""DeblurGAN train.py / test.py / predict.py end to end on tiny images (subprocesses)."""

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
TINY_MODEL = ["--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--critic-updates", "2"]
QUICK = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "1", "--vgg-weights", "random",
         "--precision", "float32", "--no-progress", "--crop", "16", "16", "--no-resize"]


def _run(script, *args, cwd, expect=0):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(REPO / "deblur_gan" / script), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def _write_pairs(folder: Path, count: int, size: tuple[int, int], rng):
    for sub in ("A", "B"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sharp = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        blurred = ((sharp.astype(np.uint16) + np.roll(sharp, 1, axis=1)) // 2).astype(np.uint8)
        Image.fromarray(blurred).save(folder / "A" / f"pair_{i}.png")
        Image.fromarray(sharp).save(folder / "B" / f"pair_{i}.png")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("deblur_data")
    rng = np.random.default_rng(0)
    _write_pairs(root / "train", 3, (24, 28), rng)
    _write_pairs(root / "test", 2, (22, 30), rng)  # not multiples of 4: padded and cropped back
    return root


def _image_size(path):
    with Image.open(path) as image:
        return image.size  # (width, height)


def test_paper_train_test_predict(tmp_path, data):
    run = tmp_path / "run"
    _run("train.py", "--data", data, "--out", run, *QUICK, *TINY_MODEL, cwd=tmp_path)
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["preset"] == "paper" and record["config"]["steps_per_epoch"] == 2
    assert record["config"]["gp_variant"] == "official" and record["warnings"]  # random VGG is flagged
    assert record["config"]["decay_epochs"] == 0  # 1 epoch: 150/300 of it, rounded
    for name in ("generator.weights.h5", "generator.keras", "samples/epoch_0001.png", "checkpoints/checkpoint"):
        assert (run / name).is_file(), name

    out = tmp_path / "test"
    proc = _run("test.py", "--weights", run, "--data", data, "--output", out, cwd=tmp_path)
    assert "mean" in proc.stdout
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["image"] for r in rows] == ["pair_0", "pair_1", "mean"]
    assert all(np.isfinite(float(r["psnr"])) and np.isfinite(float(r["blurred_ssim"])) for r in rows)
    assert _image_size(out / "images" / "pair_0.png") == (30, 22)
    assert (out / "grids" / "grid_000.png").is_file()

    pred = tmp_path / "pred"
    image = data / "test" / "A" / "pair_1.png"
    _run("predict.py", "--weights", run / "generator.weights.h5", "--input", image, "--output", pred, "--grid",
         "--stochastic", cwd=tmp_path)
    assert _image_size(pred / "pair_1.png") == (30, 22)
    assert _image_size(pred / "grids" / "pair_1.png")[0] > 60


def test_keras_port_train_and_predict_tiled(tmp_path, data):
    run = tmp_path / "run"
    _run("train.py", "--preset", "keras-port", "--upsampling", "nearest", "--data", data, "--out", run,
         *QUICK, *TINY_MODEL, cwd=tmp_path)
    record = json.loads((run / "config.json").read_text())
    assert (record["config"]["preset"], record["config"]["upsampling"], record["config"]["crop"]) == (
        "keras-port", "nearest", [16, 16])
    pred = tmp_path / "pred"
    _run("predict.py", "--weights", run, "--input", data / "test" / "A", "--output", pred, "--tile", "16",
         cwd=tmp_path)
    assert sorted(p.name for p in pred.glob("*.png")) == ["pair_0.png", "pair_1.png"]
    # BatchNorm generator: the official stochastic mode does not apply
    proc = _run("predict.py", "--weights", run, "--input", data / "test" / "A", "--output", pred,
                "--stochastic", cwd=tmp_path, expect=2)
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "BatchNorm" in proc.stderr


def test_user_errors_are_one_line(tmp_path):
    proc = _run("predict.py", "--weights", tmp_path / "missing", "--output", tmp_path / "o", cwd=tmp_path, expect=2)
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in proc.stderr
    proc = _run("train.py", "--data", tmp_path / "nowhere", "--vgg-weights", "random", cwd=tmp_path, expect=2)
    assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
