"""Tests for dgf_deblur.config: presets are complete and overrides are checked."""

from __future__ import annotations

import dataclasses

import pytest

from common.errors import UserError
from dgf_deblur.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, Config, get_config


def test_presets_and_default():
    assert set(PRESETS) == {"keras", "paper"}
    assert DEFAULT_PRESET in PRESETS
    for name in ("batch_size", "epochs", "steps_per_epoch", "lr", "seed", "save_every"):
        assert name in {f.name for f in dataclasses.fields(Config)}


def test_keras_preset_is_the_tutorial_recipe():
    c = get_config("keras")
    assert (c.growth_rate, c.bottleneck_channels, c.n_blocks) == (64, 256, 10)
    assert c.dilations == (1, 1, 1, 2, 1, 3, 1, 2, 1, 1)
    assert (c.perceptual_weight, c.l1_weight) == (145.0, 170.0)
    assert (c.perceptual_layer, c.perceptual_distance) == ("block3_conv3", "mse")
    assert (c.lr, c.beta_1, c.batch_size, c.epochs) == (1e-3, 0.9, 2, 10)
    assert (c.crop_size, c.patch_size, c.num_patches) == (256, 64, 16)
    assert c.split_generator_updates and not c.conditional


def test_paper_preset_is_the_train_lua_recipe():
    c = get_config("paper")
    assert (c.lr, c.beta_1, c.batch_size, c.flip) == (3e-4, 0.5, 1, True)
    assert (c.discriminator, c.conditional, c.d_channels) == ("patchgan", True, 48)
    assert (c.perceptual_layer, c.perceptual_distance) == ("block2_conv2", "l1")
    assert (c.tail_input, c.global_skip, c.dense_dropout, c.tail_dropout) == ("all", "add", 0.0, 0.5)
    assert (c.perceptual_weight, c.l1_weight) == (145.0, 170.0)


def test_overrides_and_errors():
    c = get_config("paper", lr=1e-4, dilations=[1] * 10)
    assert c.lr == 1e-4 and c.dilations == (1,) * 10
    assert get_config(c, batch_size=4).batch_size == 4
    with pytest.raises(UserError, match="unknown preset"):
        get_config("nope")
    with pytest.raises(UserError, match="unknown setting"):
        get_config("keras", channel_rate=16)
    with pytest.raises(UserError, match="multiple of patch_size"):
        get_config("keras", crop_size=100)
    with pytest.raises(UserError, match="dilations"):
        get_config("keras", n_blocks=3)
    with pytest.raises(UserError, match="global_skip"):
        get_config("keras", global_skip="mul")
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_config("keras").lr = 1.0


@pytest.mark.parametrize("preset", ["keras", "paper"])
def test_sample_overrides_are_valid(preset):
    c = get_config(preset, **SAMPLE_OVERRIDES)
    assert c.crop_size == 64 and c.steps_per_epoch * c.epochs <= 200
    assert c.to_dict()["dilations"] == c.dilations


def test_shuffle_flags_override_the_preset_order():
    """--shuffle / --no-shuffle reach the config; without them each preset keeps its upstream order
    (keras: main.py walks the files in order; paper: train.lua draws at random)."""
    from dgf_deblur.train import build_parser, resolve_config

    def config(*flags):
        return resolve_config(build_parser().parse_args(["--data", "d", *flags]))

    assert config("--preset", "keras").shuffle is False
    assert config("--preset", "keras", "--shuffle").shuffle is True
    assert config("--preset", "paper").shuffle is True
    assert config("--preset", "paper", "--no-shuffle").shuffle is False
