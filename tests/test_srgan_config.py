"""SRGAN presets, overrides, stage switching and the learning-rate schedules."""

from __future__ import annotations

import json
import math

import pytest

from common.errors import UserError
from srgan.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, Config, get_config
from srgan.schedule import learning_rate, warmup_cosine_lr


def test_presets_are_complete_and_valid():
    assert DEFAULT_PRESET in PRESETS
    assert set(PRESETS) == {"bubbliiiing", "paper"}
    for name, config in PRESETS.items():
        assert isinstance(config, Config)
        assert config.preset == name
        get_config(name, **SAMPLE_OVERRIDES)  # the sample schedule is valid for every preset


def test_bubbliiiing_recipe():
    c = get_config("bubbliiiing")
    assert (c.stage, c.scale, c.hr_crop, c.lr_crop, c.batch_size) == ("srgan", 4, 384, 96, 4)
    assert (c.pixel_weight, c.adv_weight, c.content_weight) == (1.0, 1e-3, 2e-6)
    assert (c.vgg_layer, c.vgg_preprocess, c.vgg_feature_scale) == ("block5_conv4", "none", 1.0)
    assert (c.lr, c.beta_1, c.lr_schedule, c.epochs) == (2e-4, 0.9, "warmup_cosine", 200)
    assert (c.d_head, c.lr_range) == ("gap", "signed")


def test_steps_per_epoch_follows_the_data_like_upstream():
    c = get_config("bubbliiiing")
    assert c.steps_per_epoch is None  # epoch_step = min(num_train // batch_size, 2000)
    assert c.resolved(800).steps_per_epoch == 200  # DIV2K train: 800 // 4
    assert c.resolved(10**6).steps_per_epoch == 2000
    assert c.resolved(2).steps_per_epoch == 1
    assert get_config(c, steps_per_epoch=7).resolved(800).steps_per_epoch == 7
    assert get_config("paper").resolved(800).steps_per_epoch == 10_000
    with pytest.raises(UserError, match="steps_per_epoch"):
        get_config(c, steps_per_epoch=0)


def test_paper_recipe_and_stage_switch():
    c = get_config("paper")
    assert (c.stage, c.hr_crop, c.lr_crop, c.batch_size, c.lr_range) == ("srresnet", 96, 24, 16, "unit")
    assert (c.pixel_weight, c.adv_weight, c.content_weight) == (1.0, 0.0, 0.0)
    assert c.total_steps == 1_000_000 and c.lr == 1e-4
    g = get_config("paper", stage="srgan")
    assert (g.pixel_weight, g.content_weight, g.adv_weight) == (0.0, 1.0, 1e-3)
    assert g.vgg_preprocess == "caffe" and math.isclose(g.vgg_feature_scale, 1 / 12.75)
    assert g.total_steps == 200_000
    assert learning_rate(g, 99_999) == 1e-4 and math.isclose(learning_rate(g, 100_000), 1e-5)
    # explicit overrides win over the stage's defaults
    assert get_config("paper", stage="srgan", epochs=3).epochs == 3
    # and the stage can be switched back
    assert get_config(g, stage="srresnet") == get_config("paper")


def test_overrides_are_checked():
    with pytest.raises(UserError, match="unknown setting"):
        get_config("paper", learning_rate=1)
    with pytest.raises(UserError, match="unknown preset"):
        get_config("esrgan")
    with pytest.raises(UserError, match="stage"):
        get_config("paper", stage="gan")
    with pytest.raises(UserError, match="multiple of scale"):
        get_config("paper", hr_crop=90)
    with pytest.raises(UserError, match="adv_weight"):
        get_config("bubbliiiing", stage="srresnet", adv_weight=1e-3)


def test_json_round_trip():
    for name in PRESETS:
        config = get_config(name, stage="srgan")
        text = json.dumps(config.to_dict())
        assert Config.from_dict(json.loads(text)) == config


def test_warmup_cosine_matches_the_tutorial_values():
    c = get_config("bubbliiiing").resolved(num_images=25_000)  # MirFlickr25k: 2000 steps / epoch
    assert c.steps_per_epoch == 2000 and c.save_every == 2000
    lr = lambda epoch: learning_rate(c, epoch * c.steps_per_epoch)  # noqa: E731
    assert math.isclose(lr(0), 2e-5)  # max(0.1 * 2e-4, 1e-6)
    assert math.isclose(lr(1), (2e-4 - 2e-5) / 9 + 2e-5)  # quadratic warm-up over 3 epochs
    assert math.isclose(lr(3), 2e-4)
    assert math.isclose(lr(97), 2e-6 + 0.5 * (2e-4 - 2e-6) * (1 + math.cos(math.pi * 94 / 187)))
    assert math.isclose(lr(189), 2e-6 + 0.5 * (2e-4 - 2e-6) * (1 + math.cos(math.pi * 186 / 187)))
    assert math.isclose(lr(190), 2e-6) and math.isclose(lr(199), 2e-6)
    # set once per epoch, as train.py does
    assert learning_rate(c, 2 * c.steps_per_epoch - 1) == lr(1)
    # monotone after the warm-up
    values = [lr(e) for e in range(3, 200)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_warmup_cosine_short_runs():
    # 3 epochs (the sample schedule): warm-up of 1 epoch, last epoch at min_lr
    assert [round(warmup_cosine_lr(e, base_lr=1.0, total_epochs=3), 6) for e in range(3)] == [0.1, 1.0, 0.01]
    assert warmup_cosine_lr(0, base_lr=1e-6, total_epochs=200) == 1e-6  # the 1e-6 floor
