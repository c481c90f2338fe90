"""GLCIC presets and get_config."""

import dataclasses

import pytest

from common.errors import UserError
from glcic_inpaint import config as glcic_config
from glcic_inpaint.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, Config, get_config


def test_presets_and_default():
    assert set(PRESETS) == {"paper", "tadax"}
    assert DEFAULT_PRESET in PRESETS
    for name, preset in PRESETS.items():
        assert preset.preset == name
        assert isinstance(preset, Config)
        for field in ("batch_size", "epochs", "steps_per_epoch", "lr", "seed", "save_every"):
            assert getattr(preset, field) is not None


def test_paper_recipe():
    c = PRESETS["paper"]
    assert (c.image_size, c.resize_short_side, c.local_size) == (256, (256, 384), 128)
    assert (c.hole_min, c.hole_max, c.local_placement) == (96, 128, "centred")
    assert (c.value_range, c.output_activation, c.input_channels) == ("unit", "sigmoid", 4)
    assert c.hole_fill == "mean" and c.mask_channel
    assert c.phase_steps == (90_000, 10_000, 500_000)
    assert (c.optimizer, c.lr, c.rho, c.epsilon, c.batch_size) == ("adadelta", 1.0, 0.9, 1e-6, 96)
    assert c.alpha == 4e-4
    assert len(c.global_d_filters) == 6 and len(c.local_d_filters) == 5


def test_tadax_recipe():
    c = PRESETS["tadax"]
    assert (c.image_size, c.local_size, c.hole_min, c.hole_max) == (128, 64, 24, 48)
    assert (c.value_range, c.output_activation, c.input_channels) == ("signed", "tanh", 3)
    assert c.hole_fill == "zero" and not c.mask_channel and c.local_placement == "random"
    assert (c.optimizer, c.lr, c.batch_size, c.epsilon) == ("adam", 1e-3, 16, 1e-8)
    assert c.phase_steps == (100 * 322, 0, 400 * 322)  # 100 epochs MSE, no D-only phase
    assert (c.bn_momentum, c.bn_epsilon, c.bn_gamma_stddev) == (0.99, 1e-3, 0.1)
    assert len(c.global_d_filters) == 5 and len(c.local_d_filters) == 4


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["paper"].lr = 0.1


def test_get_config_overrides():
    c = get_config("tadax", lr=2e-4, holes=[1, 3])
    assert c.lr == 2e-4 and c.holes == (1, 3) and c.preset == "tadax"
    assert PRESETS["tadax"].lr == 1e-3  # the preset itself is untouched
    assert get_config(c) is not c and get_config(c) == c
    assert get_config().preset == DEFAULT_PRESET
    assert get_config(None, seed=3).seed == 3


def test_epochs_follow_the_phase_schedule():
    c = get_config("paper", phase_steps=(10, 5, 40), steps_per_epoch=10)
    assert c.epochs == 4 and c.total_steps == 40
    c = get_config("paper", phase_steps=(10, 5, 45))  # shorter than one 1000-step epoch
    assert (c.epochs, c.steps_per_epoch) == (1, 45)
    with pytest.raises(UserError, match="multiple of steps_per_epoch"):
        get_config("paper", phase_steps=(10, 5, 45), steps_per_epoch=10)
    c = get_config("paper", epochs=3, steps_per_epoch=100)
    assert c.phase_steps == (54, 6, 300)  # 90k / 10k / 500k scaled down: all three phases
    c = get_config("paper", epochs=200)
    assert c.phase_steps == (90_000, 10_000, 200_000)
    with pytest.raises(UserError, match="epochs"):
        get_config("paper", epochs=2, phase_steps=(1, 1, 5000))


def test_phase_of_step():
    c = get_config("paper", phase_steps=(3, 2, 8), steps_per_epoch=4)
    assert [c.phase(s) for s in range(8)] == [1, 1, 1, 2, 2, 3, 3, 3]
    t = get_config("tadax", phase_steps=(2, 0, 4), steps_per_epoch=2)
    assert [t.phase(s) for s in range(4)] == [1, 1, 3, 3]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_sample_overrides_are_valid_and_short(name):
    c = get_config(name, **SAMPLE_OVERRIDES)
    assert c.total_steps <= 1000 and c.image_size <= 96 and c.batch_size <= 8
    assert c.phase_steps[0] > 0 and c.phase_steps[1] > 0 and c.phase_steps[2] > sum(c.phase_steps[:2])


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"image_size": 30}, "multiple of 4"),
        ({"hole_max": 200}, "hole sizes"),
        ({"hole_min": 0}, "hole sizes"),
        ({"local_size": 512}, "local_size"),
        ({"value_range": "bytes"}, "value_range"),
        ({"local_placement": "middle"}, "local_placement"),
        ({"phase_steps": (10, 10, 5)}, "phase_steps"),
        ({"global_d_filters": (64,) * 9}, "global_d_filters"),
        ({"resize_short_side": (128, 300)}, "resize_short_side"),
        ({"colour": 1}, "unknown setting"),
    ],
)
def test_invalid_settings(overrides, match):
    with pytest.raises(UserError, match=match):
        get_config("paper", **overrides)


def test_unknown_preset_names_choices():
    with pytest.raises(UserError, match="paper, tadax"):
        get_config("otenim")


def test_to_dict_is_json_ready():
    import json

    data = PRESETS["paper"].to_dict()
    assert json.loads(json.dumps(data))["phase_steps"] == [90_000, 10_000, 500_000]
    assert glcic_config.Config(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()}) == PRESETS["paper"]
