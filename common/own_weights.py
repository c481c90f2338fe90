"""Loading our own saved formats into a built model, with one clear line when that fails.

Three formats come out of :mod:`common.training`:

- ``<name>.weights.h5``: the exported weights (Keras 3 weights file);
- ``<name>.keras``: the exported model archive. Only its weights are read (no code from the file
  runs); an archive of another architecture is opened with ``safe_mode=True`` to look for a
  generator inside it;
- ``checkpoints/ckpt-N``: the training checkpoints (``tf.train.Checkpoint`` of G, D, optimizers,
  step). Only the object stored under ``key`` (default ``"generator"``) is restored, so the
  checkpoint of an interrupted run can be evaluated at once.

A run directory is also accepted: its ``<name>.weights.h5`` when training finished, else its newest
readable checkpoint. Every failure (missing, truncated, corrupt, another architecture) raises
:class:`common.errors.UserError` naming the file and what to do.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

from common.errors import UserError, first_line

CHECKPOINT_DIR = "checkpoints"
_CKPT_NAME = re.compile(r"^(ckpt-\d+)(\.index|\.data-\d+-of-\d+)?$")
_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"
_REDO = ("export or download it again, or pass the run directory (its checkpoints/ are used "
         "when training did not finish)")


def _short(error: BaseException, limit: int = 160) -> str:
    return first_line(error, limit)


def _is_mismatch(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, (ValueError, KeyError)) and any(
        marker in text for marker in ("could not be loaded", "shape", "Layer count mismatch",
                                      "expected", "incompatible", "mismatch"))


# ----------------------------------------------------------------------------- checkpoints
def _checkpoint_step(prefix: str) -> int:
    """The training step stored in a checkpoint (its number in the name if unreadable)."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        if reader.has_tensor(_STEP_KEY):
            return int(reader.get_tensor(_STEP_KEY))
    except (tf.errors.OpError, ValueError):
        pass
    match = re.search(r"ckpt-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def _checkpoint_children(prefix: str) -> set[str]:
    """Names of the objects saved at the top of a checkpoint ("generator", "step", ...).

    (Variable names cannot tell: a variable is saved under the first path that reaches it, e.g.
    through the optimizer.)"""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    return {child.local_name for child in graph.nodes[0].children} if graph.nodes else set()


def list_checkpoints(folder) -> list[tuple[int, str]]:
    """``(number, prefix)`` of the checkpoints in ``folder`` whose files are all present, newest
    first. A checkpoint whose write was cut off (an index without data, or the reverse; TensorFlow's
    temporary ``*_temp`` folders) is left out."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for index in folder.glob("ckpt-*.index"):
        prefix = str(index)[: -len(".index")]
        number = prefix.rsplit("-", 1)[-1]
        if not number.isdigit() or index.stat().st_size == 0:
            continue
        data = list(folder.glob(f"{Path(prefix).name}.data-*-of-*"))
        if data and all(d.stat().st_size > 0 for d in data):
            found.append((int(number), prefix))
    return sorted(found, reverse=True)


def newest_checkpoint(run_dir) -> tuple[str, int] | None:
    """``(prefix, step)`` of the newest complete checkpoint of a run directory, or None."""
    checkpoints = list_checkpoints(Path(run_dir) / CHECKPOINT_DIR)
    if not checkpoints:
        return None
    _, prefix = checkpoints[0]
    return prefix, _checkpoint_step(prefix)


def _checkpoint_candidates(path: Path) -> list[str] | None:
    """Checkpoint prefixes ``path`` points at (newest first), or None when it is not a checkpoint."""
    if path.is_dir():
        folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
        prefixes = [p for _, p in list_checkpoints(folder)]
        return prefixes or None
    if path.name == "checkpoint" and path.is_file():  # TensorFlow's state file
        return [p for _, p in list_checkpoints(path.parent)] or []
    match = _CKPT_NAME.match(path.name)
    if match:
        return [str(path.parent / match.group(1))]
    return None


def _restore_checkpoint(model, prefixes: list[str], key: str, shown: Path) -> str:
    import tensorflow as tf

    if not prefixes:
        raise UserError(f"{shown}: no complete training checkpoint (ckpt-N.index + ckpt-N.data-*) "
                        f"here; {_REDO}")
    errors = []
    for prefix in prefixes:
        try:
            children = _checkpoint_children(prefix)
            if key not in children:
                raise UserError(f"{prefix}: this checkpoint holds no '{key}' (it holds "
                                f"{', '.join(sorted(children)[:6]) or 'nothing'}); pass the run "
                                "directory of a training run of this family")
            status = tf.train.Checkpoint(**{key: model}).restore(prefix)
            status.assert_existing_objects_matched()
            status.expect_partial()
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 (a damaged file raises IndexError, OpError...)
            if isinstance(error, (ValueError, AssertionError)) and not isinstance(
                    error, tf.errors.OpError):
                # Readable but of another architecture: older checkpoints will not fit either.
                raise UserError(f"{prefix}: the {key} in this checkpoint does not fit this model "
                                f"({_short(error)}); pass the run directory it was trained in "
                                "(its config.json describes the architecture)") from None
            errors.append(f"{Path(prefix).name}: {_short(error, 100)}")
            continue
        step = _checkpoint_step(prefix)
        skipped = f" (skipped unreadable {'; '.join(errors)})" if errors else ""
        return f"checkpoint {prefix} (step {step}){skipped}"
    raise UserError(f"{shown}: every training checkpoint is unreadable ({'; '.join(errors)}); "
                    f"the files are truncated or corrupt; {_REDO}")


# ----------------------------------------------------------------------------- files
def _load_weights_file(model, path: Path) -> None:
    with warnings.catch_warnings():
        # Keras 3.15 warns about "nested containers" of every functional model it loads into;
        # the load itself either succeeds completely or raises.
        warnings.filterwarnings("ignore", message="Skipping nested container")
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(path))


def _generator_inside(archive, key: str):
    """The sub-model of a loaded .keras archive that holds ``key`` (or the archive's model)."""
    inner = getattr(archive, key, None)
    if inner is not None and hasattr(inner, "get_weights"):
        return inner
    try:
        return archive.get_layer(key)
    except (ValueError, AttributeError):
        return archive


def _load_keras_archive(model, path: Path, key: str) -> str:
    try:
        _load_weights_file(model, path)  # weights only: no code from the archive runs
        return f"weights of {path}"
    except Exception as error:  # noqa: BLE001 (zip / h5py / Keras raise many kinds)
        if not _is_mismatch(error):
            raise
        first_error = error
    import keras

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            archive = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception:  # noqa: BLE001 the weights-only error is the useful one
        raise first_error from None
    inner = _generator_inside(archive, key)
    source, target = inner.get_weights(), model.get_weights()
    if [w.shape for w in source] != [w.shape for w in target]:
        raise first_error
    model.set_weights(source)
    return f"{key} weights of {path}"


def load_own_weights(model, path, key: str = "generator") -> str:
    """Load our ``.weights.h5``, ``.keras``, a training checkpoint, or a run directory into the
    built ``model``; returns a one-line description ("checkpoint .../ckpt-40 (step 40)").

    ``key``: the name the model has in the training checkpoints (``GANModel.checkpoint_items``:
    "generator"; for GLCIC the inpainter taking [image, mask]). Raises UserError naming the file
    and what to do when it is missing, truncated, corrupt or of another architecture.
    """
    path = Path(path).expanduser()
    if _CKPT_NAME.match(path.name) and path.with_name(path.name.split(".")[0] + ".index").exists():
        return _restore_checkpoint(model, _checkpoint_candidates(path), key, path)
    if not path.exists():
        raise UserError(f"{path}: no such weights file or run directory")
    if path.is_dir():
        export = path / f"{key}.weights.h5"
        if export.is_file():
            return load_own_weights(model, export, key)
        prefixes = _checkpoint_candidates(path)
        if prefixes is None:
            raise UserError(f"{path}: no {key}.weights.h5 and no training checkpoints in this "
                            "folder; pass a run directory or a weights file")
        return _restore_checkpoint(model, prefixes, key, path) + "; training did not finish"
    prefixes = _checkpoint_candidates(path)
    if prefixes is not None:
        return _restore_checkpoint(model, prefixes, key, path)
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty; {_REDO}")
    name = path.name.lower()
    try:
        if name.endswith(".keras"):
            if not zipfile.is_zipfile(path):
                raise UserError(f"{path}: not a .keras archive (truncated or corrupt zip); {_REDO}")
            return _load_keras_archive(model, path, key)
        if name.endswith((".h5", ".hdf5")):
            _load_weights_file(model, path)
            return f"weights {path}"
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 (h5py / zip / Keras raise many kinds)
        if _is_mismatch(error):
            raise UserError(f"{path}: these weights do not fit this model ({_short(error)}); pass "
                            "the run directory they were trained in, or the matching --preset") from None
        raise UserError(f"{path}: cannot read the weights (truncated or corrupt file: "
                        f"{_short(error)}); {_REDO}") from None
    raise UserError(f"{path}: unknown weights format; pass a .weights.h5, a .keras, a checkpoint "
                    "(checkpoints/ckpt-N) or a run directory")


__all__ = ["load_own_weights", "list_checkpoints", "newest_checkpoint", "CHECKPOINT_DIR"]
