"""leftthomas/ImageDeblurring's Keras 2 generator file: rebuilt in tf-keras (tiny channel rate,
the ten dense blocks), random weights and BatchNorm statistics, loaded with no --preset."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError

CHANNEL_RATE = 4


def test_leftthomas_h5_is_detected_and_matches(tmp_path):
    tk = pytest.importorskip("tf_keras", reason="tf-keras is needed to write Keras 2 .h5 files")
    from dgf_deblur.convert import main
    from dgf_deblur.inference import load, run
    from upstream_models import leftthomas_generator, randomize_keras2

    upstream = leftthomas_generator(tk, CHANNEL_RATE)
    randomize_keras2(upstream, 3)
    path = tmp_path / "generator_weights.h5"
    upstream.save_weights(str(path), save_format="h5")
    image = np.random.default_rng(2).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    x = (image.astype("float32") / 127.5 - 1.0)[None]
    expected = upstream(x, training=False).numpy()[0]

    loaded = load(path)
    cfg = loaded.config
    assert (cfg.preset, cfg.growth_rate, cfg.bottleneck_channels, cfg.n_blocks) == ("keras", 4, 16, 10)
    assert (cfg.tail_input, cfg.global_skip) == ("last", "concat")
    assert "leftthomas" in loaded.description
    assert np.abs(np.asarray(loaded.model(x, training=False))[0] - expected).max() <= 1e-4
    out = run(loaded, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round((expected + 1) * 127.5).astype(int)).max() <= 1

    with pytest.raises(UserError, match="--preset paper contradicts.*leftthomas"):
        load(path, "paper")
    converted = tmp_path / "dgf.weights.h5"
    assert main(["--input", str(path), "--output", str(converted)]) == 0
    again = load(converted)
    assert again.config.growth_rate == CHANNEL_RATE
    np.testing.assert_allclose(np.asarray(again.model(x)), np.asarray(loaded.model(x)), atol=1e-6)
