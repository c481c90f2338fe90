"""PyTorch CPU baselines of the SRGAN, DGF and GLCIC generators, the networks our Keras builders make.

Written for benchmarks/run.py (issue 10: ours vs PyTorch on the same CPU, same network) from our
own Keras builders' structure, which follows the upstreams:

- ``SRResNet``: srgan/model.py build_generator (bubbliiiing nets/srgan.py; paper Fig. 4; in PyTorch
  leftthomas/SRGAN model.py): k9 conv + PReLU, B x (conv-BN-PReLU-conv-BN + identity), conv-BN +
  skip, log2(scale) x (conv k3n256 -> pixel shuffle x2 -> PReLU), k9 conv to 3 + tanh.
- ``DGFGenerator``: dgf_deblur/model.py build_generator (leftthomas/ImageDeblurring model.py,
  densefield.lua): 3x3 head, a dense field of bottleneck blocks (LeakyReLU, 1x1, BN, LeakyReLU,
  dilated 3x3, BN, dropout), a 1x1 tail + BN, global skip (concat or add), 3x3 + LeakyReLU, 3x3 + tanh.
- ``CompletionNetwork``: glcic_inpaint/model.py build_completion_network (GLCIC paper Table 1).

Each is built from the family's preset (``srgan.config`` etc., plain dataclasses: no TensorFlow in
a PyTorch benchmark process). Submodules carry the Keras layer names, so :func:`load_keras_weights`
copies a Keras model's weights in by name; tests/test_torch_generators.py checks the outputs agree.
Padding follows Keras ``"same"``: symmetric for stride 1 (odd kernels); for stride 2 TensorFlow
pads the extra pixel at the end (computed per input size here).
"""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.append(_path)

import torch_deblurgan  # noqa: E402  (its eval-mode runner times every generator alike)

FAMILIES = ("srgan", "dgf_deblur", "glcic_inpaint")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded like Keras ``padding="same"`` (TensorFlow: the odd pixel goes after)."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, dilation=1, bias=True):
        super().__init__(in_channels, out_channels, kernel, stride=stride, dilation=dilation, bias=bias)
        span = dilation * (kernel - 1)
        self.symmetric = stride == 1 and span % 2 == 0
        if self.symmetric:
            self.padding = (span // 2, span // 2)

    def forward(self, x):
        if not self.symmetric:
            pads = []
            for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last axis first
                stride = self.stride[0]
                total = max(self.dilation[0] * (self.kernel_size[0] - 1) + 1 - (size % stride or stride), 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int, epsilon: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=epsilon)


# ------------------------------------------------------------------------------------ SRGAN
class SRResNet(nn.Module):
    """srgan/model.py build_generator for a ``srgan.config.Config``: LR (N, 3, H, W) -> HR tanh."""

    def __init__(self, config):
        super().__init__()
        c, eps = config.filters, config.bn_epsilon
        layers = nn.ModuleDict()
        layers["head_conv"] = SameConv2d(3, c, config.head_kernel)
        layers["head_prelu"] = nn.PReLU(c, config.prelu_init)
        self.blocks = config.num_res_blocks
        for i in range(1, self.blocks + 1):
            layers[f"res{i}_conv1"] = SameConv2d(c, c, 3)
            layers[f"res{i}_bn1"] = _bn(c, eps)
            layers[f"res{i}_prelu"] = nn.PReLU(c, config.prelu_init)
            layers[f"res{i}_conv2"] = SameConv2d(c, c, 3)
            layers[f"res{i}_bn2"] = _bn(c, eps)
        layers["trunk_conv"] = SameConv2d(c, c, 3)
        layers["trunk_bn"] = _bn(c, eps)
        self.upsamples = int(round(math.log2(config.scale)))
        width = c
        for i in range(1, self.upsamples + 1):
            layers[f"up{i}_conv"] = SameConv2d(width, config.upsample_filters, 3)
            width = config.upsample_filters // 4
            layers[f"up{i}_prelu"] = nn.PReLU(width, config.prelu_init)
        layers["tail_conv"] = SameConv2d(width, 3, config.tail_kernel)
        self.layers = layers
        self.shuffle = nn.PixelShuffle(2)
        # convs whose output a pixel shuffle reads: load_keras_weights reorders their channels
        self.shuffled = {f"up{i}_conv": 2 for i in range(1, self.upsamples + 1)}

    def forward(self, x):
        m = self.layers
        x = skip = m["head_prelu"](m["head_conv"](x))
        for i in range(1, self.blocks + 1):
            y = m[f"res{i}_prelu"](m[f"res{i}_bn1"](m[f"res{i}_conv1"](x)))
            x = x + m[f"res{i}_bn2"](m[f"res{i}_conv2"](y))
        x = skip + m["trunk_bn"](m["trunk_conv"](x))
        for i in range(1, self.upsamples + 1):
            x = m[f"up{i}_prelu"](self.shuffle(m[f"up{i}_conv"](x)))
        return torch.tanh(m["tail_conv"](x))


# ------------------------------------------------------------------------------------ DGF
class DGFGenerator(nn.Module):
    """dgf_deblur/model.py build_generator for a ``dgf_deblur.config.Config``: (N, 3, H, W) -> tanh."""

    def __init__(self, config):
        super().__init__()
        self.config = cfg = config
        bottleneck, growth, eps, bias = cfg.bottleneck_channels, cfg.growth_rate, cfg.bn_epsilon, cfg.use_bias
        layers = nn.ModuleDict()
        layers["head_conv"] = SameConv2d(3, bottleneck, 3, bias=bias)
        stack = bottleneck
        for k in range(1, cfg.n_blocks + 1):
            p = f"dense{k}"
            layers[f"{p}_conv1x1"] = SameConv2d(stack, bottleneck, 1, bias=bias)
            layers[f"{p}_bn1"] = _bn(bottleneck, eps)
            layers[f"{p}_conv3x3"] = SameConv2d(bottleneck, growth, 3, dilation=cfg.dilations[k - 1], bias=bias)
            layers[f"{p}_bn2"] = _bn(growth, eps)
            if k < cfg.n_blocks or cfg.tail_input == "all":
                stack += growth
        tail = stack if cfg.tail_input == "all" else growth
        layers["tail_conv1x1"] = SameConv2d(tail, bottleneck, 1, bias=bias)
        layers["tail_bn"] = _bn(bottleneck, eps)
        fuse_in = 2 * bottleneck if cfg.global_skip == "concat" else bottleneck
        layers["fuse_conv"] = SameConv2d(fuse_in, growth, 3, bias=bias)
        layers["output_conv"] = SameConv2d(growth, 3, 3, bias=bias)
        self.layers = layers
        self.shuffled = {}
        self.dense_dropout = nn.Dropout(cfg.dense_dropout)
        self.tail_dropout = nn.Dropout(cfg.tail_dropout)

    def _lrelu(self, x):
        return F.leaky_relu(x, self.config.leaky_slope)

    def forward(self, x):
        m, cfg = self.layers, self.config
        head = stack = m["head_conv"](x)
        block = head
        for k in range(1, cfg.n_blocks + 1):
            p = f"dense{k}"
            y = m[f"{p}_bn1"](m[f"{p}_conv1x1"](self._lrelu(stack)))
            block = self.dense_dropout(m[f"{p}_bn2"](m[f"{p}_conv3x3"](self._lrelu(y))))
            if k < cfg.n_blocks or cfg.tail_input == "all":
                stack = torch.cat([stack, block], dim=1)
        tail = stack if cfg.tail_input == "all" else block
        x = self.tail_dropout(m["tail_bn"](m["tail_conv1x1"](self._lrelu(tail))))
        x = torch.cat([head, x], dim=1) if cfg.global_skip == "concat" else x + head
        x = self._lrelu(m["fuse_conv"](x))
        return torch.tanh(m["output_conv"](x))


# ------------------------------------------------------------------------------------ GLCIC
def glcic_table() -> tuple:
    """glcic_inpaint/model.py TABLE1 (paper Table 1), read from the source so that this process
    need not import Keras / TensorFlow."""
    tree = ast.parse((ROOT / "glcic_inpaint" / "model.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TABLE1" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError("TABLE1 not found in glcic_inpaint/model.py")


class CompletionNetwork(nn.Module):
    """glcic_inpaint/model.py build_completion_network for a ``glcic_inpaint.config.Config``:
    prepared input (N, 3 or 4, H, W), H and W multiples of 4 -> sigmoid (paper) / tanh (tadax)."""

    def __init__(self, config):
        super().__init__()
        self.table = glcic_table()
        self.activation = torch.sigmoid if config.output_activation == "sigmoid" else torch.tanh
        layers = nn.ModuleDict()
        channels, bias = config.input_channels, config.conv_bias
        for name, kind, kernel, dilation, stride, width in self.table:
            filters = 3 if kind == "output" else max(1, width * config.filters // 64)
            if kind == "deconv":  # Keras Conv2DTranspose k4 s2 "same": one pixel cropped per side
                layers[name] = nn.ConvTranspose2d(channels, filters, kernel, stride, padding=1, bias=bias)
            elif stride > 1 and config.padding == "symmetric":  # ZeroPadding2D + "valid"
                layers[name] = nn.Conv2d(channels, filters, kernel, stride, (kernel - 1) // 2 * dilation,
                                         dilation, bias=bias)
            else:
                layers[name] = SameConv2d(channels, filters, kernel, stride, dilation, bias=bias)
            if kind != "output":
                layers[f"{name}_bn"] = _bn(filters, config.bn_epsilon)
            channels = filters
        self.layers = layers
        self.shuffled = {}

    def forward(self, x):
        for name, kind, *_ in self.table:
            x = self.layers[name](x)
            if kind == "output":
                return self.activation(x)
            x = F.relu(self.layers[f"{name}_bn"](x))
        raise AssertionError("TABLE1 has no output layer")


# ------------------------------------------------------------------------------------ building
def build(family: str, preset=None, **overrides) -> nn.Module:
    """The PyTorch generator for a family and preset (name or Config; None: the family's default),
    PyTorch's default initialisation."""
    import importlib

    config_module = importlib.import_module(f"{family}.config")
    config = config_module.get_config(config_module.DEFAULT_PRESET if preset is None else preset, **overrides)
    return {"srgan": SRResNet, "dgf_deblur": DGFGenerator, "glcic_inpaint": CompletionNetwork}[family](config)


def input_channels(module: nn.Module) -> int:
    first = next(iter(module.layers.values()))
    return first.in_channels


def load_keras_weights(module: nn.Module, keras_model) -> nn.Module:
    """Copy a Keras generator's weights into ``module`` (its PyTorch twin) by layer name.

    Conv kernels HWIO -> OIHW; Conv2DTranspose (h, w, out, in) -> ConvTranspose2d (in, out, h, w);
    BN gamma / beta / moving mean / variance and epsilon; PReLU alpha (1, 1, C) -> (C,). A conv
    feeding a pixel shuffle has its output channels reordered from TensorFlow's depth_to_space order
    (channel (dy * 2 + dx) * C + c) to nn.PixelShuffle's (c * 4 + dy * 2 + dx). Every Keras layer
    with weights must find its twin and every PyTorch parameter must be filled, else ValueError.
    """
    import numpy as np

    from common.layers import pytorch_to_tensorflow_subpixel_order

    filled = set()

    def put(name, tensor, value):
        value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if tuple(tensor.shape) != tuple(value.shape):
            raise ValueError(f"{name}: PyTorch shape {tuple(tensor.shape)} vs Keras {tuple(value.shape)}")
        with torch.no_grad():
            tensor.copy_(value)
        filled.add(id(tensor))

    targets = dict(module.layers.items())
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        if layer.name not in targets:
            raise ValueError(f"Keras layer {layer.name!r} has no PyTorch twin")
        twin = targets[layer.name]
        if isinstance(twin, (nn.Conv2d, nn.ConvTranspose2d)):  # (h, w, in, out) / transposed (h, w, out, in)
            kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias) if layer.use_bias else None
            if layer.name in module.shuffled:
                scale = module.shuffled[layer.name]
                order = np.argsort(pytorch_to_tensorflow_subpixel_order(kernel.shape[-1] // scale ** 2, scale))
                kernel = kernel[..., order]
                bias = None if bias is None else bias[order]
            put(layer.name, twin.weight, np.transpose(kernel, (3, 2, 0, 1)))
            if bias is not None:
                put(layer.name, twin.bias, bias)
        elif isinstance(twin, nn.BatchNorm2d):
            twin.eps = float(layer.epsilon)
            channels = twin.num_features
            put(layer.name, twin.weight, np.asarray(layer.gamma) if layer.scale else np.ones(channels))
            put(layer.name, twin.bias, np.asarray(layer.beta) if layer.center else np.zeros(channels))
            put(layer.name, twin.running_mean, np.asarray(layer.moving_mean))
            put(layer.name, twin.running_var, np.asarray(layer.moving_variance))
        elif isinstance(twin, nn.PReLU):
            put(layer.name, twin.weight, np.asarray(layer.alpha).reshape(-1))
        else:
            raise ValueError(f"Keras layer {layer.name!r}: no rule for PyTorch {type(twin).__name__}")
    missing = [n for n, p in module.named_parameters() if id(p) not in filled]
    if missing:
        raise ValueError(f"PyTorch parameters not filled from the Keras model: {missing}")
    return module


def fold_batch_norm(module: nn.Module) -> int:
    """Fold, in place, each eval-mode BatchNorm2d whose input is a conv's output into that conv
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``; the BatchNorm2d becomes ``nn.Identity``), what
    ``common.folding`` does for ours. The pairs are found by running the module once (which tensor
    each module read and wrote): ``torch.fx``'s own fusion does not trace ``SameConv2d``'s size-
    dependent padding. In these twins a folded conv's output is read by its BatchNorm2d only.
    Returns the number of pairs folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module.eval()
    produced, pairs = {}, []

    def record(layer, inputs, output):
        if isinstance(layer, nn.BatchNorm2d) and id(inputs[0]) in produced:
            pairs.append((produced[id(inputs[0])], layer))
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            produced[id(output)] = layer

    leaves = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d))]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            module(torch.zeros(1, input_channels(module), 16, 16))
    finally:
        for handle in handles:
            handle.remove()
    replace = {}
    for conv, norm in pairs:
        replace[id(conv)] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose2d))
        replace[id(norm)] = nn.Identity()
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replace:
                setattr(parent, name, replace[id(child)])  # also right for an nn.ModuleDict entry
    return len(pairs)


def inference(family: str, preset=None, channels_last: bool = False, bf16: bool = False, fold: bool = False):
    """``(run, channels)``: ``run((N, C, H, W) float32)`` is the generator in eval mode, no grad,
    float32 or bf16 autocast, contiguous or channels-last (random weights: speed does not depend on them);
    ``fold``: BatchNorm2d folded into the convs first (:func:`fold_batch_norm`)."""
    module = build(family, preset)
    if fold:
        fold_batch_norm(module)
    return torch_deblurgan.inference(channels_last, bf16, generator=module), input_channels(module)
