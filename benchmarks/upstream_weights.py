"""Every upstream weights file kind at its released size: written by the upstream framework with
random weights and BatchNorm statistics, loaded with no --preset, compared with the upstream output.

    python benchmarks/upstream_weights.py [--keep DIR]

Needs PyTorch and tf-keras (requirements-dev.txt) to write the files; loading them does not. Prints
the detected ``weights:`` line and max |ours - upstream| on one 32 x 48 image per file kind, for the
loaded model and for the copy ``predict.py`` runs (``Loaded.inference_network()``: BatchNormalization
folded into the convs), and for SRGAN the upstream model's own float32-vs-float64 difference (the
rounding floor).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", help="write the files here (default: a temporary folder)")
    args = p.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        measure(Path(args.keep))
        print(f"files in {args.keep}")
    else:
        with tempfile.TemporaryDirectory() as folder:
            measure(Path(folder))


def measure(folder: Path) -> None:
    import tf_keras as tk
    import torch
    from t7_writer import write_t7
    from upstream_models import (glcic_torch_and_t7, keras_port_generator, leftthomas_generator,
                                 randomize_keras2, srresnet_generator)

    import deblur_gan.inference as deblur
    import dgf_deblur.inference as dgf
    import glcic_inpaint.inference as glcic
    import srgan.inference as sr

    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    signed = (image.astype("float32") / 127.5 - 1.0)[None]
    rows = []

    def report(module, path, inputs, expected):
        loaded = module.load(path)
        got = np.asarray(loaded.model(inputs, training=False))
        folded = np.asarray(loaded.inference_network()(inputs, training=False))
        rows.append((loaded.description, float(np.abs(got - expected).max()),
                     float(np.abs(folded - expected).max())))

    spec = importlib.util.spec_from_file_location("torch_deblurgan", REPO / "benchmarks" / "torch_deblurgan.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    torch.manual_seed(0)
    net = reference.Generator().eval()  # ngf 64, 9 blocks, dropout 0.5
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 0.02)  # weights_init
        expected = net(torch.from_numpy(signed.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    torch.save(net.state_dict(), folder / "latest_net_G.pth", _use_new_zipfile_serialization=False)
    report(deblur, folder / "latest_net_G.pth", signed, expected)

    for upsampling, name in (("nearest", "generator.h5"), ("transpose", "generator_march2018.h5")):
        model = keras_port_generator(tk, upsampling, 64, 9)
        randomize_keras2(model, 1)
        model.save_weights(str(folder / name), save_format="h5")
        report(deblur, folder / name, signed, model(signed, training=False).numpy())

    floors = {}
    for layout, name in (("bubbliiiing", "Generator_SRGAN.h5"), ("krasserm", "pre_generator.h5")):
        model = srresnet_generator(tk, layout, 64, 16)
        randomize_keras2(model, 2)
        model.save_weights(str(folder / name), save_format="h5")
        inputs = image.astype("float32")[None] if layout == "krasserm" else signed
        expected = model(inputs, training=False).numpy()
        tk.backend.set_floatx("float64")
        double = srresnet_generator(tk, layout, 64, 16)
        double.set_weights([w.astype("float64") for w in model.get_weights()])
        truth = double(inputs.astype("float64"), training=False).numpy()
        tk.backend.set_floatx("float32")
        if layout == "krasserm":  # its output is [0, 255]; ours [-1, 1] from [0, 1] input
            expected, truth, inputs = expected / 127.5 - 1, truth / 127.5 - 1, inputs / 255.0
        floors[name] = float(np.abs(expected - truth).max())
        report(sr, folder / name, inputs, expected)

    model = leftthomas_generator(tk, 64)
    randomize_keras2(model, 3)
    model.save_weights(str(folder / "generator_weights.h5"), save_format="h5")
    report(dgf, folder / "generator_weights.h5", signed, model(signed, training=False).numpy())

    net, t7 = glcic_torch_and_t7(torch, 64, seed=1)
    mean = np.array([0.458, 0.441, 0.404], np.float32)
    write_t7(folder / "completionnet_places2.t7", {"model": t7, "mean": mean})
    unit = (image.astype("float32") / 255.0)[None]
    mask = np.zeros((1, 32, 48, 1), np.float32)
    mask[:, 8:24, 10:30] = 1
    net_input = np.concatenate([(unit - mean) * (1 - mask), mask], -1)  # inpaint.lua
    with torch.no_grad():
        res = net(torch.from_numpy(net_input.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    report(glcic, folder / "completionnet_places2.t7", [unit, mask], unit * (1 - mask) + res * mask)

    for description, error, folded in rows:
        print(f"{description}\n    max |ours - upstream| = {error:.1e} (loaded model), {folded:.1e} (BatchNorm folded)")
    for name, floor in floors.items():
        print(f"{name}: upstream float32 vs float64 = {floor:.1e} (rounding floor)")


if __name__ == "__main__":
    main()
