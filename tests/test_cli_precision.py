import dataclasses
import subprocess
import sys

import keras
import pytest

from common import cli, precision
from common.errors import UserError


def test_precision_resolution(monkeypatch):
    monkeypatch.setattr(precision, "gpu_available", lambda: True)
    assert precision.resolve_precision("auto") == "mixed_float16"
    monkeypatch.setattr(precision, "gpu_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: True)
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"
    assert precision.set_precision("mixed_float16") == "mixed_float16"
    assert keras.config.dtype_policy().name == "mixed_float16" and precision.uses_loss_scaling()
    with pytest.raises(ValueError):
        precision.resolve_precision("fp8")


@dataclasses.dataclass(frozen=True)
class Cfg:
    batch_size: int = 16
    epochs: int = 3
    lr: float = 1e-4
    steps_per_epoch: int = 10


def test_flags_override_only_given_fields():
    parser = cli.train_parser("fam", {"a": Cfg()}, "a", "test")
    args = parser.parse_args(["--batch-size", "2", "--lr", "0.5"])
    cfg = cli.override_config(Cfg(), args)
    assert (cfg.batch_size, cfg.lr, cfg.epochs) == (2, 0.5, 3)


def test_resolve_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "RUNS_ROOT", tmp_path / "runs")
    with pytest.raises(UserError, match="python fam/train.py"):
        cli.resolve_weights("fam", None)
    old, new = tmp_path / "runs" / "fam" / "old", tmp_path / "runs" / "fam" / "new"
    for run in (old, new):
        run.mkdir(parents=True)
        (run / "generator.weights.h5").write_bytes(b"x")
    import os
    os.utime(old / "generator.weights.h5", (1, 1))
    assert cli.resolve_weights("fam", None) == (new, new / "generator.weights.h5")
    assert cli.resolve_weights("fam", str(old))[1] == old / "generator.weights.h5"
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(UserError, match="no generator.weights.h5"):
        cli.resolve_weights("fam", str(tmp_path / "unfinished"))


def test_run_cli_turns_user_errors_into_one_line(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from common.cli import run_cli\nfrom common.errors import UserError\n"
                      "def main(argv=None):\n    raise UserError('x.png: cannot read image; re-export it')\n"
                      "run_cli(main)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: x.png: cannot read image; re-export it"


def test_sample_demo_falls_back_to_l1_only_on_sample_data(monkeypatch):
    import common.losses as losses
    monkeypatch.setattr(losses, "imagenet_weights_available", lambda network: False)
    weights, use_l1, warnings = cli.resolve_vgg_choice("imagenet", "vgg19", sample_demo=True)
    assert weights is None and use_l1 and "L1" in warnings[0]
    with pytest.raises(UserError, match="--vgg-weights"):
        cli.resolve_vgg_choice("imagenet", "vgg19", sample_demo=False)
    weights, use_l1, warnings = cli.resolve_vgg_choice("random", "vgg19", sample_demo=False)
    assert weights is None and not use_l1 and "UNTRAINED" in warnings[0]


def test_number_list_parses_and_rejects():
    import argparse

    assert cli.number_list(int, 3, "Tc,Td,Ttotal")("90000, 10000,500000") == (90000, 10000, 500000)
    assert cli.number_list(float, 3, "r,g,b")("0.4,0.5,0.6") == (0.4, 0.5, 0.6)
    with pytest.raises(argparse.ArgumentTypeError, match="3 comma-separated integers"):
        cli.number_list(int, 3, "Tc,Td,Ttotal")("1,2")
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated integers"):
        cli.number_list(int, name="dilations")("1,x")


@pytest.mark.parametrize("make", [cli.predict_parser, cli.test_parser])
def test_inference_parsers_default_to_auto(make):
    parser = make("fam", "test")
    assert parser.parse_args([]).precision == "auto"
    assert parser.parse_args(["--precision", "float32"]).precision == "float32"
    assert "exact float32 path" in parser.format_help()


def test_inference_auto_is_per_family_and_printed(monkeypatch, capsys):
    monkeypatch.setattr(precision, "gpu_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: True)
    assert precision.set_inference_precision("auto", "srgan") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert capsys.readouterr().err.strip() == ("precision: mixed_bfloat16 (auto, for this CPU's bfloat16 "
                                               "units; --precision float32 for the exact float32 path)")
    # a family whose 16-bit output is not close enough stays float32 under auto, not when asked
    monkeypatch.setattr(precision, "INFERENCE_FLOAT32_FAMILIES", frozenset({"srgan"}))
    assert precision.set_inference_precision("auto", "srgan") == "float32"
    assert "float32 (auto: this generator's 16-bit output" in capsys.readouterr().err
    assert precision.set_inference_precision("mixed_bfloat16", "srgan") == "mixed_bfloat16"
    assert capsys.readouterr().err.strip() == "precision: mixed_bfloat16"
    assert precision.resolve_inference_precision("auto", "deblur_gan") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: False)
    assert precision.set_inference_precision("auto", "deblur_gan") == "float32"
    assert "no GPU and no bfloat16 units" in capsys.readouterr().err


def test_webui_precision_follows_the_family_rule(monkeypatch):
    from webui.models import ModelSlot

    monkeypatch.setattr(precision, "gpu_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: True)
    monkeypatch.setattr(precision, "INFERENCE_FLOAT32_FAMILIES", frozenset({"srgan"}))
    built = []

    class FakeInference:
        @staticmethod
        def load(weights):
            built.append(keras.config.dtype_policy().name)
            return object()

    slot = ModelSlot("srgan")
    monkeypatch.setattr(slot, "inference", lambda: FakeInference)
    assert slot.get("auto") is slot.get("float32")  # auto = float32 for this family: one model
    assert built == ["float32"] and keras.config.dtype_policy().name == "float32"
    slot.get("mixed_bfloat16")
    assert built == ["float32", "mixed_bfloat16"]
