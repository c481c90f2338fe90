"""DeblurGAN upstream releases: each built in its own framework with random weights, saved in its own
format, loaded here with no --preset (detected), and compared with the upstream forward pass."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError

REPO = Path(__file__).resolve().parents[1]
NGF, BLOCKS = 4, 2


# ----------------------------------------------------------------------------- official PyTorch
def _official_generator(torch):
    """KupynOrest/DeblurGAN's ResnetGenerator before PR #134 (InstanceNorm without affine, two-conv
    blocks with Dropout(0.5), --learn_residual clamp), as benchmarks/torch_deblurgan.py states it."""
    spec = importlib.util.spec_from_file_location("torch_deblurgan", REPO / "benchmarks" / "torch_deblurgan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.Generator(ngf=NGF, n_blocks=BLOCKS, dropout=0.5).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.3)
    return net


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to write the official .pth files")
    root = tmp_path_factory.mktemp("official")
    net = _official_generator(torch)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 12, 20)).astype("float32")
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    torch.save(net.state_dict(), root / "latest_net_G.pth", _use_new_zipfile_serialization=False)
    torch.save(net.state_dict(), root / "zip_net_G.pth")
    return root, x.transpose(0, 2, 3, 1), expected


@pytest.mark.parametrize("name", ["latest_net_G.pth", "zip_net_G.pth"])
def test_official_pth_is_detected_and_matches_pytorch(official_files, name):
    from deblur_gan.inference import load

    root, x, expected = official_files
    loaded = load(root / name)
    assert loaded.config.preset == "paper" and (loaded.config.ngf, loaded.config.n_blocks) == (NGF, BLOCKS)
    assert loaded.config.dropout == 0.5
    assert loaded.description.startswith(f"weights: {name} = official DeblurGAN PyTorch generator")
    got = np.asarray(loaded.model(x, training=False))
    assert np.abs(got - expected).max() <= 1e-4


def test_contradicting_preset_names_both(official_files):
    from deblur_gan.inference import load

    root, _, _ = official_files
    with pytest.raises(UserError, match="--preset keras-port contradicts.*official DeblurGAN.*preset paper"):
        load(root / "latest_net_G.pth", "keras-port")
    with pytest.raises(UserError, match="--upsampling nearest contradicts"):
        load(root / "latest_net_G.pth", upsampling="nearest")


def test_predict_runs_the_pth_without_importing_torch(official_files, tmp_path):
    """The script end to end on the official file; torch is never imported."""
    root, _, _ = official_files
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(photos / "a.png")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['predict.py', '--weights', {str(root / 'latest_net_G.pth')!r}, '--input', {str(photos)!r},"
        f" '--output', {str(tmp_path / 'out')!r}]\n"
        "try:\n    runpy.run_path(%r, run_name='__main__')\n"
        "except SystemExit as stop:\n    code = stop.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(code)\n" % str(REPO / "deblur_gan" / "predict.py"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "weights: latest_net_G.pth = official DeblurGAN PyTorch generator, paper preset" in proc.stderr
    with Image.open(tmp_path / "out" / "a.png") as image:
        assert image.size == (22, 18)


def test_contradicting_preset_is_one_error_line(official_files, tmp_path, capsys):
    from common.cli import run_cli
    from deblur_gan.predict import main

    root, _, _ = official_files
    with pytest.raises(SystemExit) as stop:
        run_cli(main, ["--weights", str(root / "latest_net_G.pth"), "--preset", "keras-port",
                       "--output", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and lines[-1].startswith("error:") and "Traceback" not in "\n".join(lines)
    assert "--preset keras-port" in lines[-1] and "preset paper" in lines[-1]


def test_convert_writes_our_format_that_loads_without_detection(official_files, tmp_path):
    from deblur_gan.convert import main
    from deblur_gan.inference import load

    root, x, expected = official_files
    out = tmp_path / "official.weights.h5"
    assert main(["--input", str(root / "latest_net_G.pth"), "--output", str(out)]) == 0
    loaded = load(out)
    assert loaded.config.preset == "paper" and loaded.config.ngf == NGF
    assert "= converted from latest_net_G.pth (official DeblurGAN" in loaded.description
    assert np.abs(np.asarray(loaded.model(x, training=False)) - expected).max() <= 1e-4


# ----------------------------------------------------------------------------- Keras port (Keras 2)
@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_keras_port_h5_variant_is_detected_and_matches_keras2(tmp_path, upsampling):
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is needed to write Keras 2 .h5 files")
    from deblur_gan.inference import load

    from upstream_models import keras_port_generator, randomize_keras2

    upstream = keras_port_generator(tf_keras, upsampling, NGF, BLOCKS)
    randomize_keras2(upstream, 2)
    path = tmp_path / "generator.h5"
    upstream.save_weights(str(path), save_format="h5")
    x = np.random.default_rng(3).uniform(-1, 1, (1, 16, 12, 3)).astype("float32")
    expected = upstream(x, training=False).numpy()

    loaded = load(path)
    assert loaded.config.preset == "keras-port" and loaded.config.upsampling == upsampling
    assert "Keras port" in loaded.description and ("nearest" in loaded.description) == (upsampling == "nearest")
    assert np.abs(np.asarray(loaded.model(x, training=False)) - expected).max() <= 1e-4
    with pytest.raises(UserError, match="--preset paper contradicts"):
        load(path, "paper")


def test_other_official_checkpoints_are_refused_with_the_reason():
    from deblur_gan.convert import detect_pytorch

    one_conv = {"model.1.weight": np.zeros((8, 3, 7, 7)), "model.10.conv_block.1.weight": np.zeros((32, 32, 3, 3))}
    with pytest.raises(UserError, match="one-conv block is not supported"):
        detect_pytorch(one_conv, "latest_net_G.pth")  # the March 2019 checkpoint in the repository
    with pytest.raises(UserError, match="is it the discriminator"):
        detect_pytorch({"model.0.weight": np.zeros((8, 3, 4, 4))}, "latest_net_D.pth")
