"""Export a GLCIC inpainter for serving: SavedModel, TFLite or ONNX; uint8 image + mask in, uint8 out.

    python -m glcic_inpaint.export --weights runs/glcic_inpaint/paper --format savedmodel --output exported/glcic
    python glcic_inpaint/export.py --weights completionnet_places2.t7 --format tflite --output glcic.tflite

The artifact takes ``image`` and ``mask`` (1 = hole) and returns the completed image, known pixels
unchanged (no Poisson blending: that is OpenCV, outside the graph). README.md, "Deploy".
"""

from __future__ import annotations

from common.cli import run_cli
from common.export import ExportSpec, export_main

FAMILY = "glcic_inpaint"


def export_spec(config) -> ExportSpec:
    """Images in the preset's ``value_range`` (glcic_inpaint/model.py); sides padded to a multiple
    of 4 (two stride-2 convs, paper Table 1); the mask's padding is known pixels."""
    return ExportSpec(FAMILY, multiple=4, input_range=config.value_range,
                      output_range=config.value_range, mask=True)


def main(argv=None) -> int:
    from glcic_inpaint.config import PRESETS
    from glcic_inpaint.inference import load

    return export_main(FAMILY, argv, PRESETS, "Export a GLCIC inpainter (SavedModel, TFLite, ONNX).",
                       load, export_spec)


if __name__ == "__main__":
    run_cli(main)
