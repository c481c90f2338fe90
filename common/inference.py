"""Running a fully convolutional generator on images of any size, whole or in tiles.

- ``restore_array``: reflect-pad to the multiple the network needs, run, crop back.
- ``tile``: the image is cut into overlapping tiles processed one at a time and blended with
  linear ramps, so memory is bounded by the tile size and no seams show; the blending goes one
  row of tiles at a time and hands final rows to ``finish`` (e.g. to uint8), so only a strip of
  the result is ever held in float32 (``common.tiling`` counts these buffers). A network with
  instance norms (DeblurGAN ``paper``) is tiled with the whole image's statistics and each tile
  gets its receptive field as unweighted context, so the tiles give the whole-image result
  (``common.whole_image_norm``).
- ``process_files``: a file or folder with a progress bar; whatever goes wrong with one file is
  one ``failed FILE: reason`` line and the run goes on (:class:`Batch`, also used by the test
  scripts); the last line is ``N succeeded, M failed``. Outputs never overwrite inputs, and
  colliding names (``a.png``, ``a.jpg``) get distinct outputs.
- images smaller than the network's padding (1x1, 3x2, 1xN) are padded up to
  ``MIN_NETWORK_SIZE`` and the result cropped back.
"""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from common.errors import UserError, first_line
from common.image_io import IMAGE_EXTENSIONS, read_image, write_image
from common.quiet import filtered_stderr


def _pad_amount(size: int, multiple: int) -> int:
    return (-size) % multiple


# Images smaller than this (either side) are padded up to it before they reach a network: the
# generators' own reflection pads (DeblurGAN's ReflectionPad2d(3) at full size, then pad 1 in the
# residual blocks at 1/4 size, so at least 2 x 4 = 8 pixels) fail on a 1x1 or 3x2 input
# ("paddings must be less than the dimension size"). The padding is cropped off the result.
MIN_NETWORK_SIZE = 8


def pad_to_multiple(image: np.ndarray, multiple: int, min_size: int = 0) -> np.ndarray:
    """Pad bottom and right so height and width are multiples of ``multiple`` and at least
    ``min_size``: reflect when the image is large enough, else symmetric (works at any size)."""
    height, width = image.shape[:2]
    pad_h = max(_pad_amount(height, multiple), min_size - height)
    pad_w = max(_pad_amount(width, multiple), min_size - width)
    pad_h += _pad_amount(height + pad_h, multiple)
    pad_w += _pad_amount(width + pad_w, multiple)
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < image.shape[0] and pad_w < image.shape[1] else "symmetric"
    return np.pad(image, [(0, pad_h), (0, pad_w), (0, 0)], mode=mode)


_GRAPH_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def graph_call(model, batch, training: bool = False) -> np.ndarray:
    """``model(batch)`` through a cached ``tf.function``; ``batch`` may be a list of arrays for a
    model of several inputs (GLCIC's ``[image, mask]``).

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
    with filtered_stderr():  # Grappler's "remapper failed" lines on the first run of a graph
        result = functions[training](tf.nest.map_structure(lambda b: tf.convert_to_tensor(b, tf.float32), batch))
    return np.asarray(result, dtype=np.float32)


def _run(generator, batch: np.ndarray, training: bool) -> np.ndarray:
    return graph_call(generator, batch, training)


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool, margin: int = 0) -> np.ndarray:
    """1-D blending weights: zero over the first ``margin`` pixels, then rising over ``overlap``
    pixels, unless the tile touches the border (and the same at the end)."""
    weights = np.ones(length, np.float32)
    ramp = np.concatenate([np.zeros(margin, np.float32), (np.arange(overlap, dtype=np.float32) + 0.5) / overlap])
    width = margin + overlap
    if width and not at_start:
        weights[:width] = np.minimum(weights[:width], ramp)
    if width and not at_end:
        weights[-width:] = np.minimum(weights[-width:], ramp[::-1])
    return weights


def _tile_starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _emit(out, total, weights, start: int, out_h: int, out_w: int, finish):
    """Rows ``start ..`` of the result are final: divide ``total`` (their weighted sums) by
    ``weights`` (None: already the values), convert with ``finish`` and store them in ``out``
    (allocated here on the first call, with ``finish``'s dtype). Returns ``out``."""
    from common import tiling  # FINISH_BLOCK_PIXELS: the blocks' size, counted there

    rows = min(total.shape[0], out_h - start)
    step = max(1, tiling.FINISH_BLOCK_PIXELS // max(out_w, 1))
    for first in range(0, max(rows, 0), step):
        last = min(first + step, rows)
        block = total[first:last, :out_w]
        if weights is not None:
            block /= np.maximum(weights[first:last, :out_w], 1e-8)
        value = finish(block) if finish is not None else block
        if out is None:
            out = np.empty((out_h, out_w, value.shape[-1]), np.asarray(value).dtype)
        out[start + first: start + last] = value
    return out


def restore_array(generator, image: np.ndarray, multiple: int = 4, scale: int = 1,
                  tile: int | None = None, overlap: int = 32, training: bool = False,
                  min_size: int = MIN_NETWORK_SIZE, finish: Callable[[np.ndarray], np.ndarray] | None = None
                  ) -> np.ndarray:
    """Run ``generator`` on one float32 image (H, W, C) in the generator's input range.

    Returns (H * scale, W * scale, C_out). ``tile`` (pixels of input) bounds memory; tiles overlap
    by ``overlap`` pixels and are blended linearly. ``tile=None`` picks the tile from the image
    size and the free memory (:func:`common.tiling.auto_tile`: the whole image when it fits);
    ``tile=0`` forces the whole image. ``training=True`` keeps dropout active (the
    official DeblurGAN inference mode). Images smaller than ``min_size`` are padded up to it
    (symmetric) and the result cropped back, so a 1x1 image works.

    ``finish``: an elementwise conversion of the float32 result (e.g. to uint8), applied to blocks
    of rows as soon as they are final; the result has its dtype. Tiles are run one row of tiles
    (a strip) at a time and only the rows still receiving contributions are kept in float32
    (sums and weights: tile x output width), so a large x4 result never exists in float32.
    """
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    out_h, out_w = height * scale, width * scale
    if tile is None:
        from common.tiling import auto_tile

        tile = auto_tile(generator, height, width, multiple=multiple, scale=scale)
    if tile and tile < min_size:
        raise UserError(f"--tile {tile}: use at least {min_size} pixels")
    if not tile or (height <= tile and width <= tile):
        padded = pad_to_multiple(image, multiple, min_size)
        result = _run(generator, padded[None], training)[0]
        if finish is None:
            return result[:out_h, :out_w]
        return _emit(None, result, None, 0, out_h, out_w, finish)
    if tile < multiple or tile % multiple:
        raise UserError(f"--tile {tile}: must be a positive multiple of {multiple}")
    requested_overlap = overlap - overlap % multiple
    overlap = min(overlap, tile // 4)
    overlap -= overlap % multiple
    # an instance-norm network: each tile gets the whole image's statistics and `margin` pixels of
    # context on every inner side (its receptive field), unweighted (common/whole_image_norm.py)
    from common import whole_image_norm

    margin = whole_image_norm.context(generator, multiple) if not training else 0  # 0: no instance norms
    if margin and tile < 2 * margin + overlap + multiple:
        least = 2 * margin + requested_overlap + multiple  # a tile that large keeps the whole blend
        raise UserError(f"--tile {tile}: this network normalises over the whole image and each tile needs "
                        f"{margin} pixels of context on every side; use at least {least}")
    step = tile - overlap - 2 * margin
    padded = pad_to_multiple(image, multiple, min_size)
    ph, pw = padded.shape[:2]
    tops, lefts = _tile_starts(ph, tile, step), _tile_starts(pw, tile, step)
    whole_norm = None
    if margin:
        whole_norm = whole_image_norm.WholeImageNorm(generator, padded, tops, lefts, tile, multiple)
        whole_norm.compute_statistics()
    out = total = weight_sum = None
    for i, top in enumerate(tops):
        # total / weight_sum hold output rows top * scale .. (top + tile) * scale: this strip,
        # whose first rows may already hold the previous strip's contributions (the overlap)
        for left in lefts:
            crop = padded[top: top + tile, left: left + tile]
            if whole_norm is not None:
                result = whole_norm.tile_output(top, left)
            else:
                result = _run(generator, crop[None], training)[0]
            th, tw = result.shape[:2]
            if total is None:
                total = np.zeros((th, pw * scale, result.shape[-1]), np.float32)
                weight_sum = np.zeros((th, pw * scale, 1), np.float32)
            wy = _ramp(th, overlap * scale, top == 0, top + crop.shape[0] >= ph, margin * scale)
            wx = _ramp(tw, overlap * scale, left == 0, left + crop.shape[1] >= pw, margin * scale)
            weights = (wy[:, None] * wx[None, :])[..., None]
            x0 = left * scale
            total[:th, x0: x0 + tw] += result * weights
            weight_sum[:th, x0: x0 + tw] += weights
        # rows above the next strip get nothing more: finish them, move the rest up
        final = (tops[i + 1] - top) * scale if i + 1 < len(tops) else total.shape[0]
        out = _emit(out, total[:final], weight_sum[:final], top * scale, out_h, out_w, finish)
        kept = total.shape[0] - final
        for row in range(0, kept, final):  # blocks of at most `final` rows never overlap their source
            rows = min(final, kept - row)
            total[row: row + rows] = total[final + row: final + row + rows]
            weight_sum[row: row + rows] = weight_sum[final + row: final + row + rows]
        total[kept:], weight_sum[kept:] = 0, 0
    return out


# ----------------------------------------------------------------------------- files
def collect_inputs(path: str | Path) -> list[Path]:
    """A single image file, or the images of a folder (sorted, not recursive).

    Everything else in the folder is listed on stderr as skipped (never silently ignored), except
    hidden files without an image suffix (.DS_Store); a folder named like an image is returned
    too, so the run reports it as failed.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files, skipped = [], []
        for entry in sorted(path.iterdir()):
            if entry.name.startswith("."):  # .DS_Store, ._photo.jpg (macOS), .sample_version
                if entry.suffix.lower() in IMAGE_EXTENSIONS:
                    skipped.append((entry, "hidden file"))
            elif entry.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(entry)
            elif entry.is_dir():
                skipped.append((entry, "a folder (folders are not searched)"))
            else:
                skipped.append((entry, f"not an image suffix ({', '.join(IMAGE_EXTENSIONS)})"))
        for entry, reason in skipped:
            print(f"skipped {entry}: {reason}", file=sys.stderr)
        if not files:
            raise UserError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        return files
    raise UserError(f"{path}: no such file or folder; pass an image or a folder of images with --input")


def output_path_for(input_path: Path, output_dir: Path, suffix: str = "") -> Path:
    return output_dir / f"{input_path.stem}{suffix}.png"


def output_paths(inputs: list[Path], output_dir: Path, suffix: str = "") -> list[Path]:
    """One distinct PNG per input, never an input file itself.

    ``a.png`` and ``a.jpg`` become ``a_png.png`` and ``a_jpg.png``; a name that would replace an
    input (``--output`` = the input folder) gets ``_out`` added.
    """
    stems = [p.stem for p in inputs]
    protected = {p.resolve() for p in inputs}
    taken: set[Path] = set()
    targets = []
    for path in inputs:
        stem = path.stem
        if stems.count(stem) > 1:
            stem = f"{stem}_{path.suffix.lstrip('.').lower()}"
        target = output_dir / f"{stem}{suffix}.png"
        count = 1
        while target.resolve() in protected or target in taken:
            target = output_dir / f"{stem}{suffix}_out{'' if count == 1 else count}.png"
            count += 1
        taken.add(target)
        targets.append(target)
    return targets


def failure_reason(error: BaseException, name=None, shape=None) -> str:
    """One line saying why an item failed (without the item's name in front)."""
    size = f" on this {shape[1]}x{shape[0]} image" if shape is not None else ""
    tf = sys.modules.get("tensorflow")
    if isinstance(error, MemoryError) or (
            tf is not None and isinstance(error, tf.errors.ResourceExhaustedError)):
        return f"out of memory{size}; pass --tile 512 (or smaller) to process it in tiles"
    if isinstance(error, UserError):  # ours: already one line
        text = first_line(error, limit=1000, default="")
        prefix = f"{name}: "
        return text[len(prefix):] if name is not None and text.startswith(prefix) else text
    if tf is not None and isinstance(error, tf.errors.OpError):
        return f"{type(error).__name__}{size}: {first_line(error)}"
    return f"{type(error).__name__}{size}: {first_line(error, default='no message')}"


class Batch:
    """Per-item isolation for loops over many files (predict.py and test.py).

        batch = Batch()
        for name in names:
            with batch.item(name):
                ...                     # any exception: one line "failed NAME: reason", go on
        return batch.finish()           # "N succeeded, M failed"; exit status 1 if any failed

    Ctrl-C (KeyboardInterrupt) still stops the loop.
    """

    def __init__(self):
        self.succeeded = 0
        self.failures: list[tuple[str, str]] = []
        self.skipped: list[tuple[str, str]] = []
        self.shape = None  # set by the caller once the image size is known (for the message)
        self._skipping = False

    def fail(self, name, reason: str) -> None:
        self.failures.append((str(name), reason))
        tqdm.write(f"failed {name}: {reason}", file=sys.stderr)

    def skip(self, name, reason: str) -> None:
        """Inside ``item``: this item is left out on purpose (not a failure, not a success)."""
        self.skipped.append((str(name), reason))
        self._skipping = True
        tqdm.write(f"skipped {name}: {reason}", file=sys.stderr)

    def item(self, name):
        return _BatchItem(self, name)

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"{self.succeeded} succeeded, {len(self.failures)} failed{skipped}"

    def finish(self, where: str = "") -> int:
        """Print the summary line (stderr); the exit status: 1 when any item failed."""
        print(self.summary() + where, file=sys.stderr, flush=True)
        return 1 if self.failures else 0


class _BatchItem:
    def __init__(self, batch: Batch, name):
        self.batch, self.name = batch, name

    def __enter__(self):
        self.batch.shape = None
        self.batch._skipping = False
        return self.batch

    def __exit__(self, exc_type, error, tb):
        if exc_type is None:
            self.batch.succeeded += 0 if self.batch._skipping else 1
            return False
        if not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt, SystemExit
        self.batch.fail(self.name, failure_reason(error, self.name, self.batch.shape))
        return True


def process_files(inputs: list[Path], output_dir: Path, transform: Callable[[np.ndarray], np.ndarray],
                  suffix: str = "", desc: str = "images",
                  on_result: Callable[[Path, np.ndarray, np.ndarray], None] | None = None,
                  with_path: bool = False) -> tuple[int, list]:
    """Apply ``transform(uint8 image) -> uint8 image`` to each input and write PNGs
    (``with_path=True``: ``transform(image, input_path)``, e.g. to find the image's mask).

    Each file is isolated: whatever goes wrong with it (unreadable, too small, an op error, out of
    memory) is one line ``failed FILE: reason`` and the run goes on. The last line says
    ``N succeeded, M failed``. Returns ``(written, failures)`` where failures lists
    ``(path, reason)``. Outputs never replace an input (see :func:`output_paths`).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    batch = Batch()
    targets = output_paths(inputs, output_dir, suffix)
    for path, target in tqdm(list(zip(inputs, targets)), desc=desc, unit="img",
                             disable=len(inputs) < 2 or not sys.stderr.isatty()):
        with batch.item(path):
            image = read_image(path)
            batch.shape = image.shape
            result = transform(image, path) if with_path else transform(image)
            write_image(target, result)
            if on_result is not None:
                on_result(path, image, result)
    batch.finish(f"; outputs in {output_dir}" if batch.succeeded else "")
    by_name = {str(p): p for p in inputs}
    return batch.succeeded, [(by_name.get(name, Path(name)), reason) for name, reason in batch.failures]
