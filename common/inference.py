"""Running a fully convolutional generator on images of any size, whole or in tiles.

- ``restore_array``: reflect-pad to the multiple the network needs, run, crop back.
- ``tile``: the image is cut into overlapping tiles processed one at a time and blended with
  linear ramps, so memory is bounded by the tile size and no seams show.
- ``process_files``: a file or folder with a progress bar; a bad file is reported and skipped,
  outputs never overwrite inputs.
"""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from common.errors import UserError
from common.image_io import IMAGE_EXTENSIONS, list_images, read_image, write_image


def _pad_amount(size: int, multiple: int) -> int:
    return (-size) % multiple


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad bottom and right so height and width are multiples of ``multiple``."""
    pad_h, pad_w = _pad_amount(image.shape[0], multiple), _pad_amount(image.shape[1], multiple)
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < image.shape[0] and pad_w < image.shape[1] else "symmetric"
    return np.pad(image, [(0, pad_h), (0, pad_w), (0, 0)], mode=mode)


_GRAPH_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def graph_call(model, batch, training: bool = False) -> np.ndarray:
    """``model(batch)`` through a cached ``tf.function``.

    Called eagerly, a functional Keras model keeps every intermediate activation alive until the
    call returns (tens of GB for a dense network on a large tile); a graph frees each tensor after
    its last use. ``reduce_retracing`` lets one trace serve images of every size.
    """
    import tensorflow as tf

    functions = _GRAPH_CACHE.setdefault(model, {})
    if training not in functions:
        # A weak reference, so the cached function does not keep the model alive.
        model_ref = weakref.ref(model)
        functions[training] = tf.function(lambda x: model_ref()(x, training=training), reduce_retracing=True)
    return np.asarray(functions[training](tf.convert_to_tensor(batch, tf.float32)), dtype=np.float32)


def _run(generator, batch: np.ndarray, training: bool) -> np.ndarray:
    return graph_call(generator, batch, training)


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights: rise over ``overlap`` pixels unless the tile touches the border."""
    weights = np.ones(length, np.float32)
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    if overlap and not at_start:
        weights[:overlap] = np.minimum(weights[:overlap], ramp)
    if overlap and not at_end:
        weights[-overlap:] = np.minimum(weights[-overlap:], ramp[::-1])
    return weights


def _tile_starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def restore_array(generator, image: np.ndarray, multiple: int = 4, scale: int = 1,
                  tile: int | None = None, overlap: int = 32, training: bool = False) -> np.ndarray:
    """Run ``generator`` on one float32 image (H, W, C) in the generator's input range.

    Returns (H * scale, W * scale, C_out). ``tile`` (pixels of input) bounds memory; tiles overlap
    by ``overlap`` pixels and are blended linearly. ``training=True`` keeps dropout active (the
    official DeblurGAN inference mode).
    """
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    if tile is None or (height <= tile and width <= tile):
        padded = pad_to_multiple(image, multiple)
        out = _run(generator, padded[None], training)[0]
        return out[: height * scale, : width * scale]
    if tile < multiple or tile % multiple:
        raise UserError(f"--tile {tile}: must be a positive multiple of {multiple}")
    overlap = min(overlap, tile // 4)
    overlap -= overlap % multiple
    step = tile - overlap
    padded = pad_to_multiple(image, multiple)
    ph, pw = padded.shape[:2]
    out = None
    weight_sum = np.zeros((ph * scale, pw * scale, 1), np.float32)
    for top in _tile_starts(ph, tile, step):
        for left in _tile_starts(pw, tile, step):
            crop = padded[top: top + tile, left: left + tile]
            result = _run(generator, crop[None], training)[0]
            if out is None:
                out = np.zeros((ph * scale, pw * scale, result.shape[-1]), np.float32)
            th, tw = result.shape[:2]
            wy = _ramp(th, overlap * scale, top == 0, top + crop.shape[0] >= ph)
            wx = _ramp(tw, overlap * scale, left == 0, left + crop.shape[1] >= pw)
            weights = (wy[:, None] * wx[None, :])[..., None]
            y0, x0 = top * scale, left * scale
            out[y0: y0 + th, x0: x0 + tw] += result * weights
            weight_sum[y0: y0 + th, x0: x0 + tw] += weights
    out /= np.maximum(weight_sum, 1e-8)
    return out[: height * scale, : width * scale]


# ----------------------------------------------------------------------------- files
def collect_inputs(path: str | Path) -> list[Path]:
    """A single image file, or the images of a folder (sorted)."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise UserError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        return files
    raise UserError(f"{path}: no such file or folder; pass an image or a folder of images with --input")


def output_path_for(input_path: Path, output_dir: Path, suffix: str = "") -> Path:
    return output_dir / f"{input_path.stem}{suffix}.png"


def process_files(inputs: list[Path], output_dir: Path, transform: Callable[[np.ndarray], np.ndarray],
                  suffix: str = "", desc: str = "images",
                  on_result: Callable[[Path, np.ndarray, np.ndarray], None] | None = None) -> tuple[int, list]:
    """Apply ``transform(uint8 image) -> uint8 image`` to each input and write PNGs.

    Returns ``(written, failures)`` where failures lists ``(path, reason)``. A file that cannot be
    read is reported and skipped. An output that would replace an input is refused.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    protected = {p.resolve() for p in inputs}
    written, failures = 0, []
    for path in tqdm(inputs, desc=desc, unit="img", disable=len(inputs) < 2):
        target = output_path_for(path, output_dir, suffix)
        if target.resolve() in protected:
            failures.append((path, f"output {target} would overwrite an input; choose another --output"))
            continue
        try:
            image = read_image(path)
        except UserError as err:
            failures.append((path, str(err)))
            continue
        result = transform(image)
        write_image(target, result)
        if on_result is not None:
            on_result(path, image, result)
        written += 1
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return written, failures
