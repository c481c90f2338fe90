"""Export a DGF deblurring generator for serving: SavedModel, TFLite or ONNX, uint8 in and out, any size.

    python -m dgf_deblur.export --weights runs/dgf_deblur/keras --format savedmodel --output exported/dgf
    python dgf_deblur/export.py --weights generator.h5 --format onnx --output dgf.onnx

Signature and runtimes: README.md, "Deploy". Inference mode (BatchNorm moving statistics, dropout
off): --train-mode of predict.py is not exported.
"""

from __future__ import annotations

from common.cli import run_cli
from common.export import ExportSpec, export_main

FAMILY = "dgf_deblur"


def export_spec(config) -> ExportSpec:
    """RGB in and out in [-1, 1] (dgf_deblur/model.py); stride 1 everywhere, so no padding."""
    return ExportSpec(FAMILY, multiple=1, input_range="signed", output_range="signed")


def main(argv=None) -> int:
    from dgf_deblur.config import PRESETS
    from dgf_deblur.inference import load

    return export_main(FAMILY, argv, PRESETS, "Export a DGF generator (SavedModel, TFLite, ONNX).",
                       load, export_spec)


if __name__ == "__main__":
    run_cli(main)
