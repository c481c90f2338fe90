"""Safe readers for foreign weight files, returning numpy arrays. No PyTorch, no Lua, no code from
the file runs.

- :func:`read_keras2_h5`: a Keras 2 / tf.keras HDF5 file (``save_weights``, or ``save`` whose
  weights sit under ``model_weights``): its layers in file order with their arrays.
- :func:`read_pytorch`: a ``torch.save`` file, both the zip format (PyTorch >= 1.6) and the legacy
  pickle stream that 2018 checkpoints use, through a restricted unpickler that rebuilds only
  tensors, storages and ordered dicts.
- :func:`read_torch7`: a Torch7 binary ``.t7`` file (``torch.save`` in Lua): tables, tensors,
  storages and ``nn`` modules (as plain dicts), nothing else.

Anything outside those rules raises :class:`common.errors.UserError` with one line naming the file.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError


def _open_error(path, what: str, error: BaseException | str) -> UserError:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UserError(f"{path}: cannot read this {what} ({text}); download the file again or pass "
                     "--from with its real format")


# ============================================================================= Keras 2 HDF5
@dataclass
class Keras2File:
    """A Keras 2 weights file: every layer name in order, and the arrays of those that have any."""

    layer_names: list[str]
    layers: "OrderedDict[str, list[np.ndarray]]"  # layer -> arrays in the layer's weight order
    weight_names: dict[str, list[str]] = field(default_factory=dict)  # layer -> "conv2d_1/kernel:0", ...
    attrs: dict = field(default_factory=dict)  # keras_version, backend

    @property
    def arrays(self) -> "OrderedDict[str, np.ndarray]":
        """``"layer/weight" -> array`` in file order."""
        out = OrderedDict()
        for layer, arrays in self.layers.items():
            for name, array in zip(self.weight_names[layer], arrays):
                out[f"{layer}/{name.split('/')[-1]}"] = array
        return out


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras2_h5(path) -> Keras2File:
    """Read a Keras 2 HDF5 weights (or whole-model) file written by ``save_weights`` / ``save``."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise UserError(f"{path}: not a Keras 2 weights file (no layer_names); pass our "
                                ".weights.h5 as it is, or the upstream release file")
            attrs = {k: _text(group.attrs[k]) if k in group.attrs else _text(f.attrs.get(k, ""))
                     for k in ("keras_version", "backend")}
            names = [_text(n) for n in group.attrs["layer_names"]]
            layers, weight_names = OrderedDict(), {}
            for name in names:
                wnames = [_text(w) for w in group[name].attrs.get("weight_names", [])]
                if wnames:
                    layers[name] = [np.asarray(group[name][w], dtype=np.float32) for w in wnames]
                    weight_names[name] = wnames
    except UserError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise _open_error(path, "Keras 2 HDF5 file", error) from None
    return Keras2File(names, layers, weight_names, attrs)


# ============================================================================= PyTorch
_DTYPES = {  # storage class name -> numpy dtype (torch/storage.py, torch/_utils.py)
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_ALLOWED = {  # (module, name) a restricted unpickler may build
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001  # torch/serialization.py PROTOCOL_VERSION


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self):
        dtype = _DTYPES.get(self.name)
        if dtype is None:
            raise pickle.UnpicklingError(f"unsupported storage type torch.{self.name}")
        return np.dtype(dtype)


@dataclass
class _Storage:
    """A storage's raw elements (filled in later for the legacy format)."""

    dtype: np.dtype
    data: np.ndarray | None = None


def _rebuild_tensor(storage: _Storage, offset, size, stride, *_ignored):
    """A strided view of a storage as a numpy array (torch._utils._rebuild_tensor[_v2])."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    itemsize = storage.dtype.itemsize
    if not size:
        return np.array(storage.data[int(offset)])
    return np.lib.stride_tricks.as_strided(
        storage.data[int(offset):], shape=size, strides=[s * itemsize for s in stride]).copy()


def _rebuild_parameter(data, *_ignored):
    return data


class _Deferred:
    """A tensor of the legacy format whose storage bytes come after the pickle."""

    def __init__(self, storage: _Storage, offset, size, stride):
        self.storage, self.args = storage, (offset, size, stride)

    def resolve(self):
        return _rebuild_tensor(self.storage, *self.args)


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only what a state dict is made of; any other global is refused."""

    def __init__(self, file, storages, legacy: bool):
        super().__init__(file, encoding="latin1")
        self.storages, self.legacy = storages, legacy

    def find_class(self, module, name):
        if module in ("torch", "torch.cuda") and name in _DTYPES:
            return _StorageType(name)  # a checkpoint saved from the GPU names torch.cuda.FloatStorage
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if module == "collections":
            return OrderedDict
        if name == "Size":
            return tuple
        if name == "_rebuild_parameter":
            return _rebuild_parameter
        return self._rebuild

    def _rebuild(self, storage, offset, size, stride, *rest):
        if self.legacy:
            return _Deferred(storage, offset, size, stride)
        return _rebuild_tensor(storage, offset, size, stride)

    def persistent_load(self, pid):
        # ("storage", storage_type, key, location, numel[, view_metadata])
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.60}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r:.60}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (PyTorch < 0.4) are not supported")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype)
        return storage


def _resolve(value):
    if isinstance(value, _Deferred):
        return value.resolve()
    if isinstance(value, dict):
        return type(value)((k, _resolve(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


def _read_zip(path: Path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise pickle.UnpicklingError("no data.pkl in the zip archive")
        root = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages, legacy=True)
        result = unpickler.load()
        for key, storage in storages.items():
            raw = archive.read(f"{root}data/{key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _resolve(result)


def _read_legacy(path: Path):
    """torch.save before 1.6: pickles of the magic number, protocol, system info and the object,
    then the list of storage keys, then each storage as an int64 element count and its bytes."""
    with open(path, "rb") as handle:
        def plain():  # the header pickles hold ints, a dict of ints/bools/strings, a list of strings
            return _RestrictedUnpickler(handle, {}, legacy=True).load()

        if plain() != _LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a torch.save file (wrong magic number)")
        protocol = plain()
        if protocol != _LEGACY_PROTOCOL:
            raise pickle.UnpicklingError(f"unsupported torch.save protocol {protocol}")
        info = plain()
        little = not isinstance(info, dict) or info.get("little_endian", True)
        storages: dict[str, _Storage] = {}
        result = _RestrictedUnpickler(handle, storages, legacy=True).load()
        keys = plain()
        order = "<" if little else ">"
        for key in keys:
            storage = storages[str(key)]
            (count,) = struct.unpack(f"{order}q", handle.read(8))
            raw = handle.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise EOFError("the file ends inside a storage (truncated)")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder(order))
    return _resolve(result)


def read_pytorch(path) -> "OrderedDict[str, np.ndarray]":
    """The tensors of a ``torch.save`` file as ``name -> numpy array``.

    A checkpoint dict holding the state dict under ``state_dict`` / ``model`` / ``generator`` /
    ``netG`` is unwrapped; ``module.`` prefixes (DataParallel) are kept (the family strips them).
    Refuses (UserError) any pickle that needs a class other than tensors, storages, OrderedDict.
    """
    path = Path(path)
    try:
        result = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except pickle.UnpicklingError as error:
        raise UserError(f"{path}: refused to read this PyTorch file ({error}); only tensors, "
                        "storages and state dicts are read, never arbitrary pickled objects") from None
    except (EOFError, OSError, ValueError, struct.error, KeyError, IndexError, zipfile.BadZipFile) as error:
        raise _open_error(path, "PyTorch file", error) from None
    for key in ("state_dict", "model", "generator", "netG", "params"):
        if isinstance(result, dict) and isinstance(result.get(key), dict):
            result = result[key]
            break
    if not isinstance(result, dict):
        raise UserError(f"{path}: holds a {type(result).__name__}, not a state dict of tensors")
    arrays = OrderedDict((str(k), v) for k, v in result.items() if isinstance(v, np.ndarray))
    if not arrays:
        raise UserError(f"{path}: no tensors in this PyTorch file")
    return arrays


# ============================================================================= Torch7
_T7_NIL, _T7_NUMBER, _T7_STRING, _T7_TABLE, _T7_TORCH, _T7_BOOLEAN = 0, 1, 2, 3, 4, 5
_T7_FUNCTIONS = (6, 7, 8)  # Lua functions (refused)
_T7_TENSOR_DTYPES = {"Float": np.float32, "Double": np.float64, "Byte": np.uint8, "Char": np.int8,
                     "Short": np.int16, "Int": np.int32, "Long": np.int64, "Half": np.float16}


@dataclass
class T7Object:
    """A Torch class instance other than a tensor/storage (an ``nn`` module): its class name and
    its fields (``weight``, ``bias``, ``modules``, ``running_mean``, ``kW``, ...)."""

    torch_class: str
    fields: dict


class _T7Reader:
    def __init__(self, data: bytes, long_size: int):
        self.data, self.pos, self.long_size = data, 0, long_size
        self.memo: dict[int, object] = {}

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("the file ends early (truncated)")
        chunk = self.data[self.pos: self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack("<i", self._take(4))[0]

    def long(self) -> int:
        return struct.unpack("<q" if self.long_size == 8 else "<i", self._take(self.long_size))[0]

    def double(self) -> float:
        return struct.unpack("<d", self._take(8))[0]

    def string(self) -> str:
        return self._take(self.int()).decode("latin1")

    def longs(self, n: int) -> list[int]:
        return [self.long() for _ in range(n)]

    def object(self):
        tag = self.int()
        if tag == _T7_NIL:
            return None
        if tag == _T7_NUMBER:
            return self.double()
        if tag == _T7_STRING:
            return self.string()
        if tag == _T7_BOOLEAN:
            return self.int() == 1
        if tag in (_T7_TABLE, _T7_TORCH):
            index = self.int()
            if index in self.memo:
                return self.memo[index]
            if tag == _T7_TABLE:
                table: dict = {}
                self.memo[index] = table
                for _ in range(self.int()):
                    key = self.object()
                    table[key] = self.object()
                return table
            return self._torch(index)
        if tag in _T7_FUNCTIONS:
            raise ValueError("refused a serialized Lua function")
        raise ValueError(f"unknown type tag {tag}")

    def _torch(self, index: int):
        version = self.string()
        name = self.string() if version.startswith("V ") else version
        kind = name.rsplit(".", 1)[-1]
        if name.startswith("torch.") and kind.endswith("Tensor"):
            return self._tensor(index, kind[: -len("Tensor")])
        if name.startswith("torch.") and kind.endswith("Storage"):
            return self._storage(index, kind[: -len("Storage")])
        if not (name.startswith("nn.") or name.startswith("cudnn.") or name.startswith("nngraph.")):
            raise ValueError(f"refused Torch class {name} (only tensors, tables and nn modules)")
        obj = T7Object(name, {})
        self.memo[index] = obj
        fields = self.object()
        obj.fields = fields if isinstance(fields, dict) else {"value": fields}
        return obj

    def _storage(self, index: int, kind: str):
        dtype = _T7_TENSOR_DTYPES.get(kind.replace("Cuda", "") or "Float")
        if dtype is None:
            raise ValueError(f"unsupported storage torch.{kind}Storage")
        count = self.long()
        dtype = np.dtype(dtype).newbyteorder("<")
        array = np.frombuffer(self._take(count * dtype.itemsize), dtype=dtype)
        self.memo[index] = array
        return array

    def _tensor(self, index: int, kind: str):
        dtype = _T7_TENSOR_DTYPES.get(kind.replace("Cuda", "") or "Float")
        if dtype is None:
            raise ValueError(f"unsupported tensor torch.{kind}Tensor")
        ndim = self.int()
        size, stride = self.longs(ndim), self.longs(ndim)
        offset = self.long() - 1  # Lua: 1-based
        storage = self.object()
        if ndim == 0 or storage is None:
            array = np.zeros((0,), dtype)
        else:
            itemsize = storage.dtype.itemsize
            array = np.lib.stride_tricks.as_strided(
                storage[offset:], shape=size, strides=[s * itemsize for s in stride]).astype(dtype)
        self.memo[index] = array
        return array


def read_torch7(path):
    """The object in a Torch7 binary file: dicts for tables, numpy arrays for tensors,
    :class:`T7Object` for ``nn`` modules. Longs of 8 bytes (64-bit Linux) or 4 are both tried."""
    path = Path(path)
    data = path.read_bytes()
    errors = []
    for long_size in (8, 4):
        try:
            return _T7Reader(data, long_size).object()
        except (ValueError, struct.error, UnicodeDecodeError, MemoryError) as error:
            if "refused" in str(error):
                raise UserError(f"{path}: {error}; only tensors, tables and nn modules are read") from None
            errors.append(str(error))
    raise _open_error(path, "Torch7 file", errors[0])


def t7_modules(obj) -> list[T7Object]:
    """The ``nn`` modules with weights inside a Torch7 object, depth first in execution order."""
    out: list[T7Object] = []
    if isinstance(obj, T7Object):
        children = obj.fields.get("modules")
        if isinstance(children, dict):
            for key in sorted(k for k in children if isinstance(k, (int, float))):
                out.extend(t7_modules(children[key]))
        elif isinstance(obj.fields.get("weight"), np.ndarray) or isinstance(
                obj.fields.get("running_mean"), np.ndarray):
            out.append(obj)
    elif isinstance(obj, dict):
        for value in obj.values():
            out.extend(t7_modules(value))
    return out


__all__ = ["Keras2File", "read_keras2_h5", "read_pytorch", "read_torch7", "T7Object", "t7_modules"]
