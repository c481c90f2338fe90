"""--deterministic: two identical runs through common.training.train give bit-identical weights."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import toy_gan
from common import determinism
from common.cli import train_parser
from common.training import train


@pytest.fixture
def restore_determinism():
    before = determinism.is_enabled()
    yield
    if not before:
        determinism.disable()


def _weights(run_dir):
    model = toy_gan.build_generator()
    model.load_weights(run_dir / "generator.weights.h5")
    return model.get_weights()


def test_two_runs_are_bitwise_equal(tmp_path, restore_determinism):
    # the gradient penalty's random mixing factors and Adam make this more than a forward pass
    config = toy_gan.ToyConfig(epochs=1, steps_per_epoch=4, save_every=4, gradient_penalty=True)
    runs = [train(toy_gan.toy_job(tmp_path / f"run{i}", config, deterministic=True)) for i in range(2)]
    first, second = (_weights(run) for run in runs)
    assert len(first) == 4
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and np.array_equal(a, b)  # bit for bit, not allclose
    keras.utils.set_random_seed(config.seed)  # the initial weights train() starts from
    initial = toy_gan.build_generator().get_weights()
    assert any(not np.array_equal(a, f) for a, f in zip(first, initial))  # the runs trained
    record = json.loads((runs[0] / "config.json").read_text())
    assert record["deterministic"] is True


def test_flag_enables_op_determinism_when_parsed(restore_determinism):
    determinism.disable()
    parser = train_parser("toy", {"p": None}, "p", "toy")
    args = parser.parse_args([])
    assert args.deterministic is False and not determinism.is_enabled()
    args = parser.parse_args(["--deterministic"])
    assert args.deterministic is True and determinism.is_enabled()
