"""Tiny untrained "runs" of each family (config.json + generator.weights.h5), made in a second by
building the generator directly, for tests that only need something loadable and fast."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

# Narrow, shallow versions of each default preset.
TINY = {
    "deblur_gan": {"ngf": 4, "n_blocks": 1},
    "srgan": {"filters": 8, "num_res_blocks": 1},
    "dgf_deblur": {"growth_rate": 4, "bottleneck_channels": 8, "n_blocks": 2, "dilations": (1, 2)},
    "glcic_inpaint": {"filters": 4, "mean_color": (0.5, 0.45, 0.4)},
}


def build(family: str, config):
    if family == "glcic_inpaint":
        from glcic_inpaint.model import build_completion_network, build_inpainter

        return build_inpainter(build_completion_network(config), config, config.mean_color)
    model = importlib.import_module(f"{family}.model")
    if family == "srgan":
        return model.build_generator(preset=config)
    return model.build_generator(config)


def make_tiny_run(family: str, runs_root, name: str = "tiny", **overrides) -> Path:
    """``runs_root/<family>/<name>/`` holding what a finished training run exports."""
    config = importlib.import_module(f"{family}.config").get_config(**{**TINY[family], **overrides})
    run = Path(runs_root) / family / name
    run.mkdir(parents=True, exist_ok=True)
    build(family, config).save_weights(str(run / "generator.weights.h5"))
    record = {"family": family, "config": dataclasses.asdict(config)}
    (run / "config.json").write_text(json.dumps(record, indent=2, default=list))
    return run
