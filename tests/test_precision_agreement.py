"""``--precision auto`` (mixed_bfloat16 on CPUs with bfloat16 units) against the exact float32 path,
through each family's predict.py on a natural photo, with a small generator trained a little
(issue 10: the auto output within 40 dB PSNR of the float32 output)."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import numpy as np
import pytest

from common import precision
from common.image_io import read_image, write_image

# Small versions of each default preset: deep enough to accumulate rounding like the full ones.
SMALL = {
    "deblur_gan": {"ngf": 8, "n_blocks": 2},
    "srgan": {"filters": 16, "num_res_blocks": 2},
    "dgf_deblur": {"growth_rate": 8, "bottleneck_channels": 16, "n_blocks": 3, "dilations": (1, 2, 1)},
    "glcic_inpaint": {"filters": 8},
}
PHOTO_SIZE = {"srgan": 128}  # SRGAN's input is a quarter of it; the others: 64


def _benchmark(repo_root):
    """benchmarks/precision_agreement.py (its photos, and its short L1 fit of random weights)."""
    name = "precision_agreement_benchmark"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, repo_root / "benchmarks" / "precision_agreement.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _trained_run(family, root, bench):
    """A run directory whose generator was trained 40 L1 steps (random weights give flat outputs)."""
    from tiny_runs import make_tiny_run

    run = make_tiny_run(family, root, "small", **SMALL[family])
    loaded = importlib.import_module(f"{family}.inference").load(run)
    bench.fit(family, loaded, steps=40, lr=1e-3, seed=0)
    loaded.model.save_weights(str(run / "generator.weights.h5"))
    return run


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_auto_predict_agrees_with_float32(family, repo_root, tmp_path, capsys):
    auto = precision.resolve_inference_precision("auto", family)
    if auto == "float32" and family not in precision.INFERENCE_FLOAT32_FAMILIES:
        pytest.skip("no GPU and no bfloat16 units (AVX-512 BF16 / AMX) on this CPU: auto is float32 here")
    bench = _benchmark(repo_root)
    run = _trained_run(family, tmp_path / "runs", bench)
    image, options = bench.case_inputs(family, PHOTO_SIZE.get(family, 64))[0]
    write_image(tmp_path / "in" / "photo.png", image)
    flags = ["--weights", str(run), "--input", str(tmp_path / "in" / "photo.png")]
    hole = None
    if family == "glcic_inpaint":
        hole = options["mask"] > 0.5
        write_image(tmp_path / "mask.png", np.repeat(hole[..., None] * np.uint8(255), 3, axis=2))
        flags += ["--masks", str(tmp_path / "mask.png")]
    predict = importlib.import_module(f"{family}.predict")
    capsys.readouterr()
    assert predict.main([*flags, "--output", str(tmp_path / "auto")]) == 0  # the default: auto
    assert f"precision: {auto} (auto" in capsys.readouterr().err
    assert predict.main([*flags, "--output", str(tmp_path / "f32"), "--precision", "float32"]) == 0
    assert "precision: float32\n" in capsys.readouterr().err
    fast, exact = (read_image(tmp_path / d / "photo.png") for d in ("auto", "f32"))
    assert fast.shape == exact.shape == (image.shape[0] * (4 if family == "srgan" else 1),
                                         image.shape[1] * (4 if family == "srgan" else 1), 3)
    if hole is not None:  # outside the hole both are the input
        np.testing.assert_array_equal(fast[~hole], image[~hole])
        fast, exact = fast[hole], exact[hole]
    assert np.std(exact.astype(np.float64)) > 10  # an image, not a flat output that hides differences
    if auto == "float32":  # this family stays float32 under auto
        np.testing.assert_array_equal(fast, exact)
    score = _psnr(fast, exact)
    assert score >= 40.0, f"{family}: auto output {score:.1f} dB from float32"
    print(f"{family}: {score:.1f} dB")
