"""Exported generators (SavedModel, TFLite, ONNX) give the Keras model's pictures.

Each artifact is loaded with its own runtime and run on the same odd-sized uint8 image as the
family's ``inference.run`` (the Keras model, padded and cropped in numpy): >= 50 dB PSNR. The
artifacts are made, as ``export.py`` makes them, from ``Loaded.inference_network()`` (BatchNormalization
folded into the convs). Tiny widths and images keep the converters fast.
"""

import importlib
import sys

import keras
import numpy as np
import pytest

from common import export as ex
from common.errors import UserError
from common.inference import pad_to_multiple
from common.metrics import psnr

H, W = 37, 50  # odd sizes: both sides need padding to a multiple of 4
MIN_PSNR = 50.0
# and nearly every value identical: a rounding or padding slip can keep PSNR near 50 dB
MAX_DIFFERENT = 0.01

# (family, preset, tiny architecture); ids name the variant
CASES = {
    "deblur_gan-paper": ("deblur_gan", "paper", {"ngf": 4, "n_blocks": 1}),  # InstanceNorm, reflect pad, transposed conv
    "deblur_gan-nearest": ("deblur_gan", "keras-port", {"ngf": 4, "n_blocks": 1, "upsampling": "nearest"}),
    "srgan-bubbliiiing": ("srgan", "bubbliiiing", {"filters": 8, "num_res_blocks": 1, "upsample_filters": 16}),
    "srgan-paper": ("srgan", "paper", {"filters": 8, "num_res_blocks": 1, "upsample_filters": 16}),  # LR in [0, 1]
    "dgf_deblur-keras": ("dgf_deblur", "keras", {"growth_rate": 4, "bottleneck_channels": 8, "n_blocks": 2,
                                                 "dilations": (1, 2)}),
    "glcic_inpaint-paper": ("glcic_inpaint", "paper", {"filters": 4, "mean_color": (0.5, 0.45, 0.4)}),
    "glcic_inpaint-tadax": ("glcic_inpaint", "tadax", {"filters": 8}),  # [-1, 1], zero fill, 3 channels
}
ONE_PER_FAMILY = ["deblur_gan-paper", "srgan-bubbliiiing", "dgf_deblur-keras", "glcic_inpaint-paper"]


def _build(family, config):
    if family == "glcic_inpaint":
        from glcic_inpaint.model import build_completion_network, build_inpainter

        return build_inpainter(build_completion_network(config), config, config.mean_color)
    model = importlib.import_module(f"{family}.model")
    return model.build_generator(preset=config)


def tiny(case):
    """``(loaded, spec)``: a tiny generator with random weights (BatchNorm statistics and all)."""
    from common.weights import Loaded

    family, preset, overrides = CASES[case]
    config = importlib.import_module(f"{family}.config").get_config(preset, **overrides)
    model = _build(family, config)
    rng = np.random.default_rng(len(case))
    # positive stay positive (BatchNorm variances), everything moves away from its initial value
    model.set_weights([w * rng.uniform(0.7, 1.3, w.shape).astype("float32")
                       + (0 if np.all(w > 0) else rng.normal(0, 0.05, w.shape).astype("float32"))
                       for w in model.get_weights()])
    if family == "glcic_inpaint":
        # BatchNorm with unit statistics shrinks a random signal over Table 1's 16 layers, leaving
        # nearly constant holes; a 10x larger output conv spreads them out again
        output = model.get_layer("completion_network").get_layer("conv11")
        output.set_weights([output.get_weights()[0] * 10, *output.get_weights()[1:]])
    spec = importlib.import_module(f"{family}.export").export_spec(config)
    return Loaded(model, config, None, f"tiny {case}"), spec


def inputs(spec, height=H, width=W, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {"image": rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)}
    if spec.mask:
        mask = (rng.random((batch, height, width, 1)) < 0.3).astype(np.uint8)  # scattered pixels
        mask[:, height // 4: height // 4 + 12, width // 3: width // 3 + 15] = 1
        mask[:, -3:, :5] = 1  # a hole at the border
        feeds["mask"] = mask
    return feeds


def keras_reference(loaded, spec, feeds):
    """The family's own inference (numpy padding, the Keras model) on each image of the batch."""
    run = importlib.import_module(f"{spec.family}.inference").run
    outs = []
    for i, image in enumerate(feeds["image"]):
        options = {"mask": feeds["mask"][i, ..., 0].astype(np.float32)} if spec.mask else {}
        outs.append(run(loaded, image, **options))
    out = np.stack(outs)
    made = out[feeds["mask"][..., 0] > 0] if spec.mask else out  # what the network made
    assert len(np.unique(made)) > 10, "degenerate reference (constant network): the test would prove nothing"
    return out


def check(out, reference, spec, feeds):
    batch, height, width = feeds["image"].shape[:3]
    assert out.dtype == np.uint8
    assert out.shape == (batch, height * spec.scale, width * spec.scale, 3)
    for got, want in zip(out, reference):
        assert psnr(got, want) >= MIN_PSNR
        difference = np.abs(got.astype(int) - want.astype(int))
        assert difference.max() <= 1 and np.mean(difference > 0) <= MAX_DIFFERENT
    if spec.mask:  # known pixels exactly the input's
        known = feeds["mask"][..., 0] == 0
        np.testing.assert_array_equal(out[known], feeds["image"][known])


def run_savedmodel(saved, feeds, signature="serving_default"):
    """Run a SavedModel (a path, or what ``tf.saved_model.load`` returned) on ``feeds``."""
    import tensorflow as tf

    if not hasattr(saved, "signatures"):
        saved = tf.saved_model.load(str(saved))
    function = saved.signatures[signature]
    return function(**{k: tf.constant(v) for k, v in feeds.items()})["output"].numpy()


def tflite_runner(path):
    import tensorflow as tf

    return tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")


def run_onnx(path, feeds):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], feeds)[0]


# ----------------------------------------------------------------------------- graph pieces
@pytest.mark.parametrize("size", [(37, 50), (2, 9), (1, 1), (8, 3), (5, 4)])
def test_graph_padding_equals_numpy_padding(size):
    # reflect, or symmetric when a side is shorter than its padding, as common.inference does
    image = np.random.default_rng(1).uniform(size=(*size, 2)).astype("float32")
    padded, _ = ex.pad_to_multiple(image[None], 4)
    np.testing.assert_array_equal(np.asarray(padded)[0], pad_to_multiple(image, 4))


def test_graph_padding_pads_masks_with_known_pixels():
    mask = np.ones((1, 5, 6, 1), np.float32)
    _, padded = ex.pad_to_multiple(np.zeros((1, 5, 6, 3), np.float32), 4, mask)
    padded = np.asarray(padded)[0, ..., 0]
    assert padded.shape == (8, 8)
    assert padded[:5, :6].all() and not padded[5:].any() and not padded[:, 6:].any()


def test_mixed_precision_model_is_exported_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    loaded, spec = tiny("deblur_gan-nearest")
    keras.config.set_dtype_policy("float32")
    assert loaded.model.get_layer("conv_in").dtype_policy.name == "mixed_bfloat16"
    copy = ex.export_model(loaded.model, tflite=True)
    assert copy.get_layer("conv_in").dtype_policy.compute_dtype == "float32"
    assert type(copy.get_layer("up1_upsample")).__name__ == "NearestUpsampling2D"
    for a, b in zip(copy.get_weights(), loaded.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the float32 copy computes what a float32 build with these weights computes
    float32, _ = tiny("deblur_gan-nearest")
    float32.model.set_weights(loaded.model.get_weights())
    x = np.random.default_rng(2).uniform(-1, 1, (1, 12, 16, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(copy(x)), np.asarray(float32.model(x)), atol=1e-5)


# ----------------------------------------------------------------------------- artifacts
# srgan-paper: test_export_script_writes_a_working_savedmodel; deblur_gan-nearest: the TFLite test
@pytest.mark.parametrize("case", ONE_PER_FAMILY + ["glcic_inpaint-tadax"])
def test_savedmodel_matches_keras(case, tmp_path):
    import tensorflow as tf

    loaded, spec = tiny(case)
    feeds = inputs(spec, batch=2)
    saved = tf.saved_model.load(str(ex.export(loaded.inference_network(), spec, "savedmodel", tmp_path / "saved")))
    out = run_savedmodel(saved, feeds)
    check(out, keras_reference(loaded, spec, feeds), spec, feeds)
    if spec.mask:  # a float32 0/1 mask (its own signature) and a 0/255 mask mean the same
        as_float = {**feeds, "mask": feeds["mask"].astype(np.float32)}
        np.testing.assert_array_equal(run_savedmodel(saved, as_float, "float_mask"), out)
        np.testing.assert_array_equal(run_savedmodel(saved, {**feeds, "mask": feeds["mask"] * 255}), out)


@pytest.mark.parametrize("case", ONE_PER_FAMILY + ["deblur_gan-nearest"])
def test_tflite_matches_keras_at_any_size(case, tmp_path):
    loaded, spec = tiny(case)
    path = ex.export(loaded.inference_network(), spec, "tflite", tmp_path / "model.tflite")
    runner = tflite_runner(path)
    # one interpreter, two sizes and batch sizes: the inputs are resized for each call
    for feeds in (inputs(spec), inputs(spec, 21, 30, batch=2, seed=1)):
        check(runner(**feeds)["output"], keras_reference(loaded, spec, feeds), spec, feeds)


def test_tflite_fixed_size(tmp_path):
    import tensorflow as tf

    loaded, spec = tiny("srgan-bubbliiiing")
    path = ex.export(loaded.inference_network(), spec, "tflite", tmp_path / "model.tflite", size=(H, W))
    interpreter = tf.lite.Interpreter(model_path=str(path))
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, H, W, 3]
    feeds = inputs(spec)
    out = interpreter.get_signature_runner("serving_default")(**feeds)["output"]
    check(out, keras_reference(loaded, spec, feeds), spec, feeds)


@pytest.mark.parametrize("case", ONE_PER_FAMILY)
def test_onnx_matches_keras(case, tmp_path):
    pytest.importorskip("tf2onnx", reason="ONNX export needs tf2onnx (requirements-dev.txt)")
    pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime (requirements-dev.txt)")
    loaded, spec = tiny(case)
    path = ex.export(loaded.inference_network(), spec, "onnx", tmp_path / "model.onnx")
    for feeds in (inputs(spec), inputs(spec, 21, 30, batch=2, seed=1)):
        check(run_onnx(path, feeds), keras_reference(loaded, spec, feeds), spec, feeds)


# ----------------------------------------------------------------------------- command line
def _tiny_run(tmp_path, case):
    """A run directory (config.json + generator.weights.h5) holding the tiny model of ``case``."""
    import dataclasses
    import json

    loaded, _ = tiny(case)
    run = tmp_path / "run"
    run.mkdir()
    loaded.model.save_weights(str(run / "generator.weights.h5"))
    record = {"family": CASES[case][0], "config": dataclasses.asdict(loaded.config)}
    (run / "config.json").write_text(json.dumps(record, default=list))
    return run, loaded


def test_export_script_writes_a_working_savedmodel(tmp_path, capsys):
    from srgan.export import main

    run, loaded = _tiny_run(tmp_path, "srgan-paper")
    assert main(["--weights", str(run), "--format", "savedmodel", "--output", str(tmp_path / "out")]) == 0
    assert "wrote savedmodel" in capsys.readouterr().out
    # each weight of the inference network (BatchNormalization folded into the convs) stored once
    stored = sum(f.stat().st_size for f in (tmp_path / "out" / "variables").glob("variables.data-*"))
    weights = sum(w.size * 4 for w in loaded.inference_network().get_weights())
    assert weights < sum(w.size * 4 for w in loaded.model.get_weights())
    assert weights <= stored < 1.5 * weights
    spec = ex.ExportSpec("srgan", scale=4, input_range="unit")
    feeds = inputs(spec, 9, 13)
    check(run_savedmodel(tmp_path / "out", feeds), keras_reference(loaded, spec, feeds), spec, feeds)


def test_export_script_user_errors(tmp_path, monkeypatch):
    from dgf_deblur.export import main

    run, _ = _tiny_run(tmp_path, "dgf_deblur-keras")
    with pytest.raises(UserError, match="--size"):
        main(["--weights", str(run), "--format", "savedmodel", "--output", str(tmp_path / "o"), "--size", "8x8"])
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        main(["--weights", str(run), "--format", "tflite", "--output", str(tmp_path / "taken")])
    # never written over: the weights, or the run directory
    weights = (run / "generator.weights.h5").read_bytes()
    with pytest.raises(UserError, match="not a .tflite file"):
        main(["--weights", str(run), "--format", "tflite", "--output", str(run / "generator.weights.h5")])
    with pytest.raises(UserError, match="other files in it"):
        main(["--weights", str(run), "--format", "savedmodel", "--output", str(run)])
    assert (run / "generator.weights.h5").read_bytes() == weights
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "generator.weights.h5"]
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if tf2onnx were not installed
    with pytest.raises(UserError, match="needs tf2onnx"):
        main(["--weights", str(run), "--format", "onnx", "--output", str(tmp_path / "m.onnx")])
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "o").exists()
