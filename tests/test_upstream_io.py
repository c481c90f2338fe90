"""common.upstream_io: PyTorch files read without torch code (zip and legacy pickle), refusals of
anything but tensors, Torch7 files, Keras 2 HDF5 files; common.weights.sniff."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pytest

from common.errors import UserError
from common.upstream_io import read_keras2_h5, read_pytorch, read_torch7, t7_modules
from common.weights import sniff


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_pytorch_state_dict_round_trip_and_refusal(tmp_path, zip_format):
    torch = pytest.importorskip("torch", reason="PyTorch writes the files")
    state = OrderedDict()
    state["conv.weight"] = torch.randn(4, 3, 2, 2)
    state["fc.weight"] = torch.randn(6, 5).t()  # not contiguous: strides are honoured
    state["half"] = torch.randn(3).half()
    state.update({f"bn.{k}": v for k, v in torch.nn.BatchNorm2d(3).state_dict().items()})  # + int64 scalar
    path = tmp_path / "state.pth"
    torch.save({"state_dict": state, "epoch": 7}, path, _use_new_zipfile_serialization=zip_format)
    assert sniff(path) == "pytorch"
    arrays = read_pytorch(path)
    assert list(arrays) == list(state)
    for key, value in state.items():
        assert arrays[key].dtype == value.numpy().dtype
        np.testing.assert_array_equal(arrays[key], value.numpy())

    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "x": _Payload()}, evil, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UserError, match="refused global posix.system|refused global nt.system"):
        read_pytorch(evil)


def test_legacy_file_saved_from_the_gpu(tmp_path):
    """2018 checkpoints saved from a GPU model name torch.cuda.FloatStorage (no GPU needed to read)."""
    torch = pytest.importorskip("torch", reason="PyTorch writes the files")
    path = tmp_path / "gpu.pth"
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert data.count(b"ctorch\nFloatStorage\n") == 1  # protocol-2 GLOBAL opcode
    path.write_bytes(data.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n"))
    np.testing.assert_array_equal(read_pytorch(path)["w"], np.arange(6.0, dtype=np.float32).reshape(2, 3))


def test_truncated_pytorch_file_is_one_clear_error(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch writes the files")
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.ones(1000)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="cut.pth: cannot read this PyTorch file"):
        read_pytorch(path)


def test_torch7_tables_tensors_modules_and_refusals(tmp_path):
    from t7_writer import LuaFunction, Module, sequential, write_t7

    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    conv = Module("nn.SpatialConvolution", {"weight": weight, "bias": np.ones(2, np.float32), "kW": 2})
    bn = Module("nn.SpatialBatchNormalization", {"running_mean": np.zeros(2, np.float32),
                                                 "running_var": np.ones(2, np.float32), "eps": 1e-5})
    inner = sequential(bn, Module("nn.ReLU", {}))
    path = tmp_path / "model.t7"
    write_t7(path, {"model": sequential(conv, inner), "mean": np.array([0.1, 0.2, 0.3]), "name": "x",
                    "flag": True})
    assert sniff(path) == "torch7"
    data = read_torch7(path)
    assert data["name"] == "x" and data["flag"] is True
    np.testing.assert_allclose(data["mean"], [0.1, 0.2, 0.3])
    modules = t7_modules(data["model"])
    assert [m.torch_class for m in modules] == ["nn.SpatialConvolution", "nn.SpatialBatchNormalization"]
    np.testing.assert_array_equal(modules[0].fields["weight"], weight)
    assert modules[0].fields["kW"] == 2.0

    write_t7(path, {"model": Module("os.Execute", {})})
    with pytest.raises(UserError, match="refused Torch class os.Execute"):
        read_torch7(path)
    write_t7(path, {"f": LuaFunction()})
    with pytest.raises(UserError, match="refused a serialized Lua function"):
        read_torch7(path)


def test_keras2_h5_layers_in_file_order(tmp_path):
    tk = pytest.importorskip("tf_keras", reason="tf-keras writes Keras 2 .h5 files")
    L = tk.layers
    inputs = L.Input((8, 8, 3))
    x = L.BatchNormalization()(L.Conv2D(4, 3)(inputs))
    model = tk.Model(inputs, L.Dense(2)(L.Flatten()(L.ReLU()(x))))
    path = tmp_path / "weights.h5"
    model.save_weights(str(path), save_format="h5")
    assert sniff(path) == "keras2-h5"
    f = read_keras2_h5(path)
    assert len(f.layer_names) == 6 and list(f.layers) == [n for n in f.layer_names if n in f.layers]
    flat = [a for arrays in f.layers.values() for a in arrays]
    assert len(flat) == len(model.get_weights()) == 8
    for got, want in zip(flat, model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert len(f.arrays) == 8 and next(iter(f.arrays)).endswith("/kernel:0")

    model.save(str(tmp_path / "whole.h5"))  # whole-model file: weights under model_weights
    whole = read_keras2_h5(tmp_path / "whole.h5")
    assert [a.shape for arrays in whole.layers.values() for a in arrays] == [w.shape for w in model.get_weights()]
