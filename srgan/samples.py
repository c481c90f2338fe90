"""Per-epoch result grids for SRGAN training: Bicubic | SR | HR with Y-channel PSNR / SSIM."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.grids import metric_caption, save_grid
from common.inference import graph_call
from common.metrics import psnr_y, ssim_y
from srgan.config import Config
from srgan.data import bicubic_upscale, downscale_uint8, generator_output_to_uint8, uint8_to_generator_input


def compare_row(lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: int):
    """Cells and captions of one Bicubic | SR | HR row (uint8 images; metrics on Y, border = scale)."""
    bicubic = bicubic_upscale(lr, scale)
    captions = [metric_caption(psnr_y(image, hr, border=scale), ssim_y(image, hr, border=scale))
                for image in (bicubic, sr)]
    return [bicubic, sr, hr], [*captions, None]


def sr_sample_grid(hr_images: list[np.ndarray], config: Config):
    """A ``sample_grid(gan, path)`` callback for :class:`common.training.TrainJob`.

    ``hr_images``: uint8 HR crops whose sides are multiples of ``config.scale``.
    """
    lr_images = [downscale_uint8(hr, config.scale) for hr in hr_images]
    column = "SRResNet" if config.stage == "srresnet" else "SRGAN"

    def write(gan, path: Path) -> None:
        rows, captions = [], []
        for lr, hr in zip(lr_images, hr_images):
            x = uint8_to_generator_input(lr, config.lr_range)[None]
            sr = generator_output_to_uint8(graph_call(gan.generator, x)[0])
            cells, caps = compare_row(lr, sr, hr, config.scale)
            rows.append(cells)
            captions.append(caps)
        save_grid(path, rows, ["Bicubic", column, "HR"], captions=captions,
                  title=Path(path).stem.replace("_", " ") + " (PSNR / SSIM on Y)")

    return write
