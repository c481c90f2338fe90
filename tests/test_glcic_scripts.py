"""GLCIC train.py / test.py / predict.py end to end, on tiny images in a temporary folder."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

TINY_FLAGS = [
    "--preset", "paper",
    "--set", "filters=4", "--set", "global_d_filters=4,8", "--set", "local_d_filters=4",
    "--set", "d_fc_units=8",
    "--image-size", "16", "--resize-short-side", "16,20", "--local-size", "8",
    "--hole-min", "2", "--hole-max", "6", "--batch-size", "2",
    "--phase-steps", "2,1,4", "--steps-per-epoch", "2", "--save-every", "2",
    "--precision", "float32", "--no-progress",
]


def _run(script, *args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "glcic_inpaint" / script), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("glcic")
    rng = np.random.default_rng(0)
    data = root / "data"
    for i in range(5):
        _write(data / "train" / f"t{i}.png", rng.integers(0, 256, (20, 26, 3), dtype=np.uint8))
    for i, (h, w) in enumerate(((18, 22), (21, 30))):
        _write(data / "test" / f"v{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        mask = np.zeros((h, w), np.uint8)
        mask[3:9, 4:12] = 255
        _write(data / "test" / "masks" / f"v{i}.png", mask)
    run = root / "run"
    done = _run("train.py", "--data", data, "--out", run, *TINY_FLAGS, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, data, run, done


def test_train_writes_the_run(trained):
    _, _, run, done = trained
    assert "finished 4 steps" in done.stdout
    for name in ("config.json", "generator.weights.h5", "generator.keras",
                 "generator_phase1.weights.h5", "generator_phase1.keras"):
        assert (run / name).is_file(), name
    record = json.loads((run / "config.json").read_text())
    config = record["config"]
    assert config["preset"] == "paper" and config["phase_steps"] == [2, 1, 4]
    assert len(config["mean_color"]) == 3 and 0.3 < config["mean_color"][0] < 0.7
    grids = sorted((run / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]
    assert Image.open(grids[-1]).size[0] > 100
    assert list((run / "checkpoints").glob("ckpt-4.index"))


def test_train_resumes_into_phase_3(trained):
    root, data, run, _ = trained
    flags = [f if f != "2,1,4" else "2,1,6" for f in TINY_FLAGS]
    done = _run("train.py", "--data", data, "--out", run, *flags, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout and "at step 4 of 6" in done.stdout
    assert "finished 6 steps" in done.stdout


def test_test_script_grids_and_csv(trained):
    root, data, run, _ = trained
    out = root / "test_out"
    done = _run("test.py", "--weights", run, "--data", data, "--output", out,
                "--masks", data / "test" / "masks", "--precision", "float32", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GLCIC (phase 3)" in done.stdout and "Mean fill" in done.stdout
    assert Image.open(out / "grid_000.png").size[0] > 300
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["image"] for r in rows] == ["v0", "v1", "mean"]
    for key in ("mean_fill_psnr_hole", "phase1_psnr_hole", "glcic_ssim_hole", "glcic_psnr"):
        assert rows[-1][key] != ""
    # random holes (no --masks), full size
    done = _run("test.py", "--weights", run, "--data", data, "--output", root / "test_full",
                "--size", "0", "--limit", "1", "--precision", "float32", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(csv.DictReader(open(root / "test_full" / "metrics.csv")))) == 2


def test_predict_own_size_known_pixels_unchanged(trained):
    root, data, run, _ = trained
    out = root / "pred"
    done = _run("predict.py", "--weights", run, "--input", data / "test",
                "--masks", data / "test" / "masks", "--output", out, "--blend", "poisson",
                "--precision", "float32", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("v0", "v1"):
        source = np.asarray(Image.open(data / "test" / f"{name}.png"))
        mask = np.asarray(Image.open(data / "test" / "masks" / f"{name}.png")) > 127
        result = np.asarray(Image.open(out / f"{name}.png"))
        assert result.shape == source.shape
        np.testing.assert_array_equal(result[~mask], source[~mask])
        assert not np.array_equal(result[mask], source[mask])


def test_predict_random_holes_and_errors(trained):
    root, data, run, _ = trained
    out = root / "pred_random"
    done = _run("predict.py", "--weights", run, "--input", data / "test" / "v1.png",
                "--output", out, "--precision", "float32", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "v1.png").is_file() and (out / "v1_mask.png").is_file()
    assert np.asarray(Image.open(out / "v1_mask.png")).max() == 255
    # a mask of the wrong size: reported, skipped, exit status 1
    bad = root / "bad_mask.png"
    _write(bad, np.zeros((5, 5), np.uint8))
    done = _run("predict.py", "--weights", run, "--input", data / "test" / "v0.png",
                "--masks", bad, "--output", root / "pred_bad", cwd=root)
    assert done.returncode == 1 and "bad_mask.png" in done.stderr
    # --tile N: output tiles around the holes, the same completion as the whole image (--tile 0)
    for tile in ("16", "0"):
        done = _run("predict.py", "--weights", run, "--input", data / "test" / "v1.png",
                    "--output", root / f"pred_tile{tile}", "--precision", "float32", "--tile", tile, cwd=root)
        assert done.returncode == 0, done.stderr[-3000:]
    tiled, whole = (np.asarray(Image.open(root / f"pred_tile{t}" / "v1.png")).astype(int) for t in ("16", "0"))
    assert np.abs(tiled - whole).max() <= 1
    done = _run("predict.py", "--weights", run, "--tile", "4", cwd=root)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: --tile 4")


def test_train_flag_errors_are_one_line(tmp_path):
    done = _run("train.py", "--data", tmp_path, "--phase-steps", "5,5,2", "--out", tmp_path / "r",
                cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "phase_steps" in done.stderr
    done = _run("train.py", "--set", "filterz=3", "--out", tmp_path / "r", cwd=tmp_path)
    assert done.returncode == 2 and "filterz" in done.stderr
