"""Runs survive faults: the run-directory lock, a crash or a full disk while a checkpoint is
written, an interrupted run used for inference, plain log lines, unreadable training data."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import toy_gan
from common.data import (
    open_pairs, pair_dataset, report_skipped_items, set_bad_item_limit,
)
from common.errors import UserError
from common.image_io import write_image
from common.own_weights import list_checkpoints, load_own_weights
from common.run_lock import LOCK_NAME, RunLock
from common.training import restore_newest_checkpoint, train

SHORT = toy_gan.ToyConfig(epochs=2, steps_per_epoch=2, save_every=2)  # checkpoints 2 and 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished toy run (checkpoints 2 and 4, exports), trained once; tests copy it."""
    return train(toy_gan.toy_job(tmp_path_factory.mktemp("finished") / "run", SHORT))


def _copy(run, tmp_path):
    import shutil

    return Path(shutil.copytree(run, tmp_path / "run"))


# ----------------------------------------------------------------------------- lock
@pytest.fixture
def other_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path, other_process, capsys):
    lock_file = tmp_path / LOCK_NAME
    lock_file.write_text(f"{other_process.pid} {os.uname().nodename} 2026-01-01 00:00:00\n")
    with pytest.raises(UserError, match=f"in use by training process {other_process.pid}"):
        RunLock(tmp_path).acquire()
    other_process.kill()
    other_process.wait()
    with RunLock(tmp_path):
        assert lock_file.read_text().split()[0] == str(os.getpid())
        assert "taking over the stale lock" in capsys.readouterr().err
    assert not lock_file.exists()  # released


def test_train_holds_the_lock(tmp_path, other_process, finished):
    run = _copy(finished, tmp_path)
    (run / LOCK_NAME).write_text(f"{other_process.pid} {os.uname().nodename} now\n")
    before = (run / "config.json").read_text()
    with pytest.raises(UserError, match="in use"):
        train(toy_gan.toy_job(run, SHORT))
    assert (run / "config.json").read_text() == before  # nothing touched
    (run / LOCK_NAME).unlink()
    train(toy_gan.toy_job(run, SHORT))  # complete already: exports again, under the lock
    assert (run / "generator.weights.h5").is_file() and not (run / LOCK_NAME).exists()


# ----------------------------------------------------------------------------- checkpoints
def _step_of(run_dir, prefix):
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(step=step).restore(prefix).expect_partial()
    return int(step.numpy())


def test_resume_skips_a_checkpoint_cut_off_mid_write(tmp_path, capsys, finished):
    run = _copy(finished, tmp_path)
    data = next((run / "checkpoints").glob("ckpt-4.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])  # the write was cut off
    capsys.readouterr()
    train(toy_gan.toy_job(run, toy_gan.ToyConfig(epochs=3, steps_per_epoch=2, save_every=2)))
    out = capsys.readouterr()
    assert "skipped unreadable checkpoint(s) ckpt-4" in out.err and "resuming from ckpt-2" in out.err
    assert "at step 2 of 6" in out.out
    newest = list_checkpoints(run / "checkpoints")[0]
    assert newest[0] == 6 and _step_of(run, newest[1]) == 6


def test_checkpoint_write_killed_midway_leaves_a_usable_one(tmp_path):
    """A process that keeps writing checkpoints is SIGKILLed while it writes;
    restore_newest_checkpoint finds a complete checkpoint whose values agree. (The same process
    shows the quiet start-up: nothing of TensorFlow's loading on its stderr.)"""
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        import common
        import tensorflow as tf
        value = tf.Variable(tf.zeros([2_000_000]))
        step = tf.Variable(0, dtype=tf.int64)
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=value, step=step),
                                             {str(tmp_path / 'ckpts')!r}, max_to_keep=3)
        for n in range(1, 10_000):
            value.assign(tf.fill([2_000_000], float(n)))
            step.assign(n)
            manager.save(checkpoint_number=n)
            if n == 1:
                print("saved", flush=True)
    """))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "saved"
    import time

    time.sleep(0.3)  # several more saves are under way
    proc.kill()
    proc.wait()
    assert proc.stderr.read().strip() == ""  # quiet start-up (common.quiet)
    value = tf.Variable(tf.zeros([2_000_000]))
    step = tf.Variable(0, dtype=tf.int64)
    prefix = restore_newest_checkpoint(tf.train.Checkpoint(value=value, step=step), tmp_path / "ckpts")
    assert prefix is not None and int(step.numpy()) >= 1
    np.testing.assert_array_equal(value.numpy()[[0, -1]], [float(step.numpy())] * 2)


def test_disk_full_while_saving_keeps_previous_checkpoint_and_exports(tmp_path, monkeypatch, finished):
    run = _copy(finished, tmp_path)
    exports = {name: (run / name).read_bytes() for name in ("generator.weights.h5", "generator.keras")}
    real_save = tf.train.CheckpointManager.save

    def full_disk(self, checkpoint_number=None, **kwargs):
        if checkpoint_number and checkpoint_number > 4:
            # what a full disk leaves: a partial file, then the error
            (run / "checkpoints" / f"ckpt-{checkpoint_number}.index").write_bytes(b"\0" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    trained_steps = []

    class RecordSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            trained_steps.append(int(self.model.global_step.numpy()))

    job = toy_gan.toy_job(run, toy_gan.ToyConfig(epochs=4, steps_per_epoch=2, save_every=2))
    job.callbacks.append(RecordSteps())
    with pytest.raises(UserError) as info:
        train(job)
    assert max(trained_steps) == 6  # the run stops at the failed save, it does not train on unsaved
    message = str(info.value)
    assert "No space left" in message and "ckpt-4" in message and "intact" in message
    assert "\n" not in message
    assert [n for n, _ in list_checkpoints(run / "checkpoints")] == [4, 2]
    assert not (run / "checkpoints" / "ckpt-6.index").exists()  # the partial file is removed
    assert {name: (run / name).read_bytes() for name in exports} == exports
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    # and the export itself failing: the message says the old ones are intact
    monkeypatch.setattr(type(toy_gan.build_generator()), "save_weights",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(UserError, match="previous exports .* intact"):
        train(toy_gan.toy_job(run, SHORT))
    assert {name: (run / name).read_bytes() for name in exports} == exports
    assert not list(run.glob(".export-*"))


def test_interrupted_run_gives_its_generator(tmp_path, finished):
    """A run with checkpoints but no export (stopped before the end) is usable for inference."""
    from common import cli

    run = _copy(finished, tmp_path)
    trained = toy_gan.build_generator()
    trained.load_weights(run / "generator.weights.h5")
    for name in ("generator.weights.h5", "generator.keras"):
        (run / name).unlink()
    run_dir, weights = cli.resolve_weights("toy", str(run))
    assert run_dir == run and weights == run / "checkpoints"
    fresh = toy_gan.build_generator()
    text = load_own_weights(fresh, weights)
    assert "step 4" in text
    for a, b in zip(fresh.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- logs
def test_plain_log_lines_without_a_terminal(tmp_path, capsys):
    config = toy_gan.ToyConfig(epochs=1, steps_per_epoch=6, save_every=6)
    train(toy_gan.toy_job(tmp_path / "run", config, log_every=2, progress=True))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    # step 1 (tracing) starts the clock; then every 2 steps
    assert [line.split()[1] for line in lines] == ["2/6", "4/6", "6/6"]
    assert all("g_total" in line and "steps/s" in line and "ETA" in line for line in lines)
    assert lines[-1].endswith("ETA 0:00:00")


# ----------------------------------------------------------------------------- training data
def _pairs(folder, count, bad=()):
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        write_image(folder / "A" / f"p{i}.png", image)
        write_image(folder / "B" / f"p{i}.png", image)
    for name, keep in bad:  # truncated: the header (keep 40 bytes) or the pixels (keep half)
        data = (folder / "B" / name).read_bytes()
        (folder / "B" / name).write_bytes(data[:40] if keep == "40" else data[: len(data) // 2])


def _take(dataset, count):
    return [tuple(x.numpy() for x in batch) for batch in dataset.take(count)]


def test_corrupt_training_image_is_skipped_counted_and_limited(tmp_path, capsys):
    _pairs(tmp_path, 6, bad=[("p2.png", "half"), ("p4.png", "40")])
    set_bad_item_limit(None)
    source = open_pairs(tmp_path)
    assert source.names == ["p0", "p1", "p2", "p3", "p5"]  # p4's header is unreadable: left out
    assert "skipped" in capsys.readouterr().err
    batches = _take(pair_dataset(source, 2, shuffle=False, flip=False), 6)
    assert len(batches) == 6
    # p2's pixels are unreadable: its place is taken by p3, so element 2 equals element 3
    np.testing.assert_array_equal(batches[1][1][0], batches[1][1][1])
    assert report_skipped_items("epoch 1") == 2
    err = capsys.readouterr().err
    assert "epoch 1: skipped 2 unreadable" in err and "p2.png" in err and "p4" not in err
    set_bad_item_limit(0)
    with pytest.raises(Exception) as info:
        _take(pair_dataset(source, 2, crop=(8, 8), shuffle=False), 2)
    assert "--max-bad-images" in str(info.value)
    set_bad_item_limit(None)


def test_mismatched_names_and_bad_hdf5_are_one_line(tmp_path):
    _pairs(tmp_path / "ab", 2)
    (tmp_path / "ab" / "B" / "p1.png").rename(tmp_path / "ab" / "B" / "q1.png")
    with pytest.raises(UserError, match="p1.*q1|q1.*p1") as info:
        open_pairs(tmp_path / "ab")
    assert "\n" not in str(info.value)
    with h5py.File(tmp_path / "keys.h5", "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(UserError, match="no train_data_full"):
        open_pairs(tmp_path / "keys.h5")
    with h5py.File(tmp_path / "shapes.h5", "w") as f:
        f["train_data_full"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["train_data_blur"] = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(UserError, match="expected uint8 \\(N, H, W, 3\\)"):
        open_pairs(tmp_path / "shapes.h5")
    (tmp_path / "odd").mkdir()
    write_image(tmp_path / "odd" / "x.png", np.zeros((4, 9, 3), np.uint8))
    with pytest.raises(UserError, match="odd width: x.png"):
        open_pairs(tmp_path / "odd")


# ----------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize("text", ['{"config": {"preset": "pa', "[1, 2]", '{"family": "x"}', "\xff\xfe"])
def test_corrupt_config_json_is_one_line(tmp_path, text):
    from common.cli import load_run_config

    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError) as info:
        load_run_config(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "config.json")) and "\n" not in str(info.value)


def test_run_cli_names_an_unexpected_file_error_in_one_line(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import errno\nfrom common.cli import run_cli\n"
                      "def main(argv=None):\n"
                      "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
                      "run_cli(main)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: [Errno 28] No space left on device; check the file, its permissions and the free "
        "disk space (GAN_RESTORATION_DEBUG=1 shows where)"]


# ----------------------------------------------------------------------------- quiet start-up
def test_start_up_noise_patterns():
    """What common.quiet drops (the subprocess of the checkpoint-kill test shows it working)."""
    from common.quiet import is_noise

    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert is_noise("I0000 00:00:1796004590.273498   12427 port.cc:153] oneDNN custom operations are on.")
    assert is_noise("E0000 00:00:1796004598.987053   12684 cuda_platform.cc:52] failed call to cuInit: x")
    assert is_noise("E0000 00:00:1796005234.922396   26838 meta_optimizer.cc:967] remapper failed: "
                    "INVALID_ARGUMENT: Mutation::Apply error: fanout 'x' exist for missing node 'y'.")
    assert not is_noise("E0000 00:00:17.1 1 op_kernel.cc:1] OP_REQUIRES failed: something real")
    assert not is_noise("error: x.png: cannot read image")


def test_predict_takes_an_interrupted_run_and_says_which_step(tmp_path):
    """A family run with checkpoints but no export: load() restores the generator and says so."""
    import json

    from srgan.config import Config
    from srgan.inference import load
    from tiny_runs import build, make_tiny_run

    run = make_tiny_run("srgan", tmp_path / "runs")
    config = Config.from_dict(json.loads((run / "config.json").read_text())["config"])
    trained = build("srgan", config)
    trained.load_weights(run / "generator.weights.h5")
    step = tf.Variable(37, dtype=tf.int64)
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=trained, step=step),
                               str(run / "checkpoints"), max_to_keep=3).save(checkpoint_number=37)
    (run / "generator.weights.h5").unlink()
    loaded = load(run)
    assert "step 37" in loaded.description and "did not finish" in loaded.description
    for a, b in zip(loaded.model.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["deblur_gan", "srgan", "dgf_deblur", "glcic_inpaint"])
def test_truncated_weights_are_one_error_line(family, tmp_path):
    import importlib

    from tiny_runs import make_tiny_run

    run = make_tiny_run(family, tmp_path / "runs")
    weights = run / "generator.weights.h5"
    weights.write_bytes(weights.read_bytes()[:3000])
    image = tmp_path / "x.png"
    write_image(image, np.zeros((8, 8, 3), np.uint8))
    predict = importlib.import_module(f"{family}.predict")
    for given in (run, weights):
        with pytest.raises(UserError) as info:
            predict.main(["--weights", str(given), "--input", str(image), "--output", str(tmp_path / "o")])
        assert str(weights) in str(info.value) and "\n" not in str(info.value)
