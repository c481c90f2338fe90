"""Export a DeblurGAN generator for serving: SavedModel, TFLite or ONNX, uint8 in and out, any size.

    python -m deblur_gan.export --weights runs/deblur_gan/paper --format savedmodel --output exported/deblur_gan
    python deblur_gan/export.py --weights latest_net_G.pth --format tflite --output deblurgan.tflite
    python deblur_gan/export.py --weights generator.h5 --format onnx --output deblurgan.onnx

Signature and runtimes: README.md, "Deploy". Inference mode (dropout off): --stochastic of
predict.py is not exported.
"""

from __future__ import annotations

from common.cli import run_cli
from common.export import ExportSpec, export_main

FAMILY = "deblur_gan"


def export_spec(config) -> ExportSpec:
    """RGB in and out in [-1, 1] (deblur_gan/model.py); sides padded to 2 ** n_downsampling."""
    return ExportSpec(FAMILY, multiple=config.multiple, input_range="signed", output_range="signed")


def main(argv=None) -> int:
    from deblur_gan.config import PRESETS
    from deblur_gan.inference import load

    flags = {"upsampling": (("transpose", "nearest"), "generator upsampling of a bare weights file "
                                                     "(upstream files: detected)")}
    return export_main(FAMILY, argv, PRESETS, "Export a DeblurGAN generator (SavedModel, TFLite, ONNX).",
                       load, export_spec, model_flags=flags)


if __name__ == "__main__":
    run_cli(main)
