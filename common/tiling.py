"""Automatic tile size for ``common.inference.restore_array`` (``--tile`` not given).

The whole image is run at once when its activations fit the memory budget; otherwise the largest
square tile that fits is used. The budget is the smaller of ``PEAK_BUDGET`` (3 GB of resident
memory for the whole process, the target of issue 10 for a 4032x3024 photo) and half of the
memory the system says is available, less what the process already holds (TensorFlow, the model,
the image as read and converted to the network's range: ``restore_array`` is called with it).

What a network needs per pixel is estimated from its TensorFlow graph at a small probe size:
the ops are walked in order and every tensor is counted from the op that makes it to its last
consumer (:func:`activation_bytes_per_pixel`). TensorFlow's runtime (oneDNN's reordered copies,
two ops in flight at once, the allocator) needs more than that live set; ``SAFETY`` covers it and
was measured with ``python benchmarks/run.py --memory`` (README, Performance).

While the network runs, the image buffers are (``restore_array``, blending strip by strip):

- per input pixel, the padded copy of the input (``IMAGE_BUFFERS_IN``);
- per output pixel, the final (uint8) result, filled strip by strip (``IMAGE_BUFFERS_OUT``);
- per output pixel of one strip (tile x scale rows, the whole output width), the float32 sums
  and blending weights (``STRIP_BUFFERS``);
- per output pixel of one tile, the weighted result and the weights (``TILE_BUFFERS_OUT``), per
  input pixel of one tile, its contiguous copy (``TILE_BUFFERS_IN``);
- the float32 temporaries of converting one block of final rows (``FINISH_TEMPORARIES``).

Writing the PNG comes after the network's memory is freed: Pillow copies the result into its own
4-byte-per-pixel image (``WRITE_BUFFERS_OUT``), so that phase needs the result plus the copy,
7 bytes per output pixel whatever the tile, so it does not shrink the tile
(:func:`memory_needed` reports both phases: 1.4 GB to write a x4 result of a 12 MP photo).

:func:`choose_tile` is a pure function of sizes and memory (tested); :func:`auto_tile` feeds it
this process's numbers.
"""

from __future__ import annotations

import math
import os
import weakref

PEAK_BUDGET = 3 * 1024 ** 3  # bytes: issue 10, "never more than 3 GB peak resident memory"
SAFETY = 2.0  # measured runtime peak / graph live-set estimate stays below this (README, Performance)
PROBE = 64  # side of the probe image used to read a network's memory per pixel
MIN_TILE, MAX_TILE = 64, 2048
# Instance-norm networks (auto_tile): tiles with their context cover more pixels than the image
# (DeblurGAN's 84-px context: 1.3x in 1,560-px tiles, 1.7x in 1,028-px ones; a point that does not
# fit then goes to disk, common/whole_image_norm.py), and a tile is at least 8 contexts wide (then
# half of it is kept).
KEPT_TILING_FACTOR = 1.5
CONTEXT_TILES = 8
# Bytes of restore_array's and the caller's buffers (module docstring), float32 = 4 x 3 channels.
IMAGE_BUFFERS_IN = 4 * 3  # per input pixel: the padded copy
IMAGE_BUFFERS_OUT = 3  # per output pixel: the uint8 result
STRIP_BUFFERS = 4 * 3 + 4  # per output pixel of a strip: weighted sums and weights
TILE_BUFFERS_IN = 4 * 3  # per input pixel of a tile: the crop handed to TensorFlow
TILE_BUFFERS_OUT = 4 * 3 + 4  # per output pixel of a tile: result x weights, the weights
# Final rows are divided by their weights and converted in blocks of about this many output pixels
# (restore_array), so the conversion's float32 temporaries stay small whatever the image size:
FINISH_BLOCK_PIXELS = 1 << 20
FINISH_TEMPORARIES = 3 * 4 * 3  # per pixel of such a block: three float32 temporaries at once
WRITE_BUFFERS_OUT = 4  # per output pixel: Pillow's copy (RGB is stored as 4 bytes) when writing

_ESTIMATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def choose_tile(height: int, width: int, *, bytes_per_pixel: float, budget_bytes: float, multiple: int = 4,
                scale: int = 1, min_tile: int = MIN_TILE, max_tile: int = MAX_TILE) -> int:
    """Tile side (input pixels) for an ``height x width`` image, or 0 for the whole image.

    ``bytes_per_pixel``: the network's working memory per input pixel (safety factor included);
    ``budget_bytes``: what the image buffers and the network together may use. The tile ``t`` is
    the largest with ``image_bytes + t^2 * tile_bytes_per_pixel + t * strip_bytes_per_row <=
    budget`` (:func:`memory_needed`), a multiple of ``multiple``, at least ``min_tile`` (even when
    the budget is smaller: a tile that small would be all overlap), at most ``max_tile``.
    """
    image_bytes, whole_bytes, tile_square, tile_row = _memory_terms(height, width, bytes_per_pixel, scale,
                                                                    multiple)
    room = budget_bytes - image_bytes
    if whole_bytes <= room:
        return 0
    if tile_square <= 0:
        side = max_tile
    else:  # the positive root of tile_square * t^2 + tile_row * t = room
        room = max(room, 0.0)
        side = int((math.sqrt(tile_row * tile_row + 4 * tile_square * room) - tile_row) / (2 * tile_square))
    side = min(max(side, min_tile), max_tile)
    side -= side % multiple
    return max(side, multiple)


def _memory_terms(height, width, bytes_per_pixel, scale, multiple):
    """(bytes whatever the tile, the network on the whole image, per tile side squared, per tile side)."""
    pixels = height * width
    image_bytes = (pixels * (IMAGE_BUFFERS_IN + IMAGE_BUFFERS_OUT * scale * scale)
                   + FINISH_BLOCK_PIXELS * FINISH_TEMPORARIES)
    padded_width = width + (-width) % max(multiple, 1)
    tile_square = bytes_per_pixel + TILE_BUFFERS_IN + TILE_BUFFERS_OUT * scale * scale
    tile_row = STRIP_BUFFERS * scale * scale * padded_width  # a strip: tile x scale output rows
    return image_bytes, pixels * bytes_per_pixel, tile_square, tile_row


def memory_needed(height: int, width: int, tile: int, *, bytes_per_pixel: float, scale: int = 1,
                  multiple: int = 4) -> dict:
    """The model's bytes for this image and ``tile`` (0: whole): ``run_bytes`` while the network
    runs, ``write_bytes`` while the PNG is written (the result and Pillow's copy)."""
    image_bytes, whole_bytes, tile_square, tile_row = _memory_terms(height, width, bytes_per_pixel, scale,
                                                                    multiple)
    if tile and (height > tile or width > tile):
        network = tile * tile * tile_square + tile * tile_row
    else:
        network = whole_bytes
    out_pixels = height * width * scale * scale
    return {"run_bytes": image_bytes + network,
            "write_bytes": out_pixels * (IMAGE_BUFFERS_OUT + WRITE_BUFFERS_OUT)}


def available_memory() -> int:
    """Bytes the system can still give (Linux ``MemAvailable``; else free physical pages)."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 8 * 1024 ** 3


def resident_memory() -> int:
    """Bytes this process holds now (Linux ``/proc/self/statm``; else the peak so far)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_budget(peak_budget: int = PEAK_BUDGET) -> float:
    """Bytes an image may still take: min(peak budget, half the available memory) less what the
    process holds now."""
    resident = resident_memory()
    return min(peak_budget - resident, available_memory() / 2)


def _graph_live_bytes(graph) -> int:
    """Peak bytes of the tensors alive at once when ``graph``'s ops run in creation order (each
    tensor from its op to its last consumer; variables and constants not counted)."""
    import tensorflow as tf

    tf_resource, tf_variant = tf.resource, tf.variant
    ops = graph.get_operations()
    position = {op.name: i for i, op in enumerate(ops)}
    skip = {"Const", "ReadVariableOp", "VarHandleOp", "Placeholder", "NoOp", "Identity", "Shape"}
    ends: dict[int, list[int]] = {}
    live = peak = 0
    for i, op in enumerate(ops):
        if op.type not in skip:
            for tensor in op.outputs:
                shape = tensor.shape
                if shape.rank is None or not shape.is_fully_defined() or tensor.dtype in (tf_resource, tf_variant):
                    continue
                size = shape.num_elements() * tensor.dtype.size
                last = max((position[c.name] for c in tensor.consumers()), default=i)
                live += size
                ends.setdefault(last, []).append(size)
        peak = max(peak, live)
        live -= sum(ends.pop(i, []))
    return peak


def activation_bytes_per_pixel(model, channels: int | None = None, probe: int = PROBE) -> float:
    """A single-input image network's live activation bytes per input pixel (graph estimate at a
    ``probe`` x ``probe`` input, times ``SAFETY``), cached per model."""
    if model in _ESTIMATES:
        return _ESTIMATES[model]
    import tensorflow as tf

    channels = channels or int(model.inputs[0].shape[-1])
    spec = tf.TensorSpec((1, probe, probe, channels), tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    estimate = SAFETY * _graph_live_bytes(graph) / (probe * probe)
    _ESTIMATES[model] = estimate
    return estimate


def auto_tile(model, height: int, width: int, *, multiple: int = 4, scale: int = 1) -> int:
    """Tile side for ``model`` on an image of this size in this process now; 0 = whole image.

    A network with instance norms is tiled with the whole image's statistics
    (``common/whole_image_norm.py``): its kept activations get ``KEPT_TILING_FACTOR`` times their
    bytes per image pixel beside the tile, and its tiles are at least ``CONTEXT_TILES`` times the
    context each needs on one side (smaller ones would be mostly context)."""
    if height * width * scale * scale <= PROBE * PROBE * 16:  # 256 x 256 result pixels: always whole
        return 0
    from common import whole_image_norm

    per_pixel, budget, min_tile = activation_bytes_per_pixel(model), memory_budget(), MIN_TILE
    margin = whole_image_norm.context(model, multiple)
    if margin:
        if choose_tile(height, width, bytes_per_pixel=per_pixel, budget_bytes=budget, multiple=multiple,
                       scale=scale) == 0:
            return 0  # it fits whole: nothing to keep (and no analysis of the network to make)
        budget -= KEPT_TILING_FACTOR * whole_image_norm.kept_bytes_per_pixel(model, multiple) * height * width
        min_tile = max(MIN_TILE, CONTEXT_TILES * margin)
    return choose_tile(height, width, bytes_per_pixel=per_pixel, budget_bytes=budget, multiple=multiple,
                       scale=scale, min_tile=min_tile)
