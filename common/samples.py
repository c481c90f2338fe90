"""Result grids written during training (one per epoch) from a fixed batch of examples."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from common.grids import metric_caption, save_grid
from common.image_io import signed_to_unit
from common.inference import graph_call
from common.metrics import psnr, ssim


def paired_sample_grid(inputs: np.ndarray, targets: np.ndarray, columns: tuple[str, str, str],
                       input_to_unit: Callable = signed_to_unit, output_to_unit: Callable = signed_to_unit,
                       target_to_unit: Callable = signed_to_unit, run: Callable | None = None):
    """A ``sample_grid(gan, path)`` callback: rows of input | generated | target with PSNR / SSIM.

    ``inputs`` and ``targets`` are fixed numpy batches in the model's ranges; the converters map
    them to [0, 1] for display. ``run(gan, inputs)`` overrides how outputs are produced.
    """
    inputs = np.asarray(inputs, np.float32)
    targets = np.asarray(targets, np.float32)

    def write(gan, path: Path) -> None:
        outputs = run(gan, inputs) if run else graph_call(gan.generator, inputs)
        rows, captions = [], []
        for x, y, t in zip(inputs, outputs, targets):
            shown = [np.clip(input_to_unit(x), 0, 1), np.clip(output_to_unit(y), 0, 1), np.clip(target_to_unit(t), 0, 1)]
            rows.append(shown)
            captions.append([None, metric_caption(psnr(shown[1], shown[2]), ssim(shown[1], shown[2])), None])
        save_grid(path, rows, list(columns), captions=captions, title=Path(path).stem.replace("_", " "))

    return write
