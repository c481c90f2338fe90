"""Data sources (A/B folders, side-by-side images, HDF5, single images) and tf.data pipelines.

Sources are small Python objects that know where the images are and read one item at a time:

- :class:`PairSource` (``open_pairs``): ``(degraded, target)`` uint8 pairs, from
  ``DIR/A`` + ``DIR/B`` (DeblurGAN's organised GoPro layout: A = blurred, B = sharp; paired by file
  name without suffix), from a folder of side-by-side images (DeblurGAN's ``combine_A_and_B.py``
  output has the blurred image LEFT; the DGF tutorial's ``data/small`` has the SHARP image left,
  hence the ``side_by_side`` order parameter), or from an HDF5 file in the DGF tutorial layout
  (``{train,test}_data_full`` = sharp, ``{train,test}_data_blur``, uint8 ``(N, H, W, 3)``), which is
  read one item at a time straight from disk (the file may be larger than memory).
- :class:`ImageSource` (``open_images``): single images (HR photos for SR, photos for inpainting).

The pipelines (``pair_dataset``, ``image_dataset``) decode in parallel with ``tf.numpy_function``
over ``source.load``, resize/crop/flip in TensorFlow, and yield float32 batches in [-1, 1].
Every random choice is a stateless function of ``(seed, global element index)``:

- element ``g`` belongs to epoch ``g // len(source)``; its item is
  ``index_shuffle(g % len(source), seed=(seed, epoch))``;
- its crop, flip and random resize use ``tf.random.stateless_*`` with a seed folded from
  ``(seed, g)``.

So ``start_step=k`` starts directly at element ``k * batch_size`` and yields exactly the batches
an uninterrupted run would have seen from step ``k`` on.

TensorFlow is imported only by the functions that need it, so the dataset scripts start fast.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError, first_line
from common.image_io import IMAGE_EXTENSIONS, list_images, read_image

ORDERS = ("degraded_left", "target_left")
HDF5_SUFFIXES = (".h5", ".hdf5")

PAIR_LAYOUTS = ("DIR/A (degraded) + DIR/B (target) images paired by file name, a folder of "
                "side-by-side images, an .h5 file with {split}_data_full (sharp) and "
                "{split}_data_blur datasets, or DIR/train + DIR/test holding one of those")
IMAGE_LAYOUTS = ("a folder of images, or DIR/train + DIR/test folders of images "
                 f"({', '.join(IMAGE_EXTENSIONS)})")

# Salts that keep the random streams of the different choices apart.
_AUGMENT_SALT = 0x5EED_DA7A


def _preview(names, limit: int = 5) -> str:
    names = list(names)
    shown = ", ".join(str(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise UserError(f"side-by-side order {order!r} is not known; use one of {', '.join(ORDERS)}")


def _unique_names(files: list[Path]) -> list[str]:
    """File names without suffix, or with it when two files share a stem."""
    stems = [p.stem for p in files]
    return stems if len(set(stems)) == len(stems) else [p.name for p in files]


def _header_size(path: Path) -> tuple[int, int]:
    """(height, width) as read_image will return it, from the file header only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format in ("JPEG", "MPO", "TIFF", "WEBP"):
                if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    width, height = height, width
    except Exception as error:  # noqa: BLE001 damaged headers make Pillow raise anything
        reason = (str(error) or type(error).__name__).replace(f" '{path}'", "")
        raise UserError(f"{path}: cannot read image ({reason}); replace or remove the file") from error
    return height, width


# ----------------------------------------------------------------------------- unreadable items
# Training skips an image that cannot be read (one corrupt file among thousands must not end a
# run of days): its place in the batch is taken by the next readable item, so batches stay a pure
# function of (seed, step). Skipped files are counted and listed at the end of each epoch; more
# than the limit (train.py --max-bad-images; default 1% of the items, at least 10) is an error.
_SKIPPED: dict[str, str] = {}  # item name -> one line naming the file and the reason
_REPORTED: set[str] = set()
_SKIP_LOCK = threading.Lock()
_LIMIT: list = [None]


def set_bad_item_limit(limit: int | None) -> None:
    """How many distinct unreadable items training tolerates (None: 1% of the items, >= 10);
    also forgets the items skipped so far."""
    with _SKIP_LOCK:
        _LIMIT[0] = None if limit is None else max(0, int(limit))
        _SKIPPED.clear()
        _REPORTED.clear()


def _limit_for(count: int) -> int:
    return _LIMIT[0] if _LIMIT[0] is not None else max(10, count // 100)


def skip_bad_item(name: str, line: str, count: int, announce: bool = False) -> None:
    """Record an unreadable item (``line``: one line naming the file and the reason); UserError
    once more than the limit are unreadable. ``announce``: print ``skipped LINE`` now."""
    with _SKIP_LOCK:
        _SKIPPED.setdefault(str(name), line)
        bad = len(_SKIPPED)
        if announce:
            _REPORTED.add(str(name))
    if announce:
        import sys

        print(f"skipped {line}", file=sys.stderr)
    limit = _limit_for(count)
    if bad > limit:
        raise UserError(f"{line}; {bad} of {count} training items are unreadable, more than the "
                        f"limit of {limit} (--max-bad-images); fix or remove them")


def report_skipped_items(when: str) -> int:
    """Print the items skipped so far (new ones by name); returns how many were skipped."""
    with _SKIP_LOCK:
        new = [(n, r) for n, r in _SKIPPED.items() if n not in _REPORTED]
        _REPORTED.update(n for n, _ in new)
        total = len(_SKIPPED)
    if new:
        import sys

        print(f"{when}: skipped {total} unreadable training item(s) so far; new: "
              + "; ".join(line for _, line in new[:10])
              + (f"; ... ({len(new)} new in all)" if len(new) > 10 else ""), file=sys.stderr,
              flush=True)
    return total


def _reason(error: BaseException) -> str:
    return first_line(error, 400)


def load_tolerant(source, index: int):
    """``source.load(index)``; an unreadable item is recorded and the next readable one (in
    source order, wrapping) is returned in its place."""
    count = len(source)
    for offset in range(count):
        item = (index + offset) % count
        try:
            return source.load(item)
        except UserError as error:
            skip_bad_item(source.names[item], _reason(error), count)  # names the file
    raise UserError(f"{source.location}: no item of the training data can be read; check --data")


# ----------------------------------------------------------------------------- locating data

def resolve_data_dir(path, split: str | None = None) -> Path:
    """Where the data for ``split`` lives under ``path`` (a ``--data`` argument).

    ``path`` may hold the data directly or be split into ``path/train`` and ``path/test``.
    ``split`` ("train", "test", ...) picks ``path/<split>`` when it exists, else ``path`` itself;
    ``None`` means ``path/train`` if present, else ``path``. A file is returned as it is (an HDF5
    file holds both splits). Raises UserError when ``path`` does not exist.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; --data takes {PAIR_LAYOUTS} "
                        f"(single-image data: {IMAGE_LAYOUTS})")
    if path.is_file():
        return path
    if split is None:
        return path / "train" if (path / "train").is_dir() else path
    return path / split if (path / split).is_dir() else path


def _is_hdf5(path: Path) -> bool:
    if path.suffix.lower() in HDF5_SUFFIXES:
        return True
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


# ----------------------------------------------------------------------------- pair sources

class PairSource:
    """Base class: ``len(source)``, ``source.names``, ``source.load(i) -> (degraded, target)``.

    ``load`` returns two uint8 ``(H, W, 3)`` arrays of the same size: the degraded image (blurred,
    the model input) and the target (sharp).
    """

    names: list[str]
    location: Path

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.location)!r}, {len(self)} pairs)"


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    table: dict[str, Path] = {}
    clashes = []
    for path in files:
        if path.stem in table:
            clashes.append(f"{table[path.stem].name}/{path.name}")
        table[path.stem] = path
    if clashes:
        raise UserError(f"{folder}: several images share a name without suffix ({_preview(clashes)});"
                        " pairs are matched by that name, so rename or remove the extra files")
    return table


class FolderPairSource(PairSource):
    """``A/`` (degraded) and ``B/`` (target) folders, paired by file name without suffix."""

    def __init__(self, a_dir, b_dir, check_sizes: bool = True):
        self.a_dir, self.b_dir = Path(a_dir), Path(b_dir)
        self.location = self.a_dir.parent
        a = _by_stem(list_images(self.a_dir), self.a_dir)
        b = _by_stem(list_images(self.b_dir), self.b_dir)
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        if only_a or only_b:
            parts = []
            if only_a:
                parts.append(f"{len(only_a)} in {self.a_dir.name}/ without a partner in "
                             f"{self.b_dir.name}/: {_preview(only_a)}")
            if only_b:
                parts.append(f"{len(only_b)} in {self.b_dir.name}/ without a partner in "
                             f"{self.a_dir.name}/: {_preview(only_b)}")
            raise UserError(f"{self.location}: {self.a_dir.name}/ and {self.b_dir.name}/ must hold "
                            f"the same file names (pairs are matched by name without suffix); "
                            f"{'; '.join(parts)}; rename or remove them")
        if not a:
            raise UserError(f"{self.a_dir}: no images ({', '.join(IMAGE_EXTENSIONS)}); put the "
                            "degraded images in A/ and the targets with the same names in B/")
        self.names = sorted(a)
        self.pairs = [(a[name], b[name]) for name in self.names]
        if check_sizes:
            self.check_sizes()

    def check_sizes(self) -> None:
        """Raise UserError for pairs whose images differ in size (file headers only). A pair
        whose header cannot be read is left out (counted as a skipped item)."""
        bad, readable = [], []
        for a_path, b_path in self.pairs:
            try:
                size_a, size_b = _header_size(a_path), _header_size(b_path)
            except UserError as error:
                skip_bad_item(a_path.stem, _reason(error), len(self.pairs), announce=True)
                continue
            readable.append((a_path, b_path))
            if size_a != size_b:
                bad.append(f"{a_path.stem} ({size_a[1]}x{size_a[0]} vs {size_b[1]}x{size_b[0]})")
        if bad:
            raise UserError(f"{self.location}: {len(bad)} pairs differ in size between "
                            f"{self.a_dir.name}/ and {self.b_dir.name}/: {_preview(bad)}; "
                            "both images of a pair must have the same width and height")
        if not readable:
            raise UserError(f"{self.location}: none of the {len(self.pairs)} pairs can be read")
        if len(readable) < len(self.pairs):
            self.pairs = readable
            self.names = [a.stem for a, _ in readable]

    def load(self, index: int):
        a_path, b_path = self.pairs[index]
        degraded, target = read_image(a_path), read_image(b_path)
        if degraded.shape != target.shape:
            raise UserError(f"{a_path} and {b_path}: sizes differ ({degraded.shape[1]}x"
                            f"{degraded.shape[0]} vs {target.shape[1]}x{target.shape[0]}); both "
                            "images of a pair must have the same width and height")
        return degraded, target


class SideBySidePairSource(PairSource):
    """A folder of images holding the two images of a pair side by side (even width).

    ``order="degraded_left"``: degraded left, target right (DeblurGAN ``combine_A_and_B.py``,
    pix2pix ``aligned`` mode with AtoB). ``order="target_left"``: sharp left, blurred right (the DGF
    tutorial's ``data/small``, read with ``which_direction=BtoA`` upstream).
    """

    def __init__(self, folder, order: str = "degraded_left", files=None, check_sizes: bool = True):
        _check_order(order)
        self.location = Path(folder)
        self.order = order
        self.files = list(files) if files is not None else list_images(self.location)
        if not self.files:
            raise UserError(f"{self.location}: no side-by-side images ({', '.join(IMAGE_EXTENSIONS)})"
                            f"; --data takes {PAIR_LAYOUTS}")
        self.names = _unique_names(self.files)
        if check_sizes:
            self.check_sizes()

    def check_sizes(self) -> None:
        """Raise UserError for images with an odd width (file headers only). An image whose
        header cannot be read is left out with a ``skipped`` line (and counts against the
        limit of unreadable items)."""
        keep, odd = [], []
        for path in self.files:
            try:
                height, width = _header_size(path)
            except UserError as error:
                skip_bad_item(path.name, _reason(error), len(self.files), announce=True)
                continue
            keep.append(path)
            if width % 2:
                odd.append(f"{path.name} ({width}x{height})")
        if odd:
            raise UserError(f"{self.location}: {len(odd)} side-by-side images have an odd width: "
                            f"{_preview(odd)}; each must be two equal halves side by side "
                            "(or use A/ and B/ folders)")
        if not keep:
            raise UserError(f"{self.location}: none of the {len(self.files)} images can be read")
        if len(keep) < len(self.files):
            self.files = keep
            self.names = _unique_names(keep)

    def load(self, index: int):
        path = self.files[index]
        image = read_image(path)
        width = image.shape[1]
        if width % 2:
            raise UserError(f"{path}: width {width} is odd; a side-by-side image must be two equal "
                            "halves")
        left, right = image[:, : width // 2], image[:, width // 2:]
        if self.order == "degraded_left":
            return np.ascontiguousarray(left), np.ascontiguousarray(right)
        return np.ascontiguousarray(right), np.ascontiguousarray(left)


class HDF5PairSource(PairSource):
    """The DGF tutorial's HDF5 layout: ``{split}_data_full`` (sharp) / ``{split}_data_blur``.

    uint8 ``(N, H, W, 3)`` datasets. Nothing is read up front but shapes (and the optional
    ``{split}_names`` dataset written by ``datasets/build_hdf5.py``); ``load(i)`` reads item ``i``
    from disk through a file handle opened lazily in each process, so the file may be larger
    than memory and the source can be pickled.
    """

    def __init__(self, path, split: str | None = None):
        import h5py

        self.location = self.path = Path(path)
        try:
            handle = h5py.File(self.path, "r")
        except OSError as error:
            raise UserError(f"{self.path}: cannot open as HDF5 ({error}); give an .h5 file made "
                            "by datasets/build_hdf5.py") from error
        with handle:
            splits = sorted(key[: -len("_data_full")] for key in handle.keys()
                            if key.endswith("_data_full") and
                            key[: -len("_data_full")] + "_data_blur" in handle)
            if split is None:
                split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
            if split not in splits:
                raise UserError(f"{self.path}: no {split or 'train'}_data_full and "
                                f"{split or 'train'}_data_blur datasets (splits found: "
                                f"{', '.join(splits) or 'none'}); build the file with "
                                "datasets/build_hdf5.py")
            self.split = split
            self.full_key, self.blur_key = f"{split}_data_full", f"{split}_data_blur"
            full, blur = handle[self.full_key], handle[self.blur_key]
            for dataset in (full, blur):
                if dataset.ndim != 4 or dataset.shape[-1] != 3 or dataset.dtype != np.uint8:
                    raise UserError(f"{self.path}: dataset {dataset.name} is {dataset.dtype} "
                                    f"{dataset.shape}; expected uint8 (N, H, W, 3)")
            if full.shape != blur.shape:
                raise UserError(f"{self.path}: {self.full_key} {full.shape} and {self.blur_key} "
                                f"{blur.shape} differ in shape; they must match item for item")
            if full.shape[0] == 0:
                raise UserError(f"{self.path}: {self.full_key} is empty")
            self.shape = tuple(full.shape)
            names_key = f"{split}_names"
            if names_key in handle and handle[names_key].shape == (full.shape[0],):
                self.names = [n.decode() if isinstance(n, bytes) else str(n)
                              for n in handle[names_key][()]]
            else:
                self.names = [f"{split}_{i:06d}" for i in range(full.shape[0])]
        self._handle = None
        self._pid = None
        self._lock = threading.Lock()

    def _file(self):
        if self._handle is None or self._pid != os.getpid():
            import h5py

            with self._lock:
                if self._handle is None or self._pid != os.getpid():
                    self._handle = h5py.File(self.path, "r")
                    self._pid = os.getpid()
        return self._handle

    def load(self, index: int):
        try:
            handle = self._file()
            return handle[self.blur_key][index], handle[self.full_key][index]
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            raise UserError(f"{self.path}: cannot read item {index} of {self.split} "
                            f"({_reason(error)}); the file is damaged, rebuild it with "
                            "datasets/build_hdf5.py") from None

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"], state["_pid"], state["_lock"] = None, None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def open_pairs(path, split: str | None = None, side_by_side: str = "degraded_left") -> PairSource:
    """Open paired data: ``(degraded, target)`` items.

    ``path``: ``DIR/A`` + ``DIR/B`` (paired by file name without suffix), a folder of side-by-side
    images (``side_by_side`` says which half is the degraded one: ``"degraded_left"`` for
    DeblurGAN's combined images, ``"target_left"`` for the DGF data), an HDF5 file (or a folder
    holding exactly one) with ``{split}_data_full`` / ``{split}_data_blur``, or ``DIR/train`` +
    ``DIR/test`` each holding one of those. ``split`` as in :func:`resolve_data_dir`.
    """
    _check_order(side_by_side)
    where = resolve_data_dir(path, split)
    if where.is_file():
        if _is_hdf5(where):
            return HDF5PairSource(where, split)
        raise UserError(f"{where}: not a folder or an HDF5 file; --data takes {PAIR_LAYOUTS}")
    has_a, has_b = (where / "A").is_dir(), (where / "B").is_dir()
    if has_a and has_b:
        return FolderPairSource(where / "A", where / "B")
    if has_a or has_b:
        missing = "B" if has_a else "A"
        raise UserError(f"{where}: has {'A' if has_a else 'B'}/ but no {missing}/; put the "
                        "degraded images in A/ and the targets with the same names in B/")
    images = list_images(where)
    if images:
        return SideBySidePairSource(where, side_by_side, files=images)
    h5_files = sorted(p for p in where.iterdir() if p.suffix.lower() in HDF5_SUFFIXES)
    if len(h5_files) == 1:
        return HDF5PairSource(h5_files[0], split)
    if len(h5_files) > 1:
        raise UserError(f"{where}: several HDF5 files ({_preview(p.name for p in h5_files)}); "
                        "pass the one to use")
    raise UserError(f"{where}: no image pairs found; --data takes {PAIR_LAYOUTS}")


# ----------------------------------------------------------------------------- single images

class ImageSource:
    """Single images: ``len(source)``, ``source.names``, ``source.load(i) -> uint8 (H, W, 3)``."""

    def __init__(self, files, location=None):
        self.files = [Path(p) for p in files]
        self.location = Path(location) if location is not None else (
            self.files[0].parent if self.files else Path("."))
        if not self.files:
            raise UserError(f"{self.location}: no images; expected {IMAGE_LAYOUTS}")
        self.names = _unique_names(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> np.ndarray:
        return read_image(self.files[index])

    def __repr__(self) -> str:
        return f"ImageSource({str(self.location)!r}, {len(self)} images)"


def open_images(path, split: str | None = None) -> ImageSource:
    """Open a folder of single images (``DIR`` or ``DIR/<split>``), or one image file."""
    where = resolve_data_dir(path, split)
    if where.is_file():
        if where.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UserError(f"{where}: not an image file; expected {IMAGE_LAYOUTS}")
        return ImageSource([where], where.parent)
    files = list_images(where)
    if not files:
        raise UserError(f"{where}: no images; expected {IMAGE_LAYOUTS}")
    return ImageSource(files, where)


# ----------------------------------------------------------------------------- tf.data pipelines

def _pair(size, name):
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name} must be an int or (height, width) of positive ints, got {size}")
    return size


def _element_indices(tf, length: int, batch_size: int, seed: int, start_step: int, repeat: bool,
                     shuffle: bool):
    """Dataset of (global element index g, item index) pairs."""
    if length < 1:
        raise UserError("the data source is empty; check --data")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    start = int(start_step) * int(batch_size)
    if repeat:
        elements = tf.data.Dataset.counter(start, dtype=tf.int64)
    else:
        elements = tf.data.Dataset.range(min(start, length), length, dtype=tf.int64)
    n = tf.constant(length, tf.int64)
    seed_t = tf.constant(int(seed), tf.int64)

    def pick(g):
        epoch, position = g // n, g % n
        if shuffle:
            item = tf.random.experimental.index_shuffle(
                position, seed=tf.stack([seed_t, epoch]), max_index=n - 1)
        else:
            item = position
        return g, item

    return elements.map(pick)


def _augment(tf, images, g, seed, crop, resize, resize_short_side, flip):
    """Identical resize / crop / flip for every image in ``images`` (uint8 tensors, same size).

    Images stay uint8 unless resized (then float32 in 0..255), so a plain crop costs no
    conversion of the whole frame.
    """
    base = tf.random.experimental.stateless_fold_in(
        tf.constant([int(seed), _AUGMENT_SALT], tf.int64), g)
    seeds = tf.random.experimental.stateless_split(base, num=4)

    def resize_one(image, size, antialias=True):
        # Bicubic; antialiased when shrinking, like PIL's resize (DeblurGAN: frames to 640x360).
        out = tf.clip_by_value(tf.image.resize(image, size, method="bicubic", antialias=antialias),
                               0.0, 255.0)
        return out if image.dtype == tf.float32 else tf.cast(tf.round(out), image.dtype)

    if resize is not None:
        images = [resize_one(tf.cast(image, tf.float32), resize) for image in images]
    elif resize_short_side is not None:
        low, high = resize_short_side
        # GLCIC paper section 3.4: smallest edge random in [256, 384], then a 256 x 256 crop.
        short = tf.random.stateless_uniform([], seed=seeds[2], minval=low, maxval=high + 1,
                                            dtype=tf.int32)
        shape = tf.cast(tf.shape(images[0])[:2], tf.float32)
        scale = tf.cast(short, tf.float32) / tf.reduce_min(shape)
        size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
        images = [resize_one(tf.cast(image, tf.float32), size) for image in images]

    if crop is not None:
        crop_h, crop_w = crop
        shape = tf.shape(images[0])[:2]
        height, width = shape[0], shape[1]
        # Images smaller than the crop are upscaled (bicubic) just enough to fit.
        scale = tf.maximum(tf.maximum(crop_h / tf.cast(height, tf.float64),
                                      crop_w / tf.cast(width, tf.float64)), 1.0)
        new_size = tf.stack([
            tf.maximum(tf.cast(tf.math.ceil(tf.cast(height, tf.float64) * scale - 1e-6), tf.int32),
                       crop_h),
            tf.maximum(tf.cast(tf.math.ceil(tf.cast(width, tf.float64) * scale - 1e-6), tf.int32),
                       crop_w)])
        too_small = tf.logical_or(height < crop_h, width < crop_w)
        images = [tf.cond(too_small, lambda i=i: resize_one(i, new_size, antialias=False),
                          lambda i=i: i) for i in images]
        shape = tf.shape(images[0])[:2]
        top = tf.random.stateless_uniform([], seed=seeds[0], minval=0,
                                          maxval=shape[0] - crop_h + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seed=seeds[1], minval=0,
                                           maxval=shape[1] - crop_w + 1, dtype=tf.int32)
        images = [image[top: top + crop_h, left: left + crop_w] for image in images]
        for image in images:
            image.set_shape([crop_h, crop_w, 3])

    if flip:
        do_flip = tf.random.stateless_uniform([], seed=seeds[3]) < 0.5
        images = [tf.cond(do_flip, lambda i=i: tf.reverse(i, axis=[1]), lambda i=i: i)
                  for i in images]

    # 0..255 -> [-1, 1] (x / 127.5 - 1, the pix2pix / DGF normalisation).
    return [tf.cast(image, tf.float32) / 127.5 - 1.0 for image in images]


def _finish(tf, dataset, batch_size: int, drop_remainder: bool):
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def pair_dataset(source: PairSource, batch_size: int, crop=None, resize=None, flip: bool = True,
                 seed: int = 0, start_step: int = 0, repeat: bool = True, *, shuffle: bool = True,
                 drop_remainder: bool = True):
    """tf.data pipeline of ``(degraded, target)`` float32 batches in [-1, 1].

    ``resize=(h, w)``: bicubic resize of both images first (the DeblurGAN paper's 640x360 frames;
    the Keras port's 256x256 with ``crop=None``). ``crop=(h, w)``: the same random crop for both
    images (images smaller than the crop are upscaled just enough). ``flip``: the same random
    horizontal flip. Deterministic from ``(seed, element index)``; ``start_step=k`` yields exactly
    the batches from step ``k`` of an uninterrupted run. ``repeat=False`` gives one epoch
    (``shuffle=False`` keeps the source order, e.g. for evaluation). Without crop and resize all
    images must have the same size unless ``batch_size`` is 1.
    """
    import tensorflow as tf

    crop, resize = _pair(crop, "crop"), _pair(resize, "resize")
    indices = _element_indices(tf, len(source), batch_size, seed, start_step, repeat, shuffle)

    def load(item):
        # Training (repeat) skips unreadable items; one evaluation pass reports them.
        degraded, target = load_tolerant(source, int(item)) if repeat else source.load(int(item))
        return np.asarray(degraded, np.uint8), np.asarray(target, np.uint8)

    def element(g, item):
        degraded, target = tf.numpy_function(load, [item], (tf.uint8, tf.uint8), stateful=False)
        degraded.set_shape([None, None, 3])
        target.set_shape([None, None, 3])
        degraded, target = _augment(tf, [degraded, target], g, seed, crop, resize, None, flip)
        return degraded, target

    dataset = indices.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _finish(tf, dataset, batch_size, drop_remainder)


def image_dataset(source: ImageSource, batch_size: int, crop=None, resize_short_side=None,
                  flip: bool = True, seed: int = 0, start_step: int = 0, repeat: bool = True, *,
                  resize=None, shuffle: bool = True, drop_remainder: bool = True):
    """tf.data pipeline of float32 image batches in [-1, 1].

    ``resize_short_side=(lo, hi)``: first rescale so that the short side is a random integer in
    [lo, hi] (GLCIC: [256, 384], then ``crop=256``). ``resize=(h, w)``: a fixed bicubic resize
    instead. ``crop``, ``flip``, determinism and ``start_step`` as in :func:`pair_dataset`.
    """
    import tensorflow as tf

    crop, resize = _pair(crop, "crop"), _pair(resize, "resize")
    if resize_short_side is not None:
        low, high = (int(v) for v in resize_short_side)
        if not 1 <= low <= high:
            raise ValueError(f"resize_short_side must be (lo, hi) with 1 <= lo <= hi, "
                             f"got {resize_short_side}")
        resize_short_side = (low, high)
    indices = _element_indices(tf, len(source), batch_size, seed, start_step, repeat, shuffle)

    def load(item):
        image = load_tolerant(source, int(item)) if repeat else source.load(int(item))
        return np.asarray(image, np.uint8)

    def element(g, item):
        image = tf.numpy_function(load, [item], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        (image,) = _augment(tf, [image], g, seed, crop, resize, resize_short_side, flip)
        return image

    dataset = indices.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _finish(tf, dataset, batch_size, drop_remainder)


def bicubic_downscale(images, scale: int, value_range=None):
    """Antialiased bicubic downscale by an integer ``scale`` (TensorFlow op; any float range).

    ``images``: (H, W, C) or (N, H, W, C), uint8 or float. Output size ``(H // scale, W // scale)``,
    values clipped to ``value_range`` (default: (0, 255) for uint8; else (-1, 1) if the input has
    negative values, (0, 1) if it stays within 1, (0, 255) otherwise), same dtype as the input.
    Note: this is not MATLAB's ``imresize`` (the papers' LR images); PSNR on benchmark sets
    differs slightly.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    x = images[None] if single else images
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    if value_range is not None:
        low, high = (float(v) for v in value_range)
    elif dtype == tf.uint8:
        low, high = 0.0, 255.0
    else:
        low = tf.where(tf.reduce_min(x) < 0.0, -1.0, 0.0)
        high = tf.where(tf.reduce_max(x) > 1.0 + 1e-3, 255.0, 1.0)
    size = tf.shape(x)[1:3] // scale
    out = tf.image.resize(x, size, method="bicubic", antialias=True)
    out = tf.clip_by_value(out, low, high)
    static = x.shape
    out.set_shape([static[0],
                   static[1] // scale if static[1] is not None else None,
                   static[2] // scale if static[2] is not None else None,
                   static[3]])
    if dtype == tf.uint8:
        out = tf.cast(tf.round(out), tf.uint8)
    elif out.dtype != dtype:
        out = tf.cast(out, dtype)
    return out[0] if single else out


def as_user_error(error: BaseException) -> UserError | None:
    """The UserError a source raised inside a tf.data pipeline, from the TensorFlow error.

    ``tf.numpy_function`` turns Python exceptions into ``tf.errors`` whose message contains the
    original one; the training driver can call this to print the one-line message instead.
    """
    if isinstance(error, UserError):
        return error
    message = str(getattr(error, "message", None) or error)
    marker = "UserError: "
    if marker not in message:
        return None
    line = message.split(marker, 1)[1].splitlines()[0].strip()
    return UserError(line)


__all__ = [
    "ORDERS", "PairSource", "FolderPairSource", "SideBySidePairSource", "HDF5PairSource",
    "ImageSource", "open_pairs", "open_images", "resolve_data_dir", "pair_dataset",
    "image_dataset", "bicubic_downscale", "as_user_error", "set_bad_item_limit",
    "report_skipped_items", "load_tolerant",
]

