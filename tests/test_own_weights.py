"""common.own_weights: our .weights.h5 / .keras / checkpoints / run directories, and the one-line
errors for truncated, corrupt and mismatched files."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from common.own_weights import list_checkpoints, load_own_weights, newest_checkpoint


def tiny(width: int = 4, extra: bool = False, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", name="c1")(inputs)
    if extra:
        x = keras.layers.Conv2D(width, 3, padding="same", name="c2")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="out")(x)
    return keras.Model(inputs, x, name="g")


def same_weights(a: keras.Model, b: keras.Model) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def write_checkpoints(folder, generator, steps):
    """A run's checkpoints/ as common.training writes them (G, D, step)."""
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(generator=generator, discriminator=tiny(seed=9), step=step)
    manager = tf.train.CheckpointManager(ckpt, str(folder / "checkpoints"), max_to_keep=3)
    for s in steps:
        step.assign(s)
        generator.get_layer("out").bias.assign(np.full(3, s, np.float32))
        manager.save(checkpoint_number=s)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    model = tiny(seed=1)
    model.save_weights(folder / "generator.weights.h5")
    model.save(folder / "generator.keras")
    return folder, model


def test_weights_h5_and_keras_load_exactly(saved):
    folder, model = saved
    for name in ("generator.weights.h5", "generator.keras"):
        fresh = tiny(seed=2)
        assert not same_weights(fresh, model)
        text = load_own_weights(fresh, folder / name)
        assert name in text
        assert same_weights(fresh, model)


def test_run_directory_prefers_the_export(saved):
    folder, model = saved
    fresh = tiny(seed=3)
    assert "generator.weights.h5" in load_own_weights(fresh, folder)
    assert same_weights(fresh, model)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
@pytest.mark.parametrize("name", ["generator.weights.h5", "generator.keras"])
def test_broken_files_give_one_line(saved, tmp_path, damage, name):
    folder, _ = saved
    data = (folder / name).read_bytes()
    broken = {"truncated": data[: len(data) // 2], "empty": b"",
              "garbage": b"not a weights file\n" * 50}[damage]
    target = tmp_path / name
    target.write_bytes(broken)
    with pytest.raises(UserError) as info:
        load_own_weights(tiny(), target)
    message = str(info.value)
    assert str(target) in message and "\n" not in message
    assert "again" in message  # says what to do


@pytest.mark.parametrize("name", ["generator.weights.h5", "generator.keras"])
def test_other_architecture_is_named(saved, name):
    folder, _ = saved
    for other in (tiny(width=8), tiny(extra=True)):
        with pytest.raises(UserError, match="do not fit|does not fit"):
            load_own_weights(other, folder / name)


def test_interrupted_run_uses_newest_checkpoint(tmp_path):
    trained = tiny(seed=4)
    write_checkpoints(tmp_path, trained, [10, 20])
    assert [n for n, _ in list_checkpoints(tmp_path / "checkpoints")] == [20, 10]
    assert newest_checkpoint(tmp_path)[1] == 20
    fresh = tiny(seed=5)
    text = load_own_weights(fresh, tmp_path)
    assert "step 20" in text and "did not finish" in text
    assert same_weights(fresh, trained)
    np.testing.assert_array_equal(fresh.get_layer("out").bias.numpy(), [20, 20, 20])
    # a checkpoint prefix names the step itself
    older = tiny(seed=6)
    assert "step 10" in load_own_weights(older, tmp_path / "checkpoints" / "ckpt-10")
    np.testing.assert_array_equal(older.get_layer("out").bias.numpy(), [10, 10, 10])


def test_corrupt_newest_checkpoint_falls_back(tmp_path):
    trained = tiny(seed=4)
    write_checkpoints(tmp_path, trained, [10, 20])
    data = next((tmp_path / "checkpoints").glob("ckpt-20.data-*"))
    data.write_bytes(data.read_bytes()[:40])  # cut off mid-write
    fresh = tiny(seed=5)
    text = load_own_weights(fresh, tmp_path)
    assert "step 10" in text and "ckpt-20" in text  # says which one it skipped
    np.testing.assert_array_equal(fresh.get_layer("out").bias.numpy(), [10, 10, 10])
    # an index without its data file (a write that never finished) is not a checkpoint
    (tmp_path / "checkpoints" / "ckpt-30.index").write_bytes(b"x")
    assert [n for n, _ in list_checkpoints(tmp_path / "checkpoints")] == [20, 10]


def test_all_checkpoints_corrupt_or_mismatched(tmp_path):
    write_checkpoints(tmp_path, tiny(seed=4), [10])
    with pytest.raises(UserError, match="does not fit"):
        load_own_weights(tiny(width=8), tmp_path)
    data = next((tmp_path / "checkpoints").glob("ckpt-10.data-*"))
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.raises(UserError, match="unreadable") as info:
        load_own_weights(tiny(), tmp_path)
    assert "\n" not in str(info.value)


def test_missing_and_empty_run_directory(tmp_path):
    with pytest.raises(UserError, match="no such"):
        load_own_weights(tiny(), tmp_path / "nope.weights.h5")
    with pytest.raises(UserError, match="no generator.weights.h5 and no training checkpoints"):
        load_own_weights(tiny(), tmp_path)
