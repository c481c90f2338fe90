"""DeblurGAN upstream releases: each built in its own framework with random weights, saved in its own
format, loaded here with no --preset (detected), and compared with the upstream forward pass."""

from __future__ import annotations

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
def _official_generator(torch, ngf=NGF, blocks=BLOCKS, dropout=True):
    """KupynOrest/DeblurGAN models/networks.py ResnetGenerator before PR #134 (InstanceNorm without
    affine, two-conv ResnetBlock with Dropout(0.5), --learn_residual clamp)."""
    nn = torch.nn

    def norm(c):
        return nn.InstanceNorm2d(c, affine=False)

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim), nn.ReLU(True)]
            layers += [nn.Dropout(0.5)] if dropout else []
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim)]
            self.conv_block = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv_block(x)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
            for i in range(2):
                m = 2 ** i
                layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1), norm(ngf * m * 2), nn.ReLU(True)]
            layers += [Block(ngf * 4) for _ in range(blocks)]
            for i in range(2):
                m = 2 ** (2 - i)
                layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1),
                           norm(ngf * m // 2), nn.ReLU(True)]
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
            self.model = nn.Sequential(*layers)

        def forward(self, x):
            return torch.clamp(x + self.model(x), -1, 1)

    torch.manual_seed(0)
    net = Generator().eval()
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


def test_predict_runs_the_pth_without_torch_and_refuses_a_contradiction(official_files, tmp_path):
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

    proc = subprocess.run([sys.executable, str(REPO / "deblur_gan" / "predict.py"), "--weights",
                           str(root / "latest_net_G.pth"), "--preset", "keras-port", "--input", str(photos),
                           "--output", str(tmp_path / "out2")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error:") and "keras-port" in last and "paper" in last


def test_convert_writes_our_format_that_loads_without_detection(official_files, tmp_path):
    from deblur_gan.convert import main
    from deblur_gan.inference import load

    root, x, expected = official_files
    out = tmp_path / "official.weights.h5"
    assert main(["--input", str(root / "latest_net_G.pth"), "--output", str(out)]) == 0
    loaded = load(out)
    assert loaded.config.preset == "paper" and loaded.config.ngf == NGF
    assert np.abs(np.asarray(loaded.model(x, training=False)) - expected).max() <= 1e-4


# ----------------------------------------------------------------------------- Keras port (Keras 2)
def _keras_port_generator(tf_keras, upsampling, ngf=NGF, blocks=BLOCKS):
    """RaphaelMeudec/deblur-gan deblurgan/model.py generator_model (+ layer_utils.res_block), in tf-keras."""
    import tensorflow as tf

    L = tf_keras.layers

    def reflect(p):
        return L.Lambda(lambda t: tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT"))

    inputs = L.Input((None, None, 3))
    x = reflect(3)(inputs)
    x = L.Conv2D(ngf, 7, padding="valid")(x)
    x = L.Activation("relu")(L.BatchNormalization()(x))
    for i in range(2):
        x = L.Conv2D(ngf * 2 ** i * 2, 3, strides=2, padding="same")(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
    for _ in range(blocks):
        y = reflect(1)(x)
        y = L.Conv2D(ngf * 4, 3)(y)
        y = L.Activation("relu")(L.BatchNormalization()(y))
        y = L.Dropout(0.5)(y)
        y = reflect(1)(y)
        y = L.BatchNormalization()(L.Conv2D(ngf * 4, 3)(y))
        x = L.Add()([x, y])
    for i in range(2):
        filters = ngf * 2 ** (2 - i) // 2
        if upsampling == "nearest":
            x = L.Conv2D(filters, 3, padding="same")(L.UpSampling2D()(x))
        else:
            x = L.Conv2DTranspose(filters, 3, strides=2, padding="same")(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
    x = reflect(3)(x)
    x = L.Activation("tanh")(L.Conv2D(3, 7, padding="valid")(x))
    outputs = L.Lambda(lambda z: z / 2)(L.Add()([x, inputs]))
    model = tf_keras.Model(inputs, outputs)
    rng = np.random.default_rng(2)
    weights = []
    for w in model.weights:  # random kernels, and BatchNorm statistics far from (0, 1)
        name = w.name
        if "moving_variance" in name:
            weights.append(rng.uniform(0.5, 2.0, w.shape))
        elif "moving_mean" in name or "beta" in name:
            weights.append(rng.normal(0, 0.3, w.shape))
        elif "gamma" in name:
            weights.append(rng.uniform(0.5, 1.5, w.shape))
        else:
            weights.append(rng.normal(0, 0.2, w.shape))
    model.set_weights([w.astype("float32") for w in weights])
    return model


@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_keras_port_h5_variant_is_detected_and_matches_keras2(tmp_path, upsampling):
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is needed to write Keras 2 .h5 files")
    from deblur_gan.inference import load

    upstream = _keras_port_generator(tf_keras, upsampling)
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
