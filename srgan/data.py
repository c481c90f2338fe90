"""SRGAN data: LR/HR training batches, value-range conversions, bicubic baselines.

Training data is a folder of HR images only. Each batch is built like this:
* random ``hr_crop`` crops (images smaller than the crop are first upscaled, keeping their aspect
  ratio) and an optional horizontal flip;
* the LR input made from each crop by antialiased bicubic ÷ ``scale``, rounded to the 8-bit grid
  so that it matches LR images read from files;
* the LR input in the generator's range (``lr_range``: [-1, 1] or [0, 1]); HR stays in [-1, 1].
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from common.data import bicubic_downscale, image_dataset
from common.image_io import signed_to_unit, uint8_to_signed, uint8_to_unit, unit_to_uint8

from srgan.config import Config


# ----------------------------------------------------------------------------- value ranges
def signed_to_generator_input(images, lr_range: str):
    """[-1, 1] images -> the generator's input range (``"signed"``: unchanged, ``"unit"``: [0, 1])."""
    return images if lr_range == "signed" else signed_to_unit(images)


def uint8_to_generator_input(image: np.ndarray, lr_range: str) -> np.ndarray:
    """uint8 image -> float32 in the generator's input range."""
    image = uint8_to_signed(image) if lr_range == "signed" else uint8_to_unit(image)
    return np.asarray(image, np.float32)


def generator_output_to_uint8(image) -> np.ndarray:
    """Generator output ([-1, 1], tanh) -> uint8, rounded and clipped."""
    return np.asarray(unit_to_uint8(signed_to_unit(np.asarray(image, np.float32))))


def make_lr(hr, scale: int, lr_range: str):
    """HR batch in [-1, 1] (tensor) -> LR batch in the generator's range.

    Antialiased bicubic (``common.data.bicubic_downscale``), then rounded to 8-bit levels.
    """
    import tensorflow as tf

    lr = bicubic_downscale(hr, scale, value_range=(-1.0, 1.0))
    lr = tf.round((lr + 1.0) * 127.5) / 127.5 - 1.0
    return signed_to_generator_input(lr, lr_range)


def training_dataset(source, config: Config, start_step: int = 0):
    """Infinite tf.data pipeline of ``(lr, hr)`` float32 batches; a pure function of (seed, step)."""
    import tensorflow as tf

    hr = image_dataset(source, config.batch_size, crop=(config.hr_crop, config.hr_crop),
                       flip=config.flip, seed=config.seed, start_step=start_step)
    return hr.map(lambda batch: (make_lr(batch, config.scale, config.lr_range), batch),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- uint8 helpers
def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so height and width are multiples of ``scale`` (the SR benchmark habit)."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def downscale_uint8(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 HR (multiple of ``scale``) -> uint8 LR, antialiased bicubic (same as training)."""
    return np.asarray(bicubic_downscale(np.ascontiguousarray(image), scale))


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 LR -> uint8 image ``scale`` times larger (PIL bicubic): the usual baseline."""
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * scale, h * scale), Image.Resampling.BICUBIC))


def center_crop(image: np.ndarray, size: int, multiple: int) -> np.ndarray:
    """Central crop of at most ``size`` pixels a side, sides multiples of ``multiple``."""
    h, w = image.shape[:2]
    ch = min(size, h) // multiple * multiple
    cw = min(size, w) // multiple * multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top: top + ch, left: left + cw]
