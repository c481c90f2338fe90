"""What every family's ``inference.load`` shares: the loaded-generator record, format sniffing,
preset checks, order-based copying of foreign weights, and the ``convert`` command line.

A weights argument is one of: None (the family's newest run), a run directory, our
``.weights.h5`` / ``.keras``, or an upstream release (PyTorch ``.pth``, a Keras 2 ``.h5``, a Torch7
``.t7``; read by :mod:`common.upstream_io`). The family decides which upstream files it accepts and
detects the architecture variant from the file; this module never imports a family.
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError

# --from choices of every convert.py; "auto" sniffs the file
SOURCE_FORMATS = ("auto", "pytorch", "keras2-h5", "torch7")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class Loaded:
    """A generator ready to run, and what it is."""

    model: Any  # keras.Model: the generator (GLCIC: the inpainter taking [image, mask])
    config: Any  # the family's frozen Config describing the architecture
    run_dir: Path | None  # the run directory when loaded from one
    description: str  # one line: "weights: generator.h5 = Keras port, nearest upsampling"
    _folded: Any = field(default=None, init=False, repr=False, compare=False)

    def inference_network(self, training: bool = False):
        """What the family's ``run`` calls: ``model`` itself in training mode (batch statistics,
        dropout); otherwise a copy with each BatchNormalization folded into the conv before it
        (:func:`common.folding.fold_batch_norm`), made from ``model``'s weights at the first call
        and kept: after changing those weights, make a new ``Loaded``."""
        if training:
            return self.model
        if self._folded is None:
            from common.folding import fold_batch_norm

            self._folded = fold_batch_norm(self.model)
        return self._folded


def describe(path, what: str) -> str:
    """The one line every script prints: ``weights: FILE = what``."""
    return f"weights: {Path(path).name} = {what}"


# ----------------------------------------------------------------------------- sniffing
def sniff(path, source: str = "auto") -> str:
    """The format of a weights file: "own" (our .weights.h5 / .keras / a checkpoint), "keras2-h5",
    "pytorch", "torch7" or "npz" (a numpy dump of a PyTorch state dict).

    ``source`` (convert's ``--from``) forces a foreign format; "auto" looks at the bytes.
    """
    path = Path(path)
    if source not in SOURCE_FORMATS:
        raise UserError(f"--from {source}: use one of {', '.join(SOURCE_FORMATS)}")
    if source != "auto":
        return source
    if path.is_dir() or not path.is_file():
        return "own"
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(_HDF5_MAGIC):
        return "keras2-h5" if _is_legacy_keras_h5(path) else "own"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("data.pkl") for n in names):
            return "pytorch"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "own"  # .keras archive
    if head[:1] == b"\x80":  # a pickle stream: torch.save's legacy (pre-1.6) format
        return "pytorch"
    if path.suffix.lower() == ".t7" or int.from_bytes(head[:4], "little") in (3, 4):
        return "torch7"  # Torch7 binary: first a type tag, TABLE (3) or TORCH object (4)
    return "own"  # checkpoints and unknown files: load_own_weights names the problem


def _is_legacy_keras_h5(path: Path) -> bool:
    """A Keras 2 / tf.keras HDF5 file (``layer_names`` at the top or under ``model_weights``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layer_names" in f.attrs or "model_weights" in f
    except OSError:
        return False


# ----------------------------------------------------------------------------- own weights
def locate(family: str, weights, source: str = "auto"):
    """``(run_dir, file, kind, recorded)`` for a weights argument: the run directory (or None), the
    file to read, its format (:func:`sniff`) and the config recorded for it (a run's config.json, or
    the one a convert stored in the file; {} for a bare or foreign file)."""
    from common.cli import load_run_config, resolve_weights

    run_dir, path = resolve_weights(family, None if weights is None else str(weights))
    kind = sniff(path, source)
    recorded = {}
    if kind == "own":
        recorded = load_run_config(run_dir) or stored_config(path)
    return run_dir, Path(path), kind, recorded


def load_own(model, path, key: str = "generator") -> str:
    """Load our own format into ``model`` (common.own_weights when available); one-line description."""
    try:
        from common.own_weights import load_own_weights
    except ImportError:  # pragma: no cover - before the reliability module lands
        load_own_weights = None
    if load_own_weights is not None:
        return load_own_weights(model, path, key)
    try:
        model.load_weights(str(path))
    except Exception as error:  # noqa: BLE001 (h5py / Keras raise many kinds)
        raise UserError(f"{path}: these weights do not fit this model ({str(error).splitlines()[0]}); "
                        "pass the run directory they were trained in, or the matching --preset") from None
    return f"weights {path}"


def own_origin(model, path, run_dir) -> str:
    """Load our own weights into ``model``; "run DIR", "converted from FILE (...)" or load_own's
    description of the file."""
    loaded_from = load_own(model, path)
    if run_dir is not None:
        if loaded_from.startswith("checkpoint "):  # an interrupted run: say which step
            step = loaded_from[loaded_from.find("(step "):].split(")")[0] + ")"
            return f"run {run_dir}, training checkpoint {step.strip('()')} (training did not finish)"
        return f"run {run_dir}"
    record = _stored_record(path)
    if record.get("converted_from"):
        what = str(record.get("description", "")).split(" = ", 1)[-1]
        return f"converted from {record['converted_from']} ({what})"
    return loaded_from


def from_upstream(path, kind: str, preset: str | None, overrides: dict, architecture: Iterable[str],
                  load_upstream: Callable) -> Loaded:
    """A family's ``load_upstream(path, kind, preset) -> (model, config, what)`` as a Loaded, with
    the architecture ``overrides`` checked against what the file fixed."""
    model, config, what = load_upstream(path, kind, preset)
    apply_overrides(path, config, {k: v for k, v in overrides.items() if k in architecture}, what)
    return Loaded(model, config, None, describe(path, what))


def config_from_run(config_cls, get_config: Callable, recorded: dict, preset: str | None,
                    default_preset: str, path, **overrides):
    """The config a run recorded (config.json), or ``preset`` for a bare file; a ``preset`` that
    contradicts the run's is an error naming both."""
    known = {f.name for f in fields(config_cls)}
    recorded = {k: v for k, v in (recorded or {}).items() if k in known}
    if recorded:
        run_preset = recorded.pop("preset", default_preset)
        check_preset(path, run_preset, preset, f"a {run_preset} run")
        return get_config(run_preset, **{**recorded, **overrides})
    return get_config(preset or default_preset, **overrides)


def check_preset(path, detected: str, requested: str | None, what: str) -> None:
    """UserError when ``--preset requested`` contradicts the preset the file needs."""
    if requested is not None and requested != detected:
        raise UserError(f"{path}: --preset {requested} contradicts the file, which is {what} "
                        f"(preset {detected}); drop --preset (the file is detected) or pass another file")


def apply_overrides(path, config, overrides: dict, what: str):
    """``config`` with ``overrides``; an override that changes an architecture field the file fixed
    is an error naming both."""
    for name, value in overrides.items():
        if value is None:
            continue
        current = getattr(config, name, None)
        if current is not None and _normal(current) != _normal(value):
            raise UserError(f"{path}: --{name.replace('_', '-')} {value} contradicts the file, which is "
                            f"{what} ({name}={current}); drop the flag (the file is detected)")
    return config


def _normal(value):
    return tuple(value) if isinstance(value, list) else value


# ----------------------------------------------------------------------------- order-based copy
def weighted_layers(model) -> list:
    """Layers of ``model`` that hold weights, in Keras' topological order (nested models flattened)."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:
            out.extend(weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def assign_in_order(model, source: Sequence[tuple[str, list[np.ndarray]]], path,
                    fix: str = "", transform: Callable | None = None) -> None:
    """Copy ``(source layer name, arrays)`` into the weighted layers of ``model`` one by one, as
    Keras 2's ``load_weights`` matched a legacy HDF5 file (by order), checking every shape.

    ``transform(layer, arrays) -> arrays`` adapts a layer's arrays first (e.g. a channel order).
    """
    targets = weighted_layers(model)
    if len(targets) != len(source):
        raise UserError(f"{path}: the file has {len(source)} layers with weights, this "
                        f"{model.name} has {len(targets)}; {fix or 'it is another architecture'}")
    updates = []
    for layer, (name, arrays) in zip(targets, source):
        arrays = list(arrays if transform is None else transform(layer, arrays))
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(a.shape) for a in arrays] != expected:
            raise UserError(f"{path}: layer {name} has weights {[tuple(a.shape) for a in arrays]}, "
                            f"{layer.name} needs {expected}; {fix or 'it is another architecture'}")
        updates.append((layer, arrays))
    for layer, arrays in updates:
        layer.set_weights([np.asarray(a, np.float32) for a in arrays])


def conv_kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    """Torch conv weight [out, in, kh, kw] (or transposed conv [in, out, kh, kw]) -> Keras kernel
    (kh, kw, in, out) (or (kh, kw, out, in)): both are ``transpose(2, 3, 1, 0)``."""
    return np.ascontiguousarray(np.asarray(weight).transpose(2, 3, 1, 0))


# ----------------------------------------------------------------------------- convert CLI
def convert_main(family: str, load: Callable, argv: Iterable[str] | None = None,
                 presets: Iterable[str] = ()) -> int:
    """``python -m <family>.convert --input FILE --output OUT.weights.h5 [--from ...] [--preset]``.

    ``load(weights, preset=..., source=...)`` is the family's :func:`inference.load`. Writes our
    weights file with the detected config stored in it (:func:`save_with_config`), so that
    ``--weights OUT.weights.h5`` later rebuilds the same generator without detection.
    """
    p = argparse.ArgumentParser(prog=f"python -m {family}.convert",
                                description=f"Convert an upstream {family} weights file to our "
                                            ".weights.h5 (the architecture is detected from the file).")
    p.add_argument("--input", required=True, help="upstream weights file (.pth, Keras 2 .h5, .t7, ...)")
    p.add_argument("--output", required=True, help="our weights file to write (NAME.weights.h5)")
    p.add_argument("--from", dest="source", default="auto", choices=SOURCE_FORMATS,
                   help="format of --input; auto: detected from the file's bytes")
    if presets:
        p.add_argument("--preset", choices=sorted(presets),
                       help="only as a check: an error when the file is of another preset")
    args = p.parse_args(argv)
    source, output = Path(args.input).expanduser(), Path(args.output).expanduser()
    if not source.is_file():
        raise UserError(f"{source}: no such file; pass the downloaded weights file with --input")
    if not output.name.endswith(".weights.h5"):
        raise UserError(f"{output}: the output name must end in .weights.h5 (Keras 3 weights file)")
    if output.exists() and output.resolve() == source.resolve():
        raise UserError(f"{output}: would overwrite the input; choose another --output")
    loaded = load(str(source), preset=getattr(args, "preset", None), source=args.source)
    print(loaded.description)
    save_with_config(loaded, output, converted_from=source.name)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    return 0


CONFIG_ATTRIBUTE = "restoration_gan_config"  # JSON {"config": {...}, "description": ...}


def save_with_config(loaded: Loaded, output, **extra) -> Path:
    """``loaded.model.save_weights(output)`` plus the config as an HDF5 attribute of the file."""
    import json

    import h5py

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    loaded.model.save_weights(str(output))
    record = {"config": loaded.config.to_dict(), "description": loaded.description, **extra}
    with h5py.File(output, "a") as f:
        f.attrs[CONFIG_ATTRIBUTE] = json.dumps(record, default=list)
    return output


def stored_config(path) -> dict:
    """The ``config`` recorded in a converted .weights.h5 by :func:`save_with_config` ({} if none)."""
    return _stored_record(path).get("config", {})


def _stored_record(path) -> dict:
    import json

    import h5py

    path = Path(path)
    if not (path.is_file() and path.name.endswith(".h5")):
        return {}
    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get(CONFIG_ATTRIBUTE)
    except OSError:
        return {}
    if text is None:
        return {}
    return json.loads(text if isinstance(text, str) else text.decode())


__all__ = ["Loaded", "describe", "sniff", "locate", "load_own", "own_origin", "from_upstream", "config_from_run", "check_preset",
           "apply_overrides", "weighted_layers", "assign_in_order", "conv_kernel_from_torch",
           "convert_main", "save_with_config", "stored_config", "SOURCE_FORMATS"]
