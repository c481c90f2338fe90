"""srgan/train.py, predict.py and test.py end to end, as subprocesses, on tiny images.

Both stages of the paper recipe run (srresnet, then srgan initialised from it) with a one-block,
8-filter generator so tracing stays short; predict and test then use the srgan run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.image_io import read_image, write_image
from common.metrics import rgb_to_y

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = ["--hr-crop", "32", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
              "--res-blocks", "1", "--filters", "8", "--precision", "float32", "--no-progress"]


def _run(script, *args, cwd, check=True):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(REPO / "srgan" / script), *map(str, args)],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("srgan_e2e")
    rng = np.random.default_rng(0)
    hr = root / "hr"
    for i, (h, w) in enumerate([(48, 52), (45, 61), (40, 40)]):
        base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        write_image(hr / f"im{i}.png", np.kron(base, np.ones((4, 4, 1), np.uint8))[:h, :w])
    lr = root / "lr"
    write_image(lr / "a.png", rng.integers(0, 256, (13, 17, 3), dtype=np.uint8))
    write_image(lr / "b.jpg", rng.integers(0, 256, (30, 21, 3), dtype=np.uint8))

    srresnet = root / "srresnet"
    _run("train.py", "--preset", "paper", "--stage", "srresnet", "--data", hr, "--out", srresnet,
         *TINY_TRAIN, cwd=root)
    srgan = root / "srgan"
    _run("train.py", "--preset", "paper", "--stage", "srgan", "--init-from", srresnet, "--data", hr,
         "--out", srgan, "--vgg-weights", "random", *TINY_TRAIN, cwd=root)
    return {"root": root, "hr": hr, "lr": lr, "srresnet": srresnet, "srgan": srgan}


def test_train_writes_both_stages(workspace):
    for stage in ("srresnet", "srgan"):
        run = workspace[stage]
        for name in ("generator.weights.h5", "generator.keras", "config.json"):
            assert (run / name).is_file(), f"{stage}: {name} missing"
        record = json.loads((run / "config.json").read_text())
        assert record["config"]["stage"] == stage and record["config"]["preset"] == "paper"
        assert record["config"]["num_res_blocks"] == 1 and record["config"]["hr_crop"] == 32
        grids = sorted((run / "samples").glob("epoch_*.png"))
        assert [g.name for g in grids] == ["epoch_0000.png", "epoch_0001.png"]
        assert read_image(grids[-1]).shape[1] > 100
    srgan = json.loads((workspace["srgan"] / "config.json").read_text())
    assert srgan["config"]["init_from"] == str(workspace["srresnet"])
    assert srgan["info"]["init_weights"].endswith("generator.weights.h5")
    assert srgan["config"]["content_weight"] == 1.0 and srgan["config"]["pixel_weight"] == 0.0
    assert any("UNTRAINED" in w for w in srgan["warnings"])


def test_predict_writes_scale_times_input_and_grids(workspace):
    out = workspace["root"] / "pred"
    result = _run("predict.py", "--weights", workspace["srgan"], "--input", workspace["lr"],
                  "--output", out, "--grid", "--tile", "8", cwd=workspace["root"])
    assert result.stderr.strip().splitlines()[-1].startswith("2 succeeded, 0 failed")
    assert read_image(out / "a.png").shape == (52, 68, 3)
    assert read_image(out / "b.png").shape == (120, 84, 3)
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["a.png", "b.png"]
    # tiled and whole-image inference give nearly the same image
    whole = workspace["root"] / "pred_whole"
    _run("predict.py", "--weights", workspace["srgan"], "--input", workspace["lr"] / "a.png",
         "--output", whole, cwd=workspace["root"])
    diff = np.abs(read_image(whole / "a.png").astype(int) - read_image(out / "a.png").astype(int))
    assert diff.mean() < 8


def test_test_script_metrics_match_numpy(workspace):
    out = workspace["root"] / "test"
    result = _run("test.py", "--weights", workspace["srgan"], "--data", workspace["hr"], "--output",
                  out, cwd=workspace["root"])
    assert "mean" in result.stdout
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["image"] for r in rows] == ["im0.png", "im1.png", "im2.png", "mean"]
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["im0.png", "im1.png", "im2.png"]
    # recompute PSNR-Y (border = scale = 4) of the saved SR image by hand
    hr = read_image(workspace["hr"] / "im1.png")[:44, :60].astype(np.float64)
    sr = read_image(out / "images" / "im1.png").astype(np.float64)
    assert sr.shape == hr.shape
    ya, yb = (rgb_to_y(x / 255.0)[4:-4, 4:-4] * 255 for x in (sr, hr))
    expected = 10 * np.log10(255.0 ** 2 / np.mean((ya - yb) ** 2))
    assert float(rows[1]["sr_psnr_y"]) == pytest.approx(expected, abs=1e-3)
    assert float(rows[3]["sr_psnr_y"]) == pytest.approx(np.mean([float(r["sr_psnr_y"]) for r in rows[:3]]),
                                                        abs=1e-3)


def test_test_script_uses_given_lr_images(workspace):
    root = workspace["root"]
    lr_dir = root / "given_lr"
    for i, (h, w) in enumerate([(12, 13), (11, 15), (10, 10)]):
        write_image(lr_dir / f"im{i}.png", np.full((h, w, 3), 128, np.uint8))
    out = root / "test_lr"
    _run("test.py", "--weights", workspace["srgan"], "--data", workspace["hr"], "--lr-dir", lr_dir,
         "--output", out, cwd=root)
    # a flat grey LR upscales to flat grey: bicubic PSNR equals that of a grey image vs HR
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    hr = read_image(workspace["hr"] / "im0.png")[:48, :52] / 255.0
    ya, yb = rgb_to_y(np.full_like(hr, 128 / 255.0))[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]
    expected = 10 * np.log10(1.0 / np.mean((ya - yb) ** 2))
    assert float(rows[0]["bicubic_psnr_y"]) == pytest.approx(expected, abs=1e-3)

    missing = root / "partial_lr"
    write_image(missing / "im0.png", np.zeros((12, 13, 3), np.uint8))
    result = _run("test.py", "--weights", workspace["srgan"], "--data", workspace["hr"], "--lr-dir",
                  missing, "--output", root / "t3", cwd=root, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "im1.png" in result.stderr


def test_train_errors_are_one_line(workspace):
    root = workspace["root"]
    result = _run("train.py", "--preset", "paper", "--stage", "srgan", "--init-from", root / "nope",
                  "--data", workspace["hr"], "--out", root / "bad", *TINY_TRAIN, cwd=root, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "nope" in result.stderr
    # a run with another generator cannot initialise this one
    result = _run("train.py", "--preset", "paper", "--stage", "srgan", "--init-from", workspace["srresnet"],
                  "--data", workspace["hr"], "--out", root / "bad2", "--hr-crop", "32", "--epochs", "1",
                  "--precision", "float32", "--no-progress", cwd=root, check=False)
    assert result.returncode == 2 and "num_res_blocks" in result.stderr
