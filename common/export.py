"""Exporting a trained generator for serving outside this code: SavedModel, TFLite, ONNX.

Every artifact has the same signature, whatever the family:

* input ``image``: uint8 ``[N, H, W, 3]``, any N, H and W (one size per batch);
* GLCIC only, input ``mask``: ``[N, H, W, 1]``, hole where the value is above 0.5 (uint8 0/1 or
  0/255; the SavedModel also has a ``float_mask`` signature taking float32 0/1);
* output ``output``: uint8 ``[N, H * scale, W * scale, 3]``.

Inside the graph the image is converted to the network's value range, mirror-padded bottom/right to
the multiple the network needs (as :func:`common.inference.pad_to_multiple`: ``reflect``, or
``symmetric`` when a side is shorter than its padding), run in float32, cropped, and rounded back to
uint8; an inpainter's known pixels are copied from the input unchanged. A family describes its
generator with an :class:`ExportSpec`; its ``export.py`` is a thin script over :func:`export_main`.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

FORMATS = ("savedmodel", "tflite", "onnx")
RANGES = ("signed", "unit")  # [-1, 1] (x / 127.5 - 1) or [0, 1] (x / 255), as common.image_io
ONNX_OPSET = 17  # onnxruntime >= 1.13; has Pad(reflect), DepthToSpace and all the generators use


@dataclass(frozen=True)
class ExportSpec:
    """What the serving graph must know about a generator besides its weights."""

    family: str
    multiple: int = 1  # sides are padded to a multiple of this before the network
    scale: int = 1  # output side / input side (SRGAN: 4)
    input_range: str = "signed"  # the network's input value range (RANGES)
    output_range: str = "signed"  # its output value range
    mask: bool = False  # an inpainter: inputs [image, mask (N, H, W, 1), 1 = hole]

    def __post_init__(self):
        for name in ("input_range", "output_range"):
            if getattr(self, name) not in RANGES:
                raise ValueError(f"ExportSpec.{name} must be one of {RANGES}, got {getattr(self, name)!r}")
        if self.multiple < 1 or self.scale < 1:
            raise ValueError("ExportSpec.multiple and scale must be at least 1")


# ----------------------------------------------------------------------------- export copy
_NEAREST_UPSAMPLING = []  # the layer class, made on first use (importing this module needs no Keras)


def nearest_upsampling_layer():
    """A registered layer equal to ``UpSampling2D(size, interpolation="nearest")``, as one resize.

    Keras' layer repeats rows and columns through reshapes whose channel count the TFLite converter
    loses on dynamic sizes (the conv after it then fails to convert). A nearest resize by an integer
    factor ``s`` reads input pixel ``floor((i + 0.5) / s) = floor(i / s)``: the same values.
    """
    if _NEAREST_UPSAMPLING:
        return _NEAREST_UPSAMPLING[0]
    import keras

    @keras.saving.register_keras_serializable(package="gan_restoration_export")
    class NearestUpsampling2D(keras.layers.Layer):
        def __init__(self, size=(2, 2), **kwargs):
            kwargs.pop("interpolation", None)
            kwargs.pop("data_format", None)
            super().__init__(**kwargs)
            size = size if isinstance(size, (list, tuple)) else (size, size)
            self.size = tuple(int(v) for v in size)

        def call(self, inputs):
            import tensorflow as tf  # export graphs are TensorFlow; keras.ops.image wants static sizes

            size = tf.shape(inputs)[1:3] * tf.constant(self.size, tf.int32)
            return tf.cast(tf.image.resize(inputs, size, method="nearest"), inputs.dtype)

        def compute_output_shape(self, input_shape):
            batch, height, width, channels = input_shape
            return (batch, None if height is None else height * self.size[0],
                    None if width is None else width * self.size[1], channels)

        def get_config(self):
            return {**super().get_config(), "size": self.size}

    _NEAREST_UPSAMPLING.append(NearestUpsampling2D)
    return NearestUpsampling2D


def _export_config(config, changed: list, tflite: bool):
    """A model config with mixed dtype policies set to float32 and (``tflite``) nearest
    channels-last ``UpSampling2D`` layers replaced by :func:`nearest_upsampling_layer`; ``changed``
    collects what was replaced."""
    if isinstance(config, list):
        return [_export_config(value, changed, tflite) for value in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if config.get("class_name") == "DTypePolicy" and isinstance(inner, dict):
        name = inner.get("name", "")
        if isinstance(name, str) and name.startswith("mixed_"):
            changed.append(name)
            return {**config, "config": {**inner, "name": "float32"}}
        return config
    if (tflite and config.get("class_name") == "UpSampling2D" and isinstance(inner, dict)
            and inner.get("interpolation", "nearest") == "nearest"
            and inner.get("data_format", "channels_last") == "channels_last"):
        import keras

        layer = nearest_upsampling_layer()
        changed.append("UpSampling2D")
        return {**config, "module": None, "class_name": layer.__name__,
                "registered_name": keras.saving.get_registered_name(layer),
                "config": _export_config(inner, changed, tflite)}
    if tflite and _is_narrow_conv(config) and isinstance(inner, dict):
        # the converter needs a constant filter; Keras' Conv2D computes the same with the same weights
        changed.append("NarrowConv2D")
        return {**config, "module": "keras.layers", "class_name": "Conv2D", "registered_name": None,
                "config": _export_config(inner, changed, tflite)}
    return {key: _export_config(value, changed, tflite) for key, value in config.items()}


def _is_narrow_conv(config: dict) -> bool:
    """A NarrowConv2D layer's config (its class_name shows Keras' Conv2D: common.layers keeps
    Keras' class name for the weight paths; the registered name tells them apart)."""
    import keras

    from common.layers import NarrowConv2D

    return config.get("registered_name") == keras.saving.get_registered_name(NarrowConv2D)


def export_model(model, tflite: bool = False):
    """The model to export: ``model`` itself, or a copy with the same weights that computes in
    float32 (mixed-precision layers rebuilt under the float32 policy; variables are float32 under
    every policy, so the weights copy exactly) and (``tflite``) whose nearest upsampling converts
    at any size (:func:`nearest_upsampling_layer`)."""
    changed: list = []
    config = _export_config(copy.deepcopy(model.get_config()), changed, tflite)
    if not changed:
        return model
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


# ----------------------------------------------------------------------------- graph pieces
def to_network_range(image, value_range: str):
    """uint8 (or 0..255 float) tensor -> float32 in ``value_range`` (as common.image_io)."""
    import tensorflow as tf

    x = tf.cast(image, tf.float32)
    return x / 127.5 - 1.0 if value_range == "signed" else x / 255.0


def to_unit(x, value_range: str):
    """float tensor in ``value_range`` -> [0, 1] (not clipped)."""
    return (x + 1.0) / 2.0 if value_range == "signed" else x


def to_uint8(x, value_range: str):
    """float tensor in ``value_range`` -> uint8, rounded half to even and clipped (as numpy)."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(to_unit(x, value_range) * 255.0), 0.0, 255.0), tf.uint8)


def _mirror_indices(size, padded, reflect):
    """Indices into an axis of length ``size`` that mirror-extend it to ``padded`` entries.

    ``reflect`` (a bool tensor): numpy ``reflect`` (edge not repeated), else ``symmetric``.
    """
    import tensorflow as tf

    i = tf.range(padded)
    mirrored = tf.where(reflect, 2 * (size - 1) - i, 2 * size - 1 - i)
    return tf.clip_by_value(tf.where(i < size, i, mirrored), 0, size - 1)


def pad_to_multiple(x, multiple: int, mask=None):
    """Pad a ``[N, H, W, C]`` tensor bottom/right to multiples of ``multiple``: the graph version of
    :func:`common.inference.pad_to_multiple`, as a gather, which every runtime converts.

    Returns ``(padded, padded_mask)``; ``mask`` (if any) is padded with zeros (known pixels), as
    ``glcic_inpaint.inference.complete`` does.
    """
    import tensorflow as tf

    if multiple == 1:
        return x, mask
    shape = tf.shape(x)
    height, width = shape[1], shape[2]
    # (m - size % m) % m, not (-size) % m: tf2onnx turns a floor-mod of a negative into a remainder
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    reflect = tf.logical_and(pad_h < height, pad_w < width)
    rows = _mirror_indices(height, height + pad_h, reflect)
    cols = _mirror_indices(width, width + pad_w, reflect)
    x = tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)
    if mask is not None:
        # zeros in the padding by a product (tf.pad with computed amounts loses the channel count
        # in the TFLite converter)
        inside_rows = tf.cast(tf.range(height + pad_h) < height, mask.dtype)[None, :, None, None]
        inside_cols = tf.cast(tf.range(width + pad_w) < width, mask.dtype)[None, None, :, None]
        mask = tf.gather(tf.gather(mask, rows, axis=1), cols, axis=2) * inside_rows * inside_cols
    return x, mask


def serving_fn(model, spec: ExportSpec):
    """``f(image[, mask]) -> {"output": uint8}`` as plain TensorFlow ops around ``model``."""
    import tensorflow as tf

    def serve(image, mask=None):
        shape = tf.shape(image)
        height, width = shape[1], shape[2]
        x = to_network_range(image, spec.input_range)
        if spec.mask:
            hole = tf.cast(tf.cast(mask, tf.float32) > 0.5, tf.float32)
            x, padded_hole = pad_to_multiple(x, spec.multiple, hole)
            y = model([x, padded_hole], training=False)
        else:
            x, _ = pad_to_multiple(x, spec.multiple)
            y = model(x, training=False)
        y = tf.cast(y, tf.float32)[:, : height * spec.scale, : width * spec.scale, :]
        if spec.mask:  # known pixels exactly as given (a product: exact on 0..255 integers)
            y = tf.round(tf.clip_by_value(to_unit(y, spec.output_range), 0.0, 1.0) * 255.0)
            y = y * hole + tf.cast(image, tf.float32) * (1.0 - hole)
            return {"output": tf.cast(y, tf.uint8)}
        return {"output": to_uint8(y, spec.output_range)}

    return serve


def input_signature(spec: ExportSpec, mask_dtype="uint8", size=None):
    import tensorflow as tf

    height, width = size if size else (None, None)
    signature = [tf.TensorSpec([None, height, width, 3], tf.uint8, name="image")]
    if spec.mask:
        signature.append(tf.TensorSpec([None, height, width, 1], tf.as_dtype(mask_dtype), name="mask"))
    return signature


def _write_savedmodel(model, spec: ExportSpec, folder, size=None, float_mask: bool = True) -> None:
    """Write the serving functions around ``model`` as a SavedModel through
    ``keras.export.ExportArchive`` (a plain ``tf.Module`` holding a Keras 3 model saves weights the
    TFLite converter leaves as uninitialised variables: NaN outputs). The endpoints track the
    variables they use; ``archive.track(model)`` as well would store every weight twice."""
    import keras

    archive = keras.export.ExportArchive()
    serve = serving_fn(model, spec)
    archive.add_endpoint("serving_default", serve, input_signature=input_signature(spec, size=size))
    if spec.mask and float_mask:
        archive.add_endpoint("float_mask", serve, input_signature=input_signature(spec, "float32", size))
    archive.write_out(str(folder), verbose=False)


# ----------------------------------------------------------------------------- writers
def _check_output(path, suffix: str | None) -> Path:
    """``path`` ready to be written: a SavedModel folder (``suffix`` None) or a file. Only an earlier
    artifact of the same kind is replaced, never weights, images or a run directory."""
    path = Path(path).expanduser()
    if suffix is None:
        if path.exists() and not path.is_dir():
            raise UserError(f"{path}: exists and is not a folder; a SavedModel is a folder, choose another --output")
        if path.is_dir() and any(path.iterdir()) and not (path / "saved_model.pb").is_file():
            raise UserError(f"{path}: a folder with other files in it; give a new or empty folder "
                            "(an earlier SavedModel there is replaced)")
    elif path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for --output (e.g. model{suffix})")
    elif path.exists() and path.suffix.lower() != suffix:
        raise UserError(f"{path}: exists and is not a {suffix} file; choose another --output "
                        f"(an earlier {suffix} file is replaced)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def export_savedmodel(model, spec: ExportSpec, path) -> Path:
    """Write a SavedModel folder with the ``serving_default`` (and, for masks, ``float_mask``)
    signature; returns its path."""
    path = _check_output(path, None)
    _write_savedmodel(export_model(model), spec, path)
    return path


def export_tflite(model, spec: ExportSpec, path, size=None) -> Path:
    """Write a ``.tflite`` flatbuffer: float32 compute, uint8 in/out, one ``serving_default``
    signature. ``size=(H, W)`` fixes the input size; None keeps N, H and W dynamic."""
    import tensorflow as tf

    path = _check_output(path, ".tflite")
    with tempfile.TemporaryDirectory() as folder:
        _write_savedmodel(export_model(model, tflite=True), spec, folder, size=size, float_mask=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex (TF) ops
        flatbuffer = converter.convert()
    path.write_bytes(flatbuffer)
    return path


def onnx_unavailable_reason() -> str | None:
    """None when tf2onnx imports, else the one-line reason."""
    try:
        import tf2onnx  # noqa: F401
    except Exception as error:  # noqa: BLE001 (ImportError, or tf2onnx failing against this TF)
        return (f"--format onnx needs tf2onnx, which does not import here ({type(error).__name__}: "
                f"{error}); `pip install tf2onnx onnx`, or export --format savedmodel")
    return None


def export_onnx(model, spec: ExportSpec, path, opset: int = ONNX_OPSET) -> Path:
    """Write an ``.onnx`` model through tf2onnx (uint8 in/out, dynamic N, H, W)."""
    reason = onnx_unavailable_reason()
    if reason:
        raise UserError(reason)
    import tensorflow as tf
    import tf2onnx

    path = _check_output(path, ".onnx")
    signature = input_signature(spec)
    serve = tf.function(serving_fn(export_model(model), spec), input_signature=signature, autograph=False)
    tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset, output_path=str(path))
    return path


def export(model, spec: ExportSpec, fmt: str, path, size=None) -> Path:
    """Export ``model`` as ``fmt`` (one of :data:`FORMATS`) to ``path``; returns the path."""
    if fmt == "savedmodel":
        return export_savedmodel(model, spec, path)
    if fmt == "tflite":
        return export_tflite(model, spec, path, size=size)
    if fmt == "onnx":
        return export_onnx(model, spec, path)
    raise UserError(f"--format {fmt}: use one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- command line
def _size(text: str):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs HEIGHTxWIDTH, e.g. 256x256, got {text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"{text}: sides must be positive")
    return (height, width)


def export_parser(family: str, presets, description: str) -> argparse.ArgumentParser:
    from common.cli import _formatter

    p = argparse.ArgumentParser(prog=f"python {family}/export.py", description=description,
                                formatter_class=_formatter)
    p.add_argument("--weights", help=f"run directory or weights file, ours or an upstream release "
                                     f"(default: newest run in runs/{family})")
    p.add_argument("--preset", choices=sorted(presets),
                   help="architecture of a bare weights file; otherwise only checked against the file")
    p.add_argument("--format", required=True, choices=FORMATS, help="artifact to write")
    p.add_argument("--output", required=True,
                   help="SavedModel folder, or .tflite / .onnx file (the parent folder is created)")
    p.add_argument("--size", type=_size,
                   help="HxW: fix a TFLite model's input size (default: any size; resize the inputs)")
    return p


def export_main(family: str, argv, presets, description: str, load, spec_for,
                model_flags=None) -> int:
    """The body of every ``<family>/export.py``.

    ``load(weights, preset, **overrides)`` is the family's ``inference.load`` (a ``Loaded`` with
    ``model``, ``config`` and a one-line ``description``); ``spec_for(config)`` gives its
    :class:`ExportSpec`. ``model_flags``: ``{flag: (choices, help)}`` of Config fields a bare
    weights file cannot tell, passed on to ``load`` (DeblurGAN's ``--upsampling``).
    """
    p = export_parser(family, presets, description)
    for flag, (choices, text) in (model_flags or {}).items():
        p.add_argument(f"--{flag.replace('_', '-')}", choices=choices, help=text)
    args = p.parse_args(argv)
    if args.format == "onnx" and onnx_unavailable_reason():
        raise UserError(onnx_unavailable_reason())
    if args.size and args.format != "tflite":
        raise UserError(f"--size fixes the input size of a TFLite model only; drop it for "
                        f"--format {args.format} (that takes any size)")
    import keras

    keras.config.set_dtype_policy("float32")  # export computes in float32 whatever training used
    overrides = {flag: getattr(args, flag) for flag in (model_flags or {})}
    loaded = load(args.weights, args.preset, **overrides)
    path = export(loaded.inference_network(), spec_for(loaded.config), args.format, args.output, size=args.size)
    print(f"{loaded.description}\nwrote {args.format} to {path}")
    return 0
