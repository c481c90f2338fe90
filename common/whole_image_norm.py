"""Tiled inference whose instance norms use the whole image's statistics.

An instance norm normalises each channel by the mean and variance over the whole image. Run in
tiles, each tile would be normalised by its own statistics: the tiles disagree (33 dB between a
tiled and a whole DeblurGAN ``paper`` output at 1280x720 with 512-px tiles, README "Performance")
and a large photo shows the tile grid. :class:`WholeImageNorm` gives the tiles the statistics of
the whole image, with no more memory than the tiles and a few cached activations:

- a copy of the network is made in which each instance norm is a :class:`FrozenInstanceNorm`,
  which normalises with statistics it is given;
- the instance norms are visited in graph order. For each, the part of the network before it is
  run over every tile (with the norms before it already frozen at their whole-image values), and
  the sums and squared sums of its input are added up over the pixels each tile owns (the tiles
  partition the image, each owning up to the middle of its overlaps): its whole-image mean and
  variance;
- the activations every later layer still needs at such a point (the norm's input and, inside a
  residual block, the block's input) are kept per tile when they fit the memory left beside a
  tile, so the next part starts from them instead of from the image (DeblurGAN in bf16: every
  point at 1/2 and 1/4 resolution; the full-resolution ones are recomputed from the last kept
  point); when none between two norms fits, the cheapest is kept in temporary files;
- :meth:`WholeImageNorm.tile_output` runs the rest for one tile; ``common.inference.restore_array``
  blends the tiles as for any network.

Each tile also has :func:`context` pixels (the network's receptive field,
``common/receptive_field.py``) on every inner side that it neither owns nor gives any blending
weight: there its own edge padding reaches in (its neighbour owns them). Every pixel that is kept or counted saw the
same inputs and statistics as in a whole-image run, so a tiled result equals the whole-image
result to rounding (tests/test_whole_image_norm.py). Dropout on (``training=True``, DeblurGAN's
``--stochastic``) would draw other masks in every pass, so that mode keeps per-tile statistics.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np


def is_instance_norm(layer) -> bool:
    """A ``GroupNormalization`` with one group per channel over the last axis (``common.layers.
    instance_norm`` and Keras' ``GroupNormalization(groups=-1)`` once built)."""
    if not isinstance(layer, keras.layers.GroupNormalization) or not layer.built:
        return False
    channels = layer._inbound_nodes[0].input_tensors[0].shape[-1] if layer._inbound_nodes else None
    return layer.axis in (-1, 3) and channels is not None and layer.groups == channels


def instance_norms(model) -> list:
    """The instance norms of ``model`` (nested models included)."""
    return [layer for layer in model._flatten_layers(include_self=False) if is_instance_norm(layer)]


_CONTEXT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> receptive-field radius or None


def _radius(model):
    if not isinstance(model, keras.Model):
        return None
    if model not in _CONTEXT:
        from common.receptive_field import receptive_field

        norms = instance_norms(model)
        top = {id(layer) for layer in model.layers}
        radius = None
        if (norms and len(model.inputs) == 1
                and all(id(norm) in top for norm in norms)
                and all(len(layer._inbound_nodes) <= 1 for layer in model.layers)):
            try:
                radius = receptive_field(model).radius
            except ValueError:  # a layer of unknown reach: tiles keep their own statistics
                radius = None
        _CONTEXT[model] = radius
    return _CONTEXT[model]


def supported(model) -> bool:
    """Whether :class:`WholeImageNorm` can run ``model``: instance norms, all at the top level of a
    functional model with one image input, each layer called once, every layer's spatial reach
    known (``common/receptive_field.py``)."""
    return _radius(model) is not None


def context(model, multiple: int = 4) -> int:
    """The context a tile of ``model`` needs on each side for its kept pixels to equal the whole
    image's: its receptive-field radius, rounded up to ``multiple`` (0 if not :func:`supported`)."""
    radius = _radius(model)
    return 0 if radius is None else -(-radius // multiple) * multiple


@keras.saving.register_keras_serializable(package="gan_restoration")
class FrozenInstanceNorm(keras.layers.Layer):
    """Instance normalisation with given per-channel statistics (``mean``, ``variance``, float32
    weights set by :class:`WholeImageNorm`); computes in float32 and returns the compute dtype,
    as ``common.layers.ExactGroupNormalization``. ``gamma`` / ``beta`` when affine."""

    def __init__(self, epsilon=1e-5, center=False, scale=False, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)

    def build(self, input_shape):
        channels = int(input_shape[-1])

        def weight(name, init):
            # float32 whatever the policy (autocast=False: not cast to the compute dtype)
            return self.add_weight(shape=(channels,), initializer=init, trainable=False, dtype="float32",
                                   name=name, autocast=False)

        self.mean, self.variance = weight("mean", "zeros"), weight("variance", "ones")
        self.gamma = weight("gamma", "ones") if self.scale else None
        self.beta = weight("beta", "zeros") if self.center else None

    def call(self, inputs):
        from keras import ops

        if keras.backend.backend() == "tensorflow" and self.compute_dtype in ("bfloat16", "float16"):
            return self._fused(inputs)
        multiplier = ops.rsqrt(self.variance + self.epsilon)
        if self.scale:
            multiplier = multiplier * self.gamma
        outputs = (ops.cast(inputs, "float32") - self.mean) * multiplier
        if self.center:
            outputs = outputs + self.beta
        return ops.cast(outputs, self.compute_dtype)

    def _fused(self, inputs):
        """One kernel under a 16-bit policy, as ExactGroupNormalization's fused path (the
        inference form of the same TensorFlow batch-norm kernel, given the statistics)."""
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels], tf.float32)
        offset = self.beta if self.center else tf.zeros([channels], tf.float32)
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, mean=self.mean, variance=self.variance, epsilon=self.epsilon,
            is_training=False)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}



def frozen_copy(model):
    """``(copy, frozen)``: a copy of ``model`` (same weights, names, dtype policies) whose instance
    norms are :class:`FrozenInstanceNorm` layers (``frozen``, in graph order), their statistics
    still to be set."""
    made = []

    def clone(layer):
        if is_instance_norm(layer):
            copy = FrozenInstanceNorm(layer.epsilon, layer.center, layer.scale, name=layer.name,
                                      dtype=layer.dtype_policy)
        else:
            copy = layer.__class__.from_config(layer.get_config())
        made.append((layer, copy))
        return copy

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer, new in made:
        if isinstance(new, FrozenInstanceNorm):
            if layer.scale:
                new.gamma.assign(np.asarray(layer.gamma.numpy(), np.float32))
            if layer.center:
                new.beta.assign(np.asarray(layer.beta.numpy(), np.float32))
        else:
            new.set_weights(layer.get_weights())
    return copy, [layer for layer in copy.layers if isinstance(layer, FrozenInstanceNorm)]


class _Graph:
    """The tensors of a flat functional model: who makes each and where it is last read."""

    def __init__(self, model):
        self.position = {id(layer): i for i, layer in enumerate(model.layers)}  # the InputLayer is 0
        self.input = model.inputs[0]
        self.tensors = {}  # id -> [tensor, producer's position, last reader's position]
        for i, layer in enumerate(model.layers):
            for tensor in self.inputs_of(layer):
                self._read(tensor, i)
        for tensor in model.outputs:
            self._read(tensor, len(model.layers))  # read after the last layer

    def _read(self, tensor, position: int) -> None:
        entry = self.tensors.get(id(tensor))
        if entry is None:
            made = self.position[id(tensor._keras_history.operation)]
            entry = self.tensors[id(tensor)] = [tensor, made, position]
        entry[2] = max(entry[2], position)

    @staticmethod
    def inputs_of(layer) -> list:
        return list(layer._inbound_nodes[0].input_tensors) if layer._inbound_nodes else []

    def crossing(self, position: int) -> list:
        """The tensors made before layer ``position`` and read by it or later (the model's input
        aside: it is the image)."""
        return [tensor for tensor, made, last in self.tensors.values()
                if made < position <= last and tensor is not self.input]

    def needed(self, outputs, available) -> list:
        """Which of ``available`` tensors the ``outputs`` are computed from."""
        available_ids = {id(t) for t in available}
        found, seen, stack = [], set(), list(outputs)
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            if id(tensor) in available_ids:
                found.append(tensor)
                continue
            stack.extend(self.inputs_of(tensor._keras_history.operation))
        return [t for t in available if id(t) in {id(f) for f in found}]


def _release_freed_memory() -> None:
    """Hand the memory of freed arrays back to the system (glibc's ``malloc_trim``; elsewhere
    nothing): kept activations are replaced tile by tile with others of other sizes, and glibc
    keeps freed blocks below its mmap threshold (32 MB) otherwise."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def _owned(starts: list[int], tile: int, size: int, multiple: int) -> list[tuple[int, int]]:
    """Each tile's owned rows (or columns), in its own coordinates: consecutive tiles meet in the
    middle of their overlap (a multiple of ``multiple``), so the tiles partition ``0 .. size``."""
    bounds = [0]
    for here, after in zip(starts, starts[1:]):
        middle = (after + min(here + tile, size)) // 2
        bounds.append(max(after, middle - middle % multiple))
    bounds.append(size)
    return [(low - start, high - start) for start, low, high in zip(starts, bounds, bounds[1:])]


class _Analysis:
    """What :class:`WholeImageNorm` needs of a model, made once per model: the frozen copy, its
    graph, each tensor's bytes per input pixel, and the traced parts."""

    def __init__(self, model, multiple: int):
        self.frozen_model, self.norms = frozen_copy(model)
        self.graph = graph = _Graph(self.frozen_model)
        # bytes of each tensor per input pixel (channels, resolution, dtype), from one small run
        tensors = [t for t, _, _ in graph.tensors.values() if t is not graph.input]
        side = 16 * multiple
        probe = np.zeros((1, side, side, int(graph.input.shape[-1])), np.float32)
        values = keras.Model(graph.input, tensors)(probe, training=False)
        self.per_pixel = {id(t): np.asarray(v).nbytes / (side * side) for t, v in zip(tensors, values)}
        self.functions = {}

    def points(self, norm) -> list[list]:
        """The crossing tensors of each graph position from the previous norm (excluded) to
        ``norm`` (included), latest first."""
        position = self.graph.position[id(norm)]
        index = self.norms.index(norm)
        previous = self.graph.position[id(self.norms[index - 1])] if index else 0
        return [self.graph.crossing(p) for p in range(position, previous, -1)]

    def point_bytes(self, point) -> float:
        return sum(self.per_pixel[id(t)] for t in point)

    def kept_bytes_per_pixel(self) -> float:
        """Bytes per input pixel (of all tiles together) to keep, after every norm, the cheapest
        point before the next norm: what lets every pass start at most one norm back."""
        return max((min(self.point_bytes(p) for p in self.points(norm)) for norm in self.norms), default=0.0)

    def segment(self, start_tensors, outputs):
        """A function running the frozen copy from the image and ``start_tensors`` to ``outputs``:
        (image crop (1, h, w, C), {tensor id: array}) -> list of arrays, one per output."""
        import tensorflow as tf

        graph = self.graph
        # a tensor of the start point still needed later passes through (Keras cannot build a
        # model whose output is one of its inputs)
        start_ids = {id(t) for t in start_tensors}
        computed = [t for t in outputs if id(t) not in start_ids]
        inputs = graph.needed(computed, [graph.input] + list(start_tensors))
        key = (tuple(id(t) for t in inputs), tuple(id(t) for t in computed))
        if key not in self.functions:
            part = keras.Model(inputs, computed)
            self.functions[key] = tf.function(lambda xs: part(xs, training=False), reduce_retracing=True)
        function = self.functions[key]

        def run(crop, kept):
            feeds = [crop if t is graph.input else kept[id(t)] for t in inputs]
            results = function([tf.convert_to_tensor(f) for f in feeds])
            results = iter(results if isinstance(results, (list, tuple)) else [results])
            return [kept[id(t)] if id(t) in start_ids else np.asarray(next(results)) for t in outputs]

        return run


_ANALYSES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _analysis(model, multiple: int) -> _Analysis:
    if model not in _ANALYSES:
        _ANALYSES[model] = _Analysis(model, multiple)
    return _ANALYSES[model]


def kept_bytes_per_pixel(model, multiple: int = 4) -> float:
    """Memory per input pixel :class:`WholeImageNorm` wants for kept activations (so that no pass
    recomputes more than the part since the previous norm); ``common.tiling.auto_tile`` leaves it
    free beside the tile."""
    return _analysis(model, multiple).kept_bytes_per_pixel()


class WholeImageNorm:
    """Runs ``model`` tile by tile with every instance norm at the whole image's statistics.

    Args:
        model: a network :func:`supported` accepts (one image input).
        padded: the image as ``restore_array`` tiles it, (H, W, C) float32 (padded to the multiple).
        tops, lefts: the tiles' first rows and columns; ``tile``: their side (edge tiles may be
            smaller where the image is); ``multiple``: the network's size multiple.
        cache_budget: bytes the kept activations may take (``None``: what
            ``common.tiling.memory_budget`` leaves beside one tile of ``model``).
        use_disk: keep a point in temporary files when none fits in memory.

    ``statistics`` maps each norm's name to its (mean, variance), float64, once computed.
    """

    def __init__(self, model, padded: np.ndarray, tops: list[int], lefts: list[int], tile: int,
                 multiple: int = 4, cache_budget: float | None = None, use_disk: bool = True):
        self.padded, self.tile, self.multiple = padded, tile, multiple
        self.tiles = [(top, left) for top in tops for left in lefts]
        height, width = padded.shape[:2]
        own_rows, own_cols = _owned(tops, tile, height, multiple), _owned(lefts, tile, width, multiple)
        self.owned = [(rows, cols) for rows in own_rows for cols in own_cols]
        if cache_budget is None:
            from common import tiling

            cache_budget = tiling.memory_budget() - tile * tile * tiling.activation_bytes_per_pixel(model)
        self.cache_budget = max(float(cache_budget), 0.0)
        self.analysis = _analysis(model, multiple)
        self.statistics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.kept_points: list[list[str]] = []  # the layers whose outputs were kept, point by point
        self.kept_where: list[str] = []  # and where ("memory" or "disk")
        self.use_disk = use_disk
        self._final = None
        self._folder = None  # a TemporaryDirectory while points are kept on disk

    # ------------------------------------------------------------------ pieces
    def _crop(self, index: int) -> np.ndarray:
        top, left = self.tiles[index]
        return self.padded[top: top + self.tile, left: left + self.tile][None]

    def _owned_sums(self, index: int, values: np.ndarray, crop_shape) -> tuple[np.ndarray, np.ndarray, int]:
        """float64 per-channel sum and squared sum of ``values`` (a norm's input on tile ``index``)
        over the pixels the tile owns, scaled to the tensor's resolution."""
        (row0, row1), (col0, col1) = self.owned[index]
        height, width = values.shape[1:3]
        bounds = []
        for low, high, size, full in ((row0, row1, height, crop_shape[0]), (col0, col1, width, crop_shape[1])):
            if (low * size) % full or (high * size) % full:
                raise ValueError(f"whole-image statistics: a tile boundary ({low}, {high}) of a {full}-px tile "
                                 f"does not fall on a pixel of a {size}-px activation")
            bounds.append((low * size // full, high * size // full))
        (r0, r1), (c0, c1) = bounds
        channels = values.shape[-1]
        total, squares = np.zeros(channels), np.zeros(channels)
        rows = max(1, (1 << 20) // max(1, (c1 - c0) * channels))  # float64 blocks of about 8 MB
        for first in range(r0, r1, rows):
            block = np.asarray(values[0, first: min(first + rows, r1), c0:c1], np.float64).reshape(-1, channels)
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
        return total, squares, (r1 - r0) * (c1 - c0)

    # ------------------------------------------------------------------ what is kept
    def keep_plan(self) -> list[tuple[list, str]]:
        """For each norm (graph order), ``(tensors, where)``: the point kept per tile after its pass
        and ``"memory"`` or ``"disk"`` (``([], "")``: none new; the next pass starts from the
        previous kept point, or the image).

        A pass runs from the last kept point to the norm's input. Between the previous norm and
        this one, the latest graph position whose crossing tensors (for all tiles together) fit
        ``cache_budget`` is kept in memory, so later passes start there instead of further back.
        When none fits, the cheapest is kept in files in the temporary folder if the disk has room
        (a float32 12 MP photo: 1.6 GB per point), so no pass has to start from the image."""
        import shutil
        import tempfile

        pixels = sum(min(self.tile, self.padded.shape[0] - top) * min(self.tile, self.padded.shape[1] - left)
                     for top, left in self.tiles)
        disk_room = shutil.disk_usage(tempfile.gettempdir()).free / 2 if self.use_disk else 0.0
        plan = []
        for norm in self.analysis.norms:
            points = [p for p in self.analysis.points(norm) if p]  # (none: only the image crosses)
            if not points:
                plan.append(([], ""))
                continue
            fitting = [p for p in points if self.analysis.point_bytes(p) * pixels <= self.cache_budget]
            if fitting:
                plan.append((fitting[0], "memory"))
                continue
            cheapest = min(points, key=self.analysis.point_bytes)
            plan.append((cheapest, "disk") if self.analysis.point_bytes(cheapest) * pixels <= disk_room else ([], ""))
        return plan

    def _store(self, index: int, tensors, values, where: str, serial: int) -> dict:
        """Tile ``index``'s kept point: the arrays (copied out of TensorFlow's allocator, which
        pools freed blocks by size and would grow by a whole point when the next one has other
        shapes), or their files."""
        if where == "memory":
            return {id(t): np.array(v, copy=True) for t, v in zip(tensors, values)}
        if self._folder is None:
            import tempfile

            self._folder = tempfile.TemporaryDirectory(prefix="whole_image_norm_")
        stored = {}
        for k, (t, v) in enumerate(zip(tensors, values)):
            path = f"{self._folder.name}/{serial}_{index}_{k}.bin"
            np.ascontiguousarray(v).tofile(path)
            stored[id(t)] = (path, v.dtype, v.shape)
        return stored

    @staticmethod
    def _load(kept: dict) -> dict:
        return {key: np.fromfile(v[0], v[1]).reshape(v[2]) if isinstance(v, tuple) else v
                for key, v in kept.items()}

    @staticmethod
    def _drop(kept: dict) -> None:
        import os

        for value in kept.values():
            if isinstance(value, tuple):
                os.remove(value[0])

    # ------------------------------------------------------------------ the passes
    def compute_statistics(self) -> None:
        """Visit the norms in graph order and set each one's whole-image statistics."""
        analysis = self.analysis
        kept = [{} for _ in self.tiles]  # per tile: tensor id -> array at the last kept point
        start: list = []  # the tensors of the last kept point (none: the image)
        for serial, (norm, (keep, where)) in enumerate(zip(analysis.norms, self.keep_plan())):
            norm_input = analysis.graph.inputs_of(norm)[0]
            outputs = [norm_input] + [t for t in keep if t is not norm_input]
            run = analysis.segment(start, outputs)
            total, squares, count = 0.0, 0.0, 0
            for index in range(len(self.tiles)):
                crop = self._crop(index)
                values = run(crop, self._load(kept[index]))
                s, q, n = self._owned_sums(index, values[0], crop.shape[1:3])
                total, squares, count = total + s, squares + q, count + n
                if keep:  # the previous kept point of this tile is freed here
                    by_id = {id(t): v for t, v in zip(outputs, values)}
                    self._drop(kept[index])
                    kept[index] = self._store(index, keep, [by_id[id(t)] for t in keep], where, serial)
                    del values, by_id
                    _release_freed_memory()
            if keep:
                start = keep
                self.kept_points.append([t._keras_history.operation.name for t in keep])
                self.kept_where.append(where)
            mean = total / count
            variance = np.maximum(squares / count - mean * mean, 0.0)
            norm.mean.assign(mean.astype(np.float32))
            norm.variance.assign(variance.astype(np.float32))
            self.statistics[norm.name] = (mean, variance)
        self._kept = kept
        self._final = analysis.segment(start, list(analysis.frozen_model.outputs))

    def tile_output(self, top: int, left: int) -> np.ndarray:
        """The network's output for the tile at (``top``, ``left``), float32 (H, W, C), after
        :meth:`compute_statistics`; the tile's kept activations are freed."""
        if self._final is None:
            self.compute_statistics()
        index = self.tiles.index((top, left))
        result = self._final(self._crop(index), self._load(self._kept[index]))[0]
        self._drop(self._kept[index])
        self._kept[index] = {}
        if self._folder is not None and not any(self._kept):
            self._folder.cleanup()
            self._folder = None
        _release_freed_memory()
        return np.asarray(result[0], np.float32)


__all__ = ["FrozenInstanceNorm", "WholeImageNorm", "context", "frozen_copy", "instance_norms",
           "is_instance_norm", "kept_bytes_per_pixel", "supported"]
