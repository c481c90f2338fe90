"""A small Torch7 binary writer (the layout of torch/File.lua writeObject), for tests only.

Numbers are doubles, strings and tables carry an int32 length / count, tensors and nn modules are
"torch" objects (a reference index, the version "V 1", the class name), tensors write their sizes,
strides and 1-based offset as int64 and then their storage (an int64 count and the raw elements).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN, FUNCTION = 0, 1, 2, 3, 4, 5, 6
_TENSOR_TYPES = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double", np.dtype(np.int64): "Long",
                 np.dtype(np.uint8): "Byte"}


@dataclass
class Module:
    """An ``nn`` module: class name (``nn.SpatialConvolution``) and its fields."""

    torch_class: str
    fields: dict = field(default_factory=dict)


class LuaFunction:
    """A serialized Lua function (only to check that readers refuse it)."""


def sequential(*modules: Module) -> Module:
    return Module("nn.Sequential", {"modules": {float(i): m for i, m in enumerate(modules, start=1)},
                                    "train": False})


class _Writer:
    def __init__(self):
        self.out = bytearray()
        self.count = 0

    def int(self, value: int):
        self.out += struct.pack("<i", value)

    def long(self, value: int):
        self.out += struct.pack("<q", value)

    def string(self, text: str):
        data = text.encode("latin1")
        self.int(len(data))
        self.out += data

    def _index(self):
        self.count += 1
        self.int(self.count)

    def _torch_header(self, name: str):
        self.int(TORCH)
        self._index()
        self.string("V 1")
        self.string(name)

    def obj(self, value):
        if value is None:
            self.int(NIL)
        elif isinstance(value, bool):
            self.int(BOOLEAN)
            self.int(int(value))
        elif isinstance(value, (int, float)):
            self.int(NUMBER)
            self.out += struct.pack("<d", float(value))
        elif isinstance(value, str):
            self.int(STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            kind = _TENSOR_TYPES[value.dtype]
            self._torch_header(f"torch.{kind}Tensor")
            array = np.ascontiguousarray(value)
            self.int(array.ndim)
            for size in array.shape:
                self.long(size)
            for stride in array.strides:
                self.long(stride // array.itemsize)
            self.long(1)  # storage offset, 1-based
            self._torch_header(f"torch.{kind}Storage")
            self.long(array.size)
            self.out += array.astype(array.dtype.newbyteorder("<")).tobytes()
        elif isinstance(value, Module):
            self._torch_header(value.torch_class)
            self.obj(dict(value.fields))
        elif isinstance(value, dict):
            self.int(TABLE)
            self._index()
            self.int(len(value))
            for key, item in value.items():
                self.obj(key)
                self.obj(item)
        elif isinstance(value, LuaFunction):
            self.int(FUNCTION)
            self.int(0)
        else:
            raise TypeError(f"cannot write {type(value).__name__}")


def write_t7(path, value) -> None:
    writer = _Writer()
    writer.obj(value)
    with open(path, "wb") as handle:
        handle.write(bytes(writer.out))
