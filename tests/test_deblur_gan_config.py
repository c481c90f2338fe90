"""DeblurGAN presets and get_config."""

from __future__ import annotations

import dataclasses

import pytest

from common.errors import UserError
from deblur_gan.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, Config, get_config


def test_presets_are_complete_recipes():
    assert set(PRESETS) == {"paper", "paper-corrected", "keras-port"} and DEFAULT_PRESET in PRESETS
    for name, cfg in PRESETS.items():
        assert cfg.preset == name
        for field in ("batch_size", "epochs", "steps_per_epoch", "lr", "seed", "save_every"):
            assert hasattr(cfg, field)


def test_paper_recipe_values():
    cfg = PRESETS["paper"]
    assert (cfg.norm, cfg.conv_padding, cfg.global_residual, cfg.d_head) == ("instance", "pytorch", "clamp", "patch")
    assert (cfg.lr, cfg.beta_1, cfg.batch_size, cfg.epochs, cfg.decay_epochs) == (1e-4, 0.5, 1, 300, 150)
    assert (cfg.gp_weight, cfg.critic_updates, cfg.content_weight) == (10.0, 5, 100.0)
    assert (cfg.vgg_network, cfg.vgg_layer, cfg.vgg_pre_activation) == ("vgg19", "block3_conv3", True)
    assert (cfg.resize, cfg.crop, cfg.flip) == ((360, 640), (256, 256), True)
    # the official DiscLossWGANGP penalty and PerceptualLoss input (issue 14)
    assert cfg.gp_variant == "official" and cfg.vgg_preprocess == "none" and cfg.adam_epsilon == 1e-8


def test_paper_corrected_differs_only_in_penalty_preprocessing_and_content_weight():
    paper, corrected = PRESETS["paper"], PRESETS["paper-corrected"]
    changed = {f.name for f in dataclasses.fields(Config) if getattr(paper, f.name) != getattr(corrected, f.name)}
    assert changed == {"preset", "gp_variant", "vgg_preprocess", "content_weight"}
    assert (corrected.gp_variant, corrected.vgg_preprocess) == ("standard", "caffe")
    assert corrected.content_weight == pytest.approx(100 * 0.0089 / 96.8)


def test_keras_port_recipe_values():
    cfg = PRESETS["keras-port"]
    assert (cfg.norm, cfg.conv_padding, cfg.global_residual, cfg.d_head, cfg.d_sigmoid) == (
        "batch", "same", "average", "dense", True)
    assert (cfg.beta_1, cfg.batch_size, cfg.epochs, cfg.gp_weight, cfg.critic_updates) == (0.9, 16, 4, 0.0, 5)
    assert (cfg.vgg_network, cfg.vgg_pre_activation, cfg.upsampling) == ("vgg16", False, "transpose")
    assert (cfg.resize, cfg.crop, cfg.flip) == ((256, 256), None, False)
    assert cfg.train_size == (256, 256)
    assert cfg.vgg_preprocess == "none"  # deblurgan/losses.py: no preprocess_input


def test_get_config_overrides_and_errors():
    assert get_config() is PRESETS[DEFAULT_PRESET]
    cfg = get_config("paper", lr=2e-4, crop=[128, 128])
    assert cfg.lr == 2e-4 and cfg.crop == (128, 128) and PRESETS["paper"].lr == 1e-4
    assert get_config(cfg, seed=3).crop == (128, 128)
    assert get_config("paper", crop=None).train_size == (360, 640)
    with pytest.raises(UserError, match="unknown preset"):
        get_config("pix2pix")
    with pytest.raises(UserError, match="unknown setting"):
        get_config("paper", learning_rate=1)
    with pytest.raises(UserError, match="norm='layer'"):
        get_config("paper", norm="layer")
    with pytest.raises(UserError, match="divisible by 4"):
        get_config("paper", crop=(250, 256))
    with pytest.raises(UserError, match="decay_epochs"):
        get_config("paper", epochs=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


def test_sample_overrides_are_valid_fields():
    fields = {f.name for f in dataclasses.fields(Config)}
    assert set(SAMPLE_OVERRIDES) <= fields
    for name in PRESETS:
        cfg = get_config(name, **SAMPLE_OVERRIDES)
        assert cfg.epochs * (cfg.steps_per_epoch or 0) <= 30 and cfg.crop == (64, 64)
