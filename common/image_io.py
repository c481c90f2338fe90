"""Reading and writing images, and converting between the value ranges the models use.

Every image that enters the project goes through :func:`read_image`, which returns RGB uint8
``(H, W, 3)`` whatever the file holds (grayscale, palette, RGBA, CMYK, 16-bit...), with the EXIF
orientation applied, so that a phone photo comes out the way it is displayed.

Value ranges (named here once, used everywhere):

- ``uint8``:  0..255 integers, what files hold.
- ``unit``:   float in [0, 1] (metrics, grids, the SRGAN low-resolution input in the paper).
- ``signed``: float in [-1, 1] (tanh generators, pix2pix-style data: ``x / 127.5 - 1``).

The range helpers accept numpy arrays and TensorFlow tensors (they stay tensors).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from common.errors import UserError, first_line

# Lower-case suffixes read_image and list_images accept (the formats Pillow decodes that matter).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

_EXIF_ORIENTATION = 0x0112

# Pillow formats by suffix, for write_image.
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".gif": "GIF",
}


def list_images(folder) -> list[Path]:
    """The image files directly inside ``folder`` (not recursive), sorted by name.

    Hidden files (``.name``, e.g. macOS ``._photo.jpg`` resource forks) are skipped.
    Raises UserError if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; give a folder of images "
                        f"({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def _sixteen_bit_to_uint8(array) -> np.ndarray:
    """Scale 0..65535 to 0..255 (x * 255 / 65535, rounded), not clip."""
    array = np.clip(np.asarray(array, dtype=np.float64), 0, 65535)
    return np.round(array / 257.0).astype(np.uint8)


def _apply_orientation(array: np.ndarray, orientation) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


def _read_sixteen_bit_colour(path: Path, orientation) -> np.ndarray | None:
    """16-bit RGB(A) PNG/TIFF at full precision (Pillow itself keeps only the high byte)."""
    import cv2  # only needed for this rare case

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] not in (3, 4):
        return None
    rgb = data[..., 2::-1] if data.shape[2] == 3 else data[..., [2, 1, 0]]
    return _apply_orientation(_sixteen_bit_to_uint8(rgb), orientation)


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):  # 16-bit grayscale (PNG, TIFF)
        gray = _sixteen_bit_to_uint8(np.asarray(image))
    elif mode == "I":  # 32-bit integer; in practice 16-bit PNG/TIFF data
        gray = _sixteen_bit_to_uint8(np.asarray(image))
    elif mode == "F":  # float TIFF: [0, 1] if it fits, else 0..255
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        gray = np.round(np.clip(np.nan_to_num(values) * scale, 0, 255)).astype(np.uint8)
    else:
        # RGBA/LA/PA: the alpha channel is dropped; palette, CMYK, YCbCr, 1-bit, L: converted.
        if mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")  # Pillow warns when converting such a palette to RGB
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


class _no_warnings(warnings.catch_warnings):
    """Pillow's warnings (odd EXIF, palette transparency) would break the one-line report."""

    def __enter__(self):
        result = super().__enter__()
        warnings.simplefilter("ignore")
        return result


def read_image(path) -> np.ndarray:
    """Read an image file as RGB uint8 ``(H, W, 3)``.

    PNG, JPEG, BMP, TIFF, WebP and GIF (the first frame; anything Pillow decodes). Grayscale and
    palette images become RGB, an alpha channel is dropped (the colour under transparent pixels is
    kept as stored), 16-bit data is scaled (not clipped) to 8 bits, and the EXIF orientation is
    applied. Any failure raises UserError naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image file; rename or move it")
    if not path.is_file():
        raise UserError(f"{path}: no such image file; check the path")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); replace or remove it")
    try:
        with _no_warnings(), Image.open(path) as image:
            raw_mode = ""  # the file's own pixel layout, e.g. "RGB;16B" (known before load())
            if image.tile:
                args = image.tile[0].args
                raw_mode = args[0] if isinstance(args, tuple) and args else args
            image.load()
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            if (image.mode in ("RGB", "RGBA") and isinstance(raw_mode, str)
                    and ";16" in raw_mode):
                array = _read_sixteen_bit_colour(path, orientation)
                if array is not None:
                    return array
            image = ImageOps.exif_transpose(image)
            array = _to_rgb_uint8(image)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 damaged files make Pillow's decoders raise anything
        reason = first_line(error, 200).replace(f" '{path}'", "")
        raise UserError(f"{path}: cannot read image ({reason}); replace or remove the file "
                        f"(readable formats: {', '.join(IMAGE_EXTENSIONS)})") from error
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"{path}: cannot read image (unexpected shape {array.shape}); "
                        "replace or remove the file")
    return np.ascontiguousarray(array)


def _as_uint8_image(image) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype == np.uint8:
        pass
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = unit_to_uint8(array)
    else:
        raise ValueError(f"write_image takes uint8, bool or float in [0, 1] images, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"write_image takes (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got shape {array.shape}")
    return np.ascontiguousarray(array)


def write_image(path, image, quality: int = 95) -> Path:
    """Write an image; the format comes from the suffix (PNG, JPEG, BMP, TIFF, WebP).

    ``image``: uint8, bool (masks: True = 255) or float in [0, 1] (rounded and clipped);
    shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Parent folders are created.
    ``quality`` applies to JPEG and WebP.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown image format {path.suffix!r}; use one of "
                        f"{', '.join(IMAGE_EXTENSIONS)}")
    array = _as_uint8_image(image)
    picture = Image.fromarray(array)
    if fmt == "JPEG" and picture.mode == "RGBA":
        picture = picture.convert("RGB")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        picture.save(path, format=fmt, **options)
    except OSError as error:
        raise UserError(f"{path}: cannot write image ({error}); check the folder is writable "
                        "and the disk has space") from error
    return path


# ----------------------------------------------------------------------------- value ranges

def _tf_if_tensor(x):
    """The tensorflow module when ``x`` is a tensor (without importing TensorFlow otherwise)."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and tf.is_tensor(x):
        return tf
    return None


def _float(x):
    """numpy: float32 unless already floating; tensors: float32 unless already floating."""
    tf = _tf_if_tensor(x)
    if tf is not None:
        return x if x.dtype.is_floating else tf.cast(x, tf.float32)
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def uint8_to_unit(x):
    """0..255 -> [0, 1] float32."""
    return _float(x) / 255.0


def unit_to_uint8(x):
    """[0, 1] float -> uint8 (rounded, clipped)."""
    tf = _tf_if_tensor(x)
    if tf is not None:
        x = tf.cast(x, tf.float32)
        return tf.cast(tf.clip_by_value(tf.round(x * 255.0), 0.0, 255.0), tf.uint8)
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def unit_to_signed(x):
    """[0, 1] -> [-1, 1]."""
    return _float(x) * 2.0 - 1.0


def signed_to_unit(x):
    """[-1, 1] -> [0, 1] (not clipped)."""
    return (_float(x) + 1.0) / 2.0


def uint8_to_signed(x):
    """0..255 -> [-1, 1] float32 (x / 127.5 - 1)."""
    return _float(x) / 127.5 - 1.0


def signed_to_uint8(x):
    """[-1, 1] float -> uint8 (rounded, clipped)."""
    return unit_to_uint8(signed_to_unit(x))
