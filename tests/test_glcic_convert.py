"""The official GLCIC Torch7 model: the completion network built in PyTorch (tiny widths, random
weights and BatchNorm statistics), written as completionnet_places2.t7 by a small Torch7 writer,
loaded here with no --preset, and compared with inpaint.lua's computation done in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError

FILTERS = 8
MEAN = np.array([0.458, 0.441, 0.404], np.float32)  # a dataset mean colour in [0, 1]


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="PyTorch computes the reference forward pass")
    from t7_writer import write_t7
    from upstream_models import glcic_torch_and_t7

    net, model = glcic_torch_and_t7(torch, FILTERS, seed=0)
    path = tmp_path_factory.mktemp("glcic") / "completionnet_places2.t7"
    write_t7(path, {"model": model, "mean": MEAN})
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (1, 24, 32, 3)).astype("float32")
    mask = np.zeros((1, 24, 32, 1), np.float32)
    mask[:, 5:17, 8:22] = 1
    # inpaint.lua: I - datamean, hole zeroed, cat M; out = I * (1 - M) + res * M
    chw = lambda a: torch.from_numpy(a.transpose(0, 3, 1, 2).copy())  # noqa: E731
    net_input = torch.cat([chw((image - MEAN) * (1 - mask)), chw(mask)], dim=1)
    with torch.no_grad():
        res = net(net_input).numpy().transpose(0, 2, 3, 1)
    expected = image * (1 - mask) + res * mask
    return path, image, mask, expected


def test_official_t7_is_detected_and_matches(official):
    from glcic_inpaint.inference import load, run

    path, image, mask, expected = official
    loaded = load(path)
    cfg = loaded.config
    assert (cfg.preset, cfg.filters, cfg.mask_channel, cfg.value_range) == ("paper", FILTERS, True, "unit")
    np.testing.assert_allclose(cfg.mean_color, MEAN, atol=1e-6)
    assert loaded.description.startswith("weights: completionnet_places2.t7 = official GLCIC")
    got = np.asarray(loaded.model([image, mask], training=False))
    assert np.abs(got - expected).max() <= 1e-4
    completed = run(loaded, np.round(image[0] * 255).astype(np.uint8), mask=mask[0, ..., 0])
    assert completed.shape == (24, 32, 3) and completed.dtype == np.uint8


def test_contradicting_preset_and_convert(official, tmp_path):
    from glcic_inpaint.convert import main
    from glcic_inpaint.inference import load

    path, image, mask, expected = official
    with pytest.raises(UserError, match="--preset tadax contradicts.*official GLCIC"):
        load(path, "tadax")
    out = tmp_path / "glcic.weights.h5"
    assert main(["--input", str(path), "--output", str(out)]) == 0
    again = load(out)  # the mean colour travels inside the converted file
    np.testing.assert_allclose(again.config.mean_color, MEAN, atol=1e-6)
    assert np.abs(np.asarray(again.model([image, mask])) - expected).max() <= 1e-4
