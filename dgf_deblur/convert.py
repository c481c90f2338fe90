"""Upstream DGF weights -> our generator: detection of the variant, and the convert command.

    python -m dgf_deblur.convert --input generator_weights.h5 --output dgf_leftthomas.weights.h5

Accepted: leftthomas/ImageDeblurring's ``weight/generator_weights.h5`` (Keras 2 ``save_weights``,
written every 30 batches by main.py). The official Torch code released no model.

Detected from the kernel shapes: ``bottleneck_channels`` (head width), ``growth_rate`` (each 3x3
conv's output), ``n_blocks``, what the tail sees (``tail_input``: d_10 only, leftthomas, or the
whole stack) and the global skip (``concat``: the fuse conv sees twice the head width; ``add``).
The dilations hold no weights: they are the detected preset's (leftthomas: 1,1,1,2,1,3,1,2,1,1).
"""

from __future__ import annotations

from pathlib import Path

from common.cli import run_cli
from common.errors import UserError
from common.upstream_io import Keras2File, read_keras2_h5
from common.weights import assign_in_order, check_preset, convert_main
from dgf_deblur.config import PRESETS, get_config

FAMILY = "dgf_deblur"


def detect_keras2(weights: Keras2File, path) -> tuple[str, dict, str]:
    """``(preset, config fields, description)`` of a DGF generator in a Keras 2 file."""
    arrays = list(weights.layers.values())
    kinds = ["bn" if len(a) == 4 and a[0].ndim == 1 else "conv" if a and a[0].ndim == 4 else "other"
             for a in arrays]
    not_generator = (f"{path}: not a DGF generator (expected a 3x3 head conv, dense blocks of "
                     "conv1x1-BN-conv3x3-BN, a conv1x1-BN tail and two 3x3 convs to RGB); a "
                     "discriminator file has nothing to load here")
    blocks, rest = divmod(len(kinds) - 5, 4)
    if ("other" in kinds or rest or blocks < 1 or kinds[0] != "conv"
            or kinds[1:-4] != ["conv", "bn", "conv", "bn"] * blocks or kinds[-4:] != ["conv", "bn", "conv", "conv"]):
        raise UserError(not_generator)
    head, out = arrays[0][0], arrays[-1][0]
    if head.shape[:3] != (3, 3, 3) or out.shape[3] != 3:
        raise UserError(not_generator)
    bottleneck, growth = int(head.shape[3]), int(arrays[3][0].shape[3])
    tail_in, fuse_in = int(arrays[-4][0].shape[2]), int(arrays[-2][0].shape[2])
    tail_input = "last" if tail_in == growth else "all" if tail_in == bottleneck + blocks * growth else None
    global_skip = "concat" if fuse_in == 2 * bottleneck else "add" if fuse_in == bottleneck else None
    if tail_input is None or global_skip is None:
        raise UserError(f"{path}: tail conv sees {tail_in} channels and the fuse conv {fuse_in}: not a DGF "
                        "generator layout (leftthomas or the official Torch one)")
    use_bias = len(arrays[0]) == 2
    preset = "keras" if (tail_input, global_skip) == ("last", "concat") else "paper"
    fields = {"bottleneck_channels": bottleneck, "growth_rate": growth, "n_blocks": blocks,
              "tail_input": tail_input, "global_skip": global_skip, "use_bias": use_bias}
    base = get_config(preset)
    if blocks != base.n_blocks:  # the preset's dilations are for its block count
        fields["dilations"] = tuple(base.dilations[i % len(base.dilations)] for i in range(blocks))
    if preset == "keras":
        what = (f"leftthomas/ImageDeblurring generator (Keras 2), keras preset (channel_rate {growth}, "
                f"{blocks} dense blocks)")
    else:
        what = (f"DGF generator with the official Torch layout ({tail_input} -> tail, {global_skip} skip) "
                f"in a Keras 2 file, paper preset (growth {growth}, {blocks} blocks)")
    return preset, fields, what


def load_upstream(path, kind: str, preset: str | None = None):
    """``(generator, config, description)`` from an upstream DGF file; a ``preset`` that contradicts
    the file is an error naming both."""
    from dgf_deblur.model import build_generator

    path = Path(path)
    if kind != "keras2-h5":
        raise UserError(f"{path}: a {kind} file is not a DGF release this project reads; pass "
                        "leftthomas' generator_weights.h5 or one of our runs")
    weights = read_keras2_h5(path)
    detected, fields, what = detect_keras2(weights, path)
    check_preset(path, detected, preset, what)
    cfg = get_config(detected, **fields)
    generator = build_generator(cfg)
    assign_in_order(generator, list(weights.layers.items()), path)
    return generator, cfg, what


def main(argv=None) -> int:
    from dgf_deblur.inference import load

    return convert_main(FAMILY, load, argv, presets=PRESETS)


__all__ = ["detect_keras2", "load_upstream", "main"]

if __name__ == "__main__":
    run_cli(main)
