"""benchmarks/learning.py on tiny data (a few steps), and common.learning_curves' arithmetic."""

import importlib.util
import math
import sys

import numpy as np
import pytest

from common import learning_curves as lc


def _load_script(repo_root):
    spec = importlib.util.spec_from_file_location("learning_benchmark", repo_root / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _tiny_srgan_args(out):
    """Three steps of a tiny SRResNet on one photo, evaluated at steps 0, 2 and 3."""
    return ["--family", "srgan", "--out", str(out), "--photos", "1", "--test-images", "1",
            "--max-steps", "3", "--eval-every", "2", "--", "--res-blocks", "1",
            "--filters", "8", "--hr-crop", "32", "--batch-size", "2", "--precision", "float32"]


def test_script_writes_curve_csv_and_plot(repo_root, tmp_path, capsys):
    script = _load_script(repo_root)
    out = tmp_path / "out"
    code = script.main(_tiny_srgan_args(out))
    assert code == 0
    printed = capsys.readouterr().out
    assert "srgan paper: did not cross" in printed or "srgan paper: crossed" in printed

    lines = (out / "curve.csv").read_text().splitlines()
    header = [line for line in lines if line.startswith("# ")]
    body = [line for line in lines if not line.startswith("# ")]
    assert body[0] == "step,seconds,metric,baseline"
    keys = {line[2:].split(": ", 1)[0] for line in header}
    assert {"family", "preset", "precision", "content loss", "machine", "train.py flags", "result"} <= keys
    curve = lc.read_csv(out / "curve.csv")
    assert [p.step for p in curve.points] == [0, 2, 3]  # step 0, every 2 steps, and the last step
    assert curve.points[0].seconds == 0 and curve.points[2].seconds >= curve.points[1].seconds
    assert all(np.isfinite([p.metric for p in curve.points]))
    # the baseline is bicubic upscaling of the held-out image, the same at every point, and a real
    # PSNR (not the untrained model's)
    assert len({p.baseline for p in curve.points}) == 1 and curve.points[0].baseline > 20
    assert curve.header["precision"] == "float32"

    png = (out / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    # the training ran through train.py's driver in out/run
    assert (out / "run" / "config.json").is_file() and (out / "run" / ".learning-benchmark").is_file()


def test_held_out_scenes_are_not_training_scenes(repo_root):
    _load_script(repo_root)  # puts benchmarks/ on sys.path
    import learning_data

    assert not set(learning_data.TRAIN_PHOTOS) & set(learning_data.TEST_PHOTOS)
    assert "chelsea" in learning_data.TEST_PHOTOS


def _curve(values, baseline=20.0, steps=None):
    steps = steps or [100 * i for i in range(len(values))]
    return lc.Curve([lc.Point(s, s / 2.0, v, baseline) for s, v in zip(steps, values)])


def test_crossing_is_the_first_point_above_the_baseline():
    curve = _curve([25.0, 18.0, 19.5, 20.5, 19.9, 21.0])  # step 0 above does not count
    assert curve.crossing().step == 300
    assert _curve([10.0, 12.0]).crossing() is None
    assert "crossed the baseline at step 300 (2.5 min" in lc.summary(curve)


def test_projected_crossing_fits_metric_against_log_step():
    steps = [0, 100, 200, 400, 800, 1600]
    # metric - baseline = 2 * ln(step) - 2 * ln(5000): reaches 0 at step 5000
    values = [0.0] + [20.0 + 2 * math.log(s) - 2 * math.log(5000) for s in steps[1:]]
    curve = _curve(values, steps=steps)
    assert curve.crossing() is None
    assert abs(curve.projected_crossing() - 5000) <= 1
    text = lc.summary(curve, 10_000)
    assert "near step 5000" in text and "schedule is 10000 steps" in text
    assert _curve([5.0, 6.0, 5.0, 4.0]).projected_crossing() is None  # falling: no projection


def test_csv_round_trip(tmp_path):
    curve = _curve([12.0, 15.5, 21.25])
    curve.header = {"family": "srgan", "content loss": "l1 (ImageNet VGG unavailable)"}
    lc.write_csv(tmp_path / "c.csv", curve)
    back = lc.read_csv(tmp_path / "c.csv")
    assert back.header == curve.header
    assert [(p.step, p.metric) for p in back.points] == [(0, 12.0), (100, 15.5), (200, 21.25)]


@pytest.mark.parametrize("argv", [["--family", "srgan", "--minutes", "0"],
                                  ["--family", "srgan", "--eval-every", "0"]])
def test_bad_numbers_are_one_line_errors(repo_root, argv):
    from common.errors import UserError

    script = _load_script(repo_root)
    with pytest.raises(UserError, match="must be positive"):
        script.main(argv)


def test_demo_standing_compares_held_out_means():
    from common.metrics import psnr

    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    noisy = [np.clip(t.astype(int) + rng.integers(-20, 21, t.shape), 0, 255).astype(np.uint8) for t in targets]
    items = list(zip(noisy, targets))
    line = lc.demo_standing("deblur_gan", items, load=lambda: "model", run=lambda model, x: x,
                            baseline=lambda x: x // 2,
                            metric=lambda image, target, given: psnr(image, target),
                            name="deblurred", baseline_name="halved")
    ours = np.mean([psnr(n, t) for n, t in items])
    base = np.mean([psnr(n // 2, t) for n, t in items])
    assert f"deblurred {ours:.2f} dB, halved {base:.2f} dB (above the baseline" in line
    assert "python benchmarks/learning.py --family deblur_gan" in line


def test_interrupted_run_keeps_its_curve(repo_root, tmp_path, capsys, monkeypatch):
    """SIGTERM / Ctrl-C mid-run (the driver raises TrainingInterrupted after its checkpoint): the
    points made so far are in curve.csv, with a ``stopped`` line, and the plot is drawn."""
    from common import training
    from common.errors import TrainingInterrupted

    script = _load_script(repo_root)
    real_train = training.train

    def train_then_interrupt(job):
        try:
            real_train(job)  # the recorder's evaluations at steps 0, 2 and 3 (max-steps) ...
        except lc.BudgetReached:  # ... where a signal stops it instead of the budget
            raise TrainingInterrupted(3, "SIGTERM", "run") from None

    # recording() wraps whatever training.train is when it starts
    monkeypatch.setattr(training, "train", train_then_interrupt)
    out = tmp_path / "out"
    code = script.main(_tiny_srgan_args(out))
    assert code == 0
    assert "stopped by SIGTERM at step 3" in capsys.readouterr().out
    curve = lc.read_csv(out / "curve.csv")
    assert [p.step for p in curve.points] == [0, 2, 3]
    assert curve.header["stopped"].startswith("SIGTERM at step 3")
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_csv_is_rewritten_after_every_evaluation(tmp_path):
    """A run killed without warning (SIGKILL, power) keeps every evaluation already made."""
    seen = []
    recorder = lc.CurveRecorder(lambda config: None, lambda model, config: (1.0, 2.0), 1, 60.0,
                                log=lambda text: None,
                                on_point=lambda curve: seen.append(len(curve.points)))

    class FakeGenerator:
        def get_weights(self):
            return []

    class FakeModel:
        global_step = 0
        generator = FakeGenerator()

    class FakeEval:
        def set_weights(self, weights):
            pass

    recorder.set_model(FakeModel())
    recorder._eval_model = FakeEval()
    recorder.on_train_begin()
    for step in (1, 2):
        FakeModel.global_step = step
        recorder.on_train_batch_end(step)
    assert seen == [1, 2, 3]


def test_training_files_are_not_grouped_by_scene(repo_root, tmp_path):
    """Sorted training names interleave the scenes (a recipe walking files in order, DGF keras,
    must not see one photo's rotations and crops in a row); held-out names stay plain."""
    _load_script(repo_root)
    import learning_data

    counts = learning_data.build("images", tmp_path, photos=2, test_images=1)
    names = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert counts["train"] == len(names) == 2 * 4 * 2  # photos x rotations x crops
    scenes = [name.split("_", 1)[1].split("_r")[0] for name in names]
    changes = sum(a != b for a, b in zip(scenes, scenes[1:]))
    assert changes > 1  # grouped by scene there would be exactly one change
    assert sorted(int(name.split("_", 1)[0]) for name in names) == list(range(len(names)))
    assert sorted(p.name for p in (tmp_path / "test").iterdir())[0].startswith(learning_data.TEST_PHOTOS[0])
