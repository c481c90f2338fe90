"""Export an SRGAN generator for serving: SavedModel, TFLite or ONNX, uint8 LR in, uint8 x4 out, any size.

    python -m srgan.export --weights runs/srgan/bubbliiiing --format savedmodel --output exported/srgan
    python srgan/export.py --weights gan_generator.h5 --format tflite --output srgan.tflite

Signature and runtimes: README.md, "Deploy".
"""

from __future__ import annotations

from common.cli import run_cli
from common.export import ExportSpec, export_main

FAMILY = "srgan"


def export_spec(config) -> ExportSpec:
    """LR input in the preset's ``lr_range``, HR output in [-1, 1] (srgan/model.py), ``scale`` x."""
    return ExportSpec(FAMILY, multiple=1, scale=config.scale, input_range=config.lr_range,
                      output_range="signed")


def main(argv=None) -> int:
    from srgan.config import PRESETS
    from srgan.inference import load

    return export_main(FAMILY, argv, PRESETS, "Export an SRGAN generator (SavedModel, TFLite, ONNX).",
                       load, export_spec)


if __name__ == "__main__":
    run_cli(main)
