"""The official GLCIC Torch7 model -> our inpainter: detection, and the convert command.

    python -m glcic_inpaint.convert --input completionnet_places2.t7 --output glcic_places2.weights.h5

satoshiiizuka/siggraph2017_inpainting publishes ``completionnet_places2.t7`` (also
``completionnet_places2_freeform.t7``, ``completionnet_celeba.t7``): a Lua table
``{model = nn.Sequential, mean = datamean}``. inpaint.lua feeds ``cat(I - datamean (hole = 0), M)``
with ``I`` RGB in [0, 1]: exactly our ``paper`` preset (4 input channels, holes at the mean colour,
the mean subtracted; Sigmoid output in [0, 1]) with ``mean_color = datamean``. The Sequential is
paper Table 1: SpatialConvolution / SpatialDilatedConvolution / SpatialFullConvolution, each but
the last followed by SpatialBatchNormalization and ReLU; Torch pads (k - 1) / 2 * dilation, our
``padding="symmetric"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.cli import run_cli
from common.errors import UserError
from common.upstream_io import T7Object, read_torch7, t7_modules
from common.weights import assign_in_order, check_preset, conv_kernel_from_torch, convert_main
from glcic_inpaint.config import PRESETS, get_config

FAMILY = "glcic_inpaint"
_CONV = ("SpatialConvolution", "SpatialDilatedConvolution", "SpatialFullConvolution",
         "SpatialConvolutionMM")


def _short(module: T7Object) -> str:
    return module.torch_class.rsplit(".", 1)[-1]


def _conv_arrays(module: T7Object) -> list[np.ndarray]:
    f = module.fields
    weight = np.asarray(f["weight"], np.float32)
    if weight.ndim == 2:  # SpatialConvolutionMM keeps [out, in * kH * kW]
        weight = weight.reshape(int(f["nOutputPlane"]), int(f["nInputPlane"]), int(f["kH"]), int(f["kW"]))
    arrays = [conv_kernel_from_torch(weight)]
    if isinstance(f.get("bias"), np.ndarray):
        arrays.append(np.asarray(f["bias"], np.float32))
    return arrays


def _bn_arrays(module: T7Object) -> list[np.ndarray]:
    f = module.fields
    n = len(f["running_mean"])
    gamma = f.get("weight") if isinstance(f.get("weight"), np.ndarray) else np.ones(n, np.float32)
    beta = f.get("bias") if isinstance(f.get("bias"), np.ndarray) else np.zeros(n, np.float32)
    var = f.get("running_var")
    if not isinstance(var, np.ndarray):  # very old nn kept running_std = 1 / sqrt(var + eps)
        var = 1.0 / np.square(np.asarray(f["running_std"], np.float64)) - float(f.get("eps", 1e-5))
    return [np.asarray(a, np.float32) for a in (gamma, beta, f["running_mean"], var)]


def _all_classes(obj, out: list[str]) -> list[str]:
    if isinstance(obj, T7Object):
        out.append(_short(obj))
        children = obj.fields.get("modules")
        if isinstance(children, dict):
            for key in sorted(k for k in children if isinstance(k, (int, float))):
                _all_classes(children[key], out)
    return out


def detect_torch7(data, path) -> tuple[dict, list, str]:
    """``(config fields, [(name, keras arrays)] in order, description)`` of an official .t7 file."""
    model = data.get("model") if isinstance(data, dict) else data
    mean = data.get("mean") if isinstance(data, dict) else None
    modules = t7_modules(model)
    kinds = []
    for m in modules:
        name = _short(m)
        kinds.append("conv" if name in _CONV else "bn" if "BatchNormalization" in name else name)
    not_official = (f"{path}: not the official GLCIC completion network (expected 17 convolutions, each "
                    "but the last followed by SpatialBatchNormalization)")
    if len(modules) != 33 or kinds != ["conv", "bn"] * 16 + ["conv"]:
        raise UserError(f"{not_official}; found {len(modules)} weighted modules")
    first = _conv_arrays(modules[0])[0]
    if first.shape[2] != 4 or _conv_arrays(modules[-1])[0].shape[3] != 3:
        raise UserError(f"{not_official}; the first conv has {first.shape[2]} input channels (needs 4: "
                        "RGB + mask)")
    if mean is None:
        raise UserError(f"{path}: no 'mean' in the file; the official models store the dataset mean "
                        "that fills the holes")
    mean = np.asarray(list(mean.values()) if isinstance(mean, dict) else mean, np.float64).reshape(-1)[:3]
    classes = _all_classes(model, [])
    activation = "Sigmoid" if "Sigmoid" in classes else "Tanh" if "Tanh" in classes else None
    if activation != "Sigmoid":
        raise UserError(f"{path}: the network ends in {activation or 'no activation'}, not the official "
                        "Sigmoid; not a model this converter knows")
    stride2 = modules[2].fields
    if int(stride2.get("dW", 1)) != 2 or int(stride2.get("padW", 1)) != 1:
        raise UserError(f"{not_official}; conv2 has stride {stride2.get('dW')} / pad {stride2.get('padW')}")
    eps = float(modules[1].fields.get("eps", 1e-5))
    fields = {"filters": int(first.shape[3]), "mean_color": tuple(round(float(v), 6) for v in mean),
              "bn_epsilon": eps, "conv_bias": len(_conv_arrays(modules[0])) == 2}
    source = [(f"{i}:{_short(m)}", _conv_arrays(m) if k == "conv" else _bn_arrays(m))
              for i, (m, k) in enumerate(zip(modules, kinds), start=1)]
    rgb = ", ".join(f"{v:.3f}" for v in mean)
    what = (f"official GLCIC completion network (Torch7), paper preset: 4-channel input, holes filled "
            f"with the dataset mean ({rgb}), sigmoid output")
    return fields, source, what


def load_upstream(path, kind: str, preset: str | None = None):
    """``(inpainter, config, description)`` from the official .t7 file; a ``preset`` that
    contradicts the file is an error naming both."""
    from glcic_inpaint.model import build_completion_network, build_inpainter

    path = Path(path)
    if kind != "torch7":
        raise UserError(f"{path}: a {kind} file is not a GLCIC release this project reads; pass the "
                        "official completionnet_places2.t7 or one of our runs")
    fields, source, what = detect_torch7(read_torch7(path), path)
    check_preset(path, "paper", preset, what)
    config = get_config("paper", **fields)
    network = build_completion_network(config)
    assign_in_order(network, source, path)
    return build_inpainter(network, config, config.mean_color), config, what


def main(argv=None) -> int:
    from glcic_inpaint.inference import load

    return convert_main(FAMILY, load, argv, presets=PRESETS)


__all__ = ["detect_torch7", "load_upstream", "main"]

if __name__ == "__main__":
    run_cli(main)
