"""Speed and memory of every family, and a PyTorch baseline measured in the same run.

    python benchmarks/run.py                    # everything (long: tens of minutes on 2 cores)
    python benchmarks/run.py --quick            # DeblurGAN paper, then SRGAN / DGF / GLCIC vs PyTorch (< 5 min)
    python benchmarks/run.py --inference-only --small   # each family's default generator vs PyTorch
    python benchmarks/run.py --family srgan --json srgan.json
    python benchmarks/run.py --photo            # peak memory of default-flag inference on 4032x3024
    python benchmarks/run.py --seams            # tiled vs whole-image outputs, every family and preset

Every case runs in its own worker process (dtype policy, XLA and thread pools are process-wide,
and ``ru_maxrss`` of a fresh process is the case's peak memory). Workers of one comparison are
started together and timed in turns (one repetition each, round after round), so load from other
programs hits every contender alike; the figures are medians. Cases:

- ``infer``: the generator on one image (batch 1) at the family's standard sizes (DeblurGAN / DGF
  256x256 and 1280x720, SRGAN 64->256 and 256->1024, GLCIC 256x256), float32 / mixed_bfloat16
  (mixed_float16 on a GPU), graph without XLA (with XLA too on a GPU, and for the DeblurGAN
  comparison on CPU, where XLA measured slower); FLOPs per image are counted from the
  traced graph's convolutions and matmuls; ``peak`` is their share of the measured matmul peak.
  The network timed is what ``predict.py`` runs: BatchNormalization folded into the convs
  (``common.folding``; ``benchmarks/ab_fold.py`` times it against the network as trained).
- ``train``: one full training step of a preset at its own crop and batch size.
- ``torch``: PyTorch CPU, the same DeblurGAN paper generator / training step
  (``benchmarks/torch_deblurgan.py``) and the same SRGAN, DGF and GLCIC generators as our presets
  build (``benchmarks/torch_generators.py``; tests/test_torch_generators.py loads our weights into
  them and checks the outputs agree), float32 and bf16 autocast, contiguous and channels-last. Each
  family's generator section prints ours (``--precision auto``) against PyTorch's best.
- ``matmul``: the machine's peak: the best of a 4096^3 matmul (TF and PyTorch) and a batch of
  3x3 256->256 convolutions (TF), in float32 and bfloat16.
- ``retrace``: graph traces of ``common.inference`` for 20 images of mixed sizes.
- ``photo``: what ``predict.py`` does with default flags on a 4032x3024 photo (automatic tile), with
  the process's peak resident memory.
- ``seams``: PSNR between a tiled and a whole-image output (random weights, a smooth random
  picture); instance-norm networks run with the whole image's statistics
  (``common/whole_image_norm.py``).

Requires ``pip install -r benchmarks/requirements.txt`` for the PyTorch baseline (skipped without).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@"  # worker replies start with this, so library chatter on stdout is ignored

STANDARD_SIZES = {  # (height, width) of the input; issue 10
    "deblur_gan": [(256, 256), (720, 1280)],
    "dgf_deblur": [(256, 256), (720, 1280)],
    "srgan": [(64, 64), (256, 256)],
    "glcic_inpaint": [(256, 256)],
}
PRESETS = {
    "deblur_gan": ["paper", "keras-port"],
    "dgf_deblur": ["keras", "paper"],
    "srgan": ["bubbliiiing", "paper"],
    "glcic_inpaint": ["paper", "tadax"],
}
TRAINABLE = ("deblur_gan", "srgan")  # families whose training step the benchmark builds


# ============================================================================ worker side
def _family_config(family: str, preset: str):
    import importlib

    return importlib.import_module(f"{family}.config").get_config(preset)


def build_generator(family: str, preset: str):
    """The family's generator (GLCIC: the completion network), random weights."""
    config = _family_config(family, preset)
    if family == "glcic_inpaint":
        from glcic_inpaint.model import build_completion_network

        return build_completion_network(config), config
    import importlib

    model = importlib.import_module(f"{family}.model")
    if family == "srgan":
        return model.build_generator(preset=config), config
    return model.build_generator(config), config


def graph_flops(graph) -> int:
    """Multiply-adds x 2 of the convolutions and matmuls in a traced graph (static shapes)."""
    total = 0
    for op in graph.get_operations():
        try:
            if op.type in ("Conv2D", "_FusedConv2D"):
                out, kernel = op.outputs[0].shape, op.inputs[1].shape  # NHWC, (kh, kw, in, out)
                total += 2 * out[0] * out[1] * out[2] * out[3] * kernel[0] * kernel[1] * kernel[2]
            elif op.type == "Conv2DBackpropInput":  # a transposed convolution's forward pass
                kernel, source = op.inputs[1].shape, op.inputs[2].shape
                total += 2 * source[0] * source[1] * source[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
            elif op.type in ("MatMul", "BatchMatMulV2"):
                a, out = op.inputs[0].shape, op.outputs[0].shape
                k = a[-2] if op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x") else a[-1]
                total += 2 * out.num_elements() * k
        except (TypeError, ValueError):  # a dimension unknown at trace time
            continue
    return int(total)


def _setup_tf(spec):
    import keras

    from common.precision import set_precision

    set_precision(spec.get("policy", "float32"))
    return keras


def _case_infer(spec):
    import numpy as np
    import tensorflow as tf

    _setup_tf(spec)
    model, _ = build_generator(spec["family"], spec["preset"])
    if spec.get("fold", True):  # what predict.py runs: BatchNormalization folded into the convs
        from common.folding import fold_batch_norm

        model = fold_batch_norm(model)
    height, width = spec["size"]
    channels = int(model.inputs[0].shape[-1])
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, height, width, channels)).astype("float32"))
    function = tf.function(lambda x: model(x, training=False), jit_compile=spec.get("xla", False))
    from common.layers import NarrowConv2D

    faster = NarrowConv2D._phase_applies
    NarrowConv2D._phase_applies = lambda self: False  # count the network's FLOPs, not the zeros
    try:                                              # the faster formulation multiplies too
        flops = graph_flops(tf.function(lambda x: model(x, training=False)).get_concrete_function(x).graph)
    finally:
        NarrowConv2D._phase_applies = faster
    function(x)  # trace and compile outside the timing
    return (lambda: function(x).numpy()), {"flops": flops}


def _case_train(spec):
    import numpy as np

    _setup_tf(spec)
    family, preset = spec["family"], spec["preset"]
    config = _family_config(family, preset)
    rng = np.random.default_rng(0)
    from common.losses import PerceptualLoss

    if family == "deblur_gan":
        from deblur_gan.gan import DeblurGAN, make_content_loss, make_optimizer
        from deblur_gan.model import build_discriminator
        from deblur_gan.model import build_generator as build_g

        height, width = config.crop or (256, 256)
        gan = DeblurGAN(build_g(config), build_discriminator(config), config,
                        make_content_loss(config, vgg_weights=None), seed=0)
        gan.compile(make_optimizer(config, "g_adam"), make_optimizer(config, "d_adam"),
                    jit_compile=spec.get("xla", False))
        inputs = rng.uniform(-1, 1, (config.batch_size, height, width, 3)).astype("float32")
        targets = rng.uniform(-1, 1, inputs.shape).astype("float32")
    elif family == "srgan":
        from srgan.gan import SRGAN, make_optimizer
        from srgan.model import build_discriminator
        from srgan.model import build_generator as build_g

        content = PerceptualLoss("vgg19", config.vgg_layer, preprocess=config.vgg_preprocess,
                                 feature_scale=config.vgg_feature_scale, distance="mse", weights=None)
        discriminator = build_discriminator(config) if config.stage == "srgan" else None
        gan = SRGAN(build_g(preset=config), discriminator, config=config, content_loss=content, seed=0)
        gan.compile(make_optimizer(config), make_optimizer(config) if discriminator is not None else None,
                    jit_compile=spec.get("xla", False))
        lr = config.hr_crop // config.scale
        inputs = rng.uniform(-1, 1, (config.batch_size, lr, lr, 3)).astype("float32")
        targets = rng.uniform(-1, 1, (config.batch_size, config.hr_crop, config.hr_crop, 3)).astype("float32")
    else:
        raise SystemExit(f"no training step benchmark for {family}")

    if family == "srgan":  # its train_step takes exactly (lr, hr), as fit() hands it over
        import tensorflow as tf

        step = tf.function(gan.train_step, jit_compile=spec.get("xla", False))
        batch = (tf.constant(inputs), tf.constant(targets))

        def once():
            return {k: float(v) for k, v in step(batch).items()}
    else:
        def once():
            return gan.train_on_batch(inputs, targets, return_dict=True)

    once()
    return once, {"batch": int(inputs.shape[0]), "size": list(inputs.shape[1:3])}


def _case_torch(spec):
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch_deblurgan

    torch.manual_seed(0)
    channels_last, bf16 = spec.get("channels_last", False), spec.get("bf16", False)
    height, width = spec.get("size", (256, 256))
    family = spec.get("family", "deblur_gan")
    if spec["what"] == "infer":
        if family == "deblur_gan":  # the paper generator
            run, channels = torch_deblurgan.inference(channels_last=channels_last, bf16=bf16), 3
        else:  # SRGAN, DGF, GLCIC: the same networks as our builders make (torch_generators.py)
            import torch_generators

            run, channels = torch_generators.inference(family, spec.get("preset"), channels_last, bf16,
                                                       fold=spec.get("fold", False))
        x = torch.rand(1, channels, height, width) * 2 - 1
        run(x)
        return (lambda: run(x)), {}
    x = torch.rand(1, 3, height, width) * 2 - 1
    step = torch_deblurgan.PaperStep(channels_last=channels_last, bf16=bf16)
    y = torch.rand(1, 3, height, width) * 2 - 1
    step(x, y)
    return (lambda: step(x, y)), {}


def _case_matmul(spec):
    if spec.get("conv"):  # the generators' main op: 3x3, 256 -> 256 channels, 64x64, batch 4
        import tensorflow as tf

        dtype = tf.bfloat16 if spec["bf16"] else tf.float32
        # variables, so that grappler cannot fold the work into a constant
        x = tf.Variable(tf.cast(tf.random.uniform((4, 66, 66, 256)), dtype))
        kernel = tf.Variable(tf.cast(tf.random.uniform((3, 3, 256, 256)), dtype))
        function = tf.function(lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, kernel, 1, "VALID")[:, :1, :1], tf.float32)))
        function()
        return (lambda: function().numpy()), {"flops": 2 * 4 * 64 * 64 * 9 * 256 * 256}
    n = 4096
    if spec.get("torch"):
        import torch

        dtype = torch.bfloat16 if spec["bf16"] else torch.float32
        a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
        return (lambda: torch.mm(a, b)), {"flops": 2 * n ** 3}
    import tensorflow as tf

    dtype = tf.bfloat16 if spec["bf16"] else tf.float32
    a, b = (tf.Variable(tf.cast(tf.random.uniform((n, n)), dtype)) for _ in range(2))
    function = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    function()
    return (lambda: function().numpy()), {"flops": 2 * n ** 3}


def _case_retrace(spec):
    import numpy as np

    _setup_tf(spec)
    from common import inference

    model, config = build_generator("deblur_gan", "paper") if not spec.get("tiny") else (None, None)
    if model is None:
        from deblur_gan.model import build_generator as build_g

        model = build_g("paper", ngf=4, n_blocks=1)
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(40, 200)), int(rng.integers(40, 200))) for _ in range(20)]

    def once():
        for h, w in sizes:
            inference.restore_array(model, rng.uniform(-1, 1, (h, w, 3)).astype("float32"), tile=0)
        return None

    start = time.perf_counter()
    once()
    seconds = time.perf_counter() - start
    traces = sum(f.experimental_get_tracing_count() for f in inference._GRAPH_CACHE[model].values())
    return None, {"images": len(sizes), "traces": traces, "seconds": round(seconds, 2)}


def _case_photo(spec):
    """predict.py's path with default flags: the family's run() with tile=None (automatic)."""
    import numpy as np

    _setup_tf(spec)
    from common import tiling
    from common.weights import Loaded

    family = spec["family"]
    model, config = build_generator(family, spec["preset"])
    height, width = spec["size"]
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    import importlib

    if family == "glcic_inpaint":
        from glcic_inpaint.model import build_inpainter

        model = build_inpainter(model, config, config.mean_color or (0.5, 0.5, 0.5))
    inference = importlib.import_module(f"{family}.inference")
    loaded = Loaded(model, config, None, "random weights")
    options = {}
    if family == "glcic_inpaint":  # predict.py without --masks: 2-4 random holes of 32-128 px
        from glcic_inpaint.predict import random_mask

        options["mask"] = random_mask(image.shape, 0, 0)
    chosen = None
    if family != "glcic_inpaint":  # record the tile restore_array picks inside run()
        pick = tiling.auto_tile

        def recording_auto_tile(*args, **kwargs):
            nonlocal chosen
            chosen = pick(*args, **kwargs)
            return chosen

        tiling.auto_tile = recording_auto_tile
    else:  # record the crops run() plans around the holes (glcic_inpaint/regions.py)
        plan = inference.plan_tiles

        def recording_plan(*args, **kwargs):
            nonlocal chosen
            crops = plan(*args, **kwargs)
            chosen = f"{len(crops)} crop(s), largest {max([c.crop_pixels for c in crops], default=0) / 1e6:.2f} MP"
            return crops

        inference.plan_tiles = recording_plan
    start = time.perf_counter()
    out = inference.run(loaded, image, **options)
    seconds = time.perf_counter() - start
    import tempfile

    from common.image_io import write_image

    with tempfile.TemporaryDirectory() as folder:  # and the PNG predict.py writes (Pillow copies it)
        start = time.perf_counter()
        write_image(Path(folder) / "photo.png", out)
        write_seconds = time.perf_counter() - start
    return None, {"seconds": round(seconds, 1), "write_s": round(write_seconds, 1), "tile": chosen,
                  "shape": list(out.shape)}


def _psnr(a, b, peak: float = 2.0) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else round(10 * np.log10(peak ** 2 / mse), 1)


def _case_seams(spec):
    """PSNR of tiled vs whole-image output (random weights, a smooth random picture). For DeblurGAN
    the learned part before the global residual is compared (the residual would hide it)."""
    import keras
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from common.inference import restore_array

    _setup_tf(spec)
    family = spec["family"]
    if family == "glcic_inpaint":
        return None, _glcic_seams(spec)
    model, config = build_generator(family, spec["preset"])
    if family == "deblur_gan":
        model = keras.Model(model.input, model.get_layer("tanh").output)
    from common.folding import fold_batch_norm

    model = fold_batch_norm(model)  # what predict.py runs
    height, width = spec["size"]
    noise = np.random.default_rng(0).uniform(-1, 1, (height, width, 3))
    image = np.clip(3 * gaussian_filter(noise, (3, 3, 0)), -1, 1).astype("float32")
    multiple = 4 if family in ("deblur_gan", "glcic_inpaint") else 1
    scale = getattr(config, "scale", 1)
    whole = restore_array(model, image, multiple=multiple, scale=scale, tile=0)
    tiled = restore_array(model, image, multiple=multiple, scale=scale, tile=spec["tile"],
                          overlap=spec.get("overlap", 32))
    return None, {"psnr_db": _psnr(whole, tiled), "tile": spec["tile"], "overlap": spec.get("overlap", 32)}


def _glcic_seams(spec) -> dict:
    """GLCIC: PSNR inside predict.py's random holes of the default run (one crop around the holes)
    and of ``tile`` x ``tile`` output tiles against the whole image (``--tile 0``); random weights
    whose output varies (``regions.varied_weights``), a smooth random picture."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from glcic_inpaint import inference, regions
    from glcic_inpaint.model import build_inpainter
    from glcic_inpaint.predict import random_mask

    network, config = build_generator("glcic_inpaint", spec["preset"])
    from common.folding import fold_batch_norm

    model = fold_batch_norm(build_inpainter(regions.varied_weights(network), config,
                                            config.mean_color or (0.5, 0.5, 0.5)))  # what predict.py runs
    height, width = spec["size"]
    noise = np.random.default_rng(0).uniform(0, 1, (height, width, 3))
    image = np.round(255 * np.clip(0.5 + 3 * gaussian_filter(noise - 0.5, (3, 3, 0)), 0, 1)).astype(np.uint8)
    mask = random_mask(image.shape, 0, 0)
    hole = mask.reshape(height, width) > 0.5

    def holes(tile):
        out = np.zeros((height, width, 3), np.float32)
        for (top, left, bottom, right), values in inference.complete_regions(model, image, mask, config, tile):
            out[top:bottom, left:right] = values
        return out[hole]

    whole = holes(0)
    peak = 2.0 if config.value_range == "signed" else 1.0
    return {"psnr_db": _psnr(whole, holes(spec["tile"]), peak), "default_psnr_db": _psnr(whole, holes(None), peak),
            "tile": spec["tile"], "hole_pixels": int(hole.sum()), "output_std": round(float(whole.std()), 3)}


def _case_agreement(spec):
    """PSNR of the DeblurGAN paper generator's mixed_bfloat16 output against its float32 output,
    same random weights (instance norm keeps the learned part of order 1: std ~0.6), a smooth random
    256x256 picture: the whole output and the learned part before the global residual."""
    import keras
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from deblur_gan.model import build_generator as build_g

    noise = np.random.default_rng(0).uniform(-1, 1, (1, 256, 256, 3))
    image = np.clip(3 * gaussian_filter(noise, (0, 3, 3, 0)), -1, 1).astype("float32")
    outputs, weights = {}, None
    for policy in ("float32", spec.get("policy", "mixed_bfloat16")):
        keras.config.set_dtype_policy(policy)
        model = build_g("paper")
        weights = model.get_weights() if weights is None else weights
        model.set_weights(weights)
        learned = keras.Model(model.input, [model.output, model.get_layer("tanh").output])
        outputs[policy] = [np.asarray(t) for t in learned(image, training=False)]
    (full32, part32), (full16, part16) = outputs.values()
    return None, {"psnr_output_db": _psnr(full16, full32), "psnr_learned_part_db": _psnr(part16, part32)}


def _case_pipeline(spec):
    """Training batches per second of the DeblurGAN input pipeline (bundled sample pairs)."""
    from common.sample_data import sample_dir
    from deblur_gan.data import training_dataset, training_pairs

    config = _family_config("deblur_gan", spec.get("preset", "paper"))
    source = training_pairs(sample_dir("blurred_pairs"), config, "degraded_left")
    iterator = iter(training_dataset(source, config))
    for _ in range(5):
        next(iterator)
    return (lambda: next(iterator)), {"pairs": len(source)}


CASES = {"agreement": _case_agreement, "seams": _case_seams, "pipeline": _case_pipeline, "infer": _case_infer, "train": _case_train, "torch": _case_torch, "matmul": _case_matmul,
         "retrace": _case_retrace, "photo": _case_photo}


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def worker(spec_text: str) -> None:
    """Set the case up, then answer ``run N`` (times of N repetitions) and ``quit`` on stdin."""
    sys.path.insert(0, str(ROOT))
    spec = json.loads(spec_text)
    os.environ.update({k: str(v) for k, v in spec.get("env", {}).items()})  # before TF / torch load
    start = time.perf_counter()
    once, info = CASES[spec["kind"]](spec)
    info["setup_s"] = round(time.perf_counter() - start, 1)
    info["peak_mb"] = round(_peak_rss_mb())
    print(MARK + json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        times = []
        for _ in range(int(command[1])):
            begin = time.perf_counter()
            once()
            times.append(time.perf_counter() - begin)
        print(MARK + json.dumps({"times": times, "peak_mb": round(_peak_rss_mb())}), flush=True)


# ============================================================================ parent side
class Worker:
    def __init__(self, name: str, spec: dict, log):
        self.name, self.spec, self.times, self.info = name, spec, [], {}
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                        text=True, env=env)

    def _reply(self) -> dict | None:
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        return None

    def ready(self) -> bool:
        info = self._reply()
        if info is None:
            self.info = {"error": f"worker failed (exit {self.process.wait()}); see the log"}
            return False
        self.info = info
        return True

    def run(self, reps: int = 1) -> None:
        self.process.stdin.write(f"run {reps}\n")
        self.process.stdin.flush()
        reply = self._reply()
        if reply is None:
            self.info["error"] = f"worker failed (exit {self.process.wait()})"
            return
        self.times += reply["times"]
        self.info["peak_mb"] = reply["peak_mb"]

    def close(self) -> dict:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass
            self.process.wait()
        result = {"name": self.name, **self.spec, **self.info}
        if self.times:
            result["median_ms"] = round(1000 * statistics.median(self.times), 1)
            result["min_ms"] = round(1000 * min(self.times), 1)
            result["reps"] = len(self.times)
        return result


def compare(cases: dict[str, dict], reps: int, log, warmup: int = 1) -> list[dict]:
    """Start the workers (together), then time them in turns: ``reps`` rounds of one repetition
    each. A worker waits idle on its stdin while the others run."""
    workers = []
    for worker_ in [Worker(name, spec, log) for name, spec in cases.items()]:
        if worker_.ready():
            workers.append(worker_)
        else:
            print(f"  {worker_.name}: {worker_.info['error']}", flush=True)
    for worker_ in workers:
        for _ in range(warmup):
            worker_.run(1)
        worker_.times.clear()
    for _ in range(reps):
        for worker_ in workers:
            if "error" not in worker_.info:
                worker_.run(1)
    return [w.close() for w in workers]


def one_shot(name: str, spec: dict, log) -> dict:
    worker_ = Worker(name, spec, log)
    worker_.ready()
    return worker_.close()


def _torch_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except ValueError:
        return False


def _gpu() -> bool:
    return Path("/proc/driver/nvidia/version").exists()


def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        features = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in flags]
    except OSError:
        features = []
    return {"cpu": model, "cores": os.cpu_count(), "features": features, "load_avg": list(os.getloadavg()),
            "python": platform.python_version(), "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def policies() -> list[str]:
    return ["float32", "mixed_bfloat16"] + (["mixed_float16"] if _gpu() else [])


AUTO_POLICY = "mixed_float16" if Path("/proc/driver/nvidia/version").exists() else None  # set in main()


BN_FOLDED = "bf16 channels-last bn-folded"


def _torch_cases(what: str, network: dict | None = None, float32_channels_last: bool = True) -> dict:
    """PyTorch contenders: float32, bf16 autocast, bf16 autocast channels-last (and float32
    channels-last). ``network``: family / preset / size of the generator (default: DeblurGAN paper)."""
    variants = {"pytorch float32": {}, "pytorch bf16": {"bf16": True},
                "pytorch bf16 channels-last": {"bf16": True, "channels_last": True}}
    if what == "infer" and float32_channels_last:
        variants["pytorch float32 channels-last"] = {"channels_last": True}
    if what == "infer" and network and network.get("family") != "deblur_gan":
        # PyTorch with BatchNorm2d folded into the convs too, as ours is (eager PyTorch does not fold)
        variants[f"pytorch {BN_FOLDED}"] = {"bf16": True, "channels_last": True, "fold": True}
    return {name: {"kind": "torch", "what": what, **(network or {}), **options} for name, options in variants.items()}


def _ratios(rows: list[dict], ours_name: str | None = None,
            policy: str | None = None, label: str = "the --precision auto choice") -> None:
    """Print and record ours (default --precision auto; row ``ours_name``, default ``ours <policy>``)
    against PyTorch's float32 and its best: PyTorch's median / ours, above 1 when ours is faster."""
    policy = policy or AUTO_POLICY
    timed = {r["name"]: r["median_ms"] for r in rows if r.get("median_ms")}
    ours = timed.get(ours_name or f"ours {policy}")
    # PyTorch as users run it (eager, no folding); its BN-folded variant is reported on its own
    torch_rows = {k: v for k, v in timed.items() if k.startswith("pytorch") and not k.endswith(BN_FOLDED)}
    if not ours or not torch_rows:
        return
    best = min(torch_rows, key=torch_rows.get)
    summary = {"ours_policy": policy, "ours_ms": ours, "pytorch_best": best,
               "pytorch_best_ms": torch_rows[best], "speedup_vs_best": round(torch_rows[best] / ours, 2)}
    if "pytorch float32" in torch_rows:
        summary["speedup_vs_float32"] = round(torch_rows["pytorch float32"] / ours, 2)
    folded = timed.get(f"pytorch {BN_FOLDED}")
    if folded:
        summary["speedup_vs_bn_folded"] = round(folded / ours, 2)
    rows.append({"name": "summary", **summary})
    print(f"  ours ({policy}, {label}) vs PyTorch: {summary['speedup_vs_best']}x "
          f"faster than its best ({best}), {summary.get('speedup_vs_float32')}x than its float32"
          + (f", {summary['speedup_vs_bn_folded']}x than its {BN_FOLDED}" if folded else ""))


def _print_rows(rows: list[dict], peak: dict | None) -> None:
    for row in rows:
        if "error" in row:
            print(f"  {row['name']:<44} {row['error']}")
            continue
        text = f"  {row['name']:<44} {row.get('median_ms', '-'):>9} ms  (min {row.get('min_ms', '-')}, " \
               f"n={row.get('reps', 0)})  peak {row.get('peak_mb')} MB"
        if row.get("flops") and row.get("median_ms") and peak:
            rate = row["flops"] / (row["median_ms"] / 1000) / 1e9
            best = peak["bf16"] if row.get("policy") == "mixed_bfloat16" else peak["f32"]
            row["gflops_per_s"] = round(rate, 1)
            row["fraction_of_peak"] = round(rate / best, 3)
            text += f"  {row['flops'] / 1e9:.1f} GFLOP, {rate:.0f} GFLOP/s = {100 * rate / best:.0f}% of peak"
        print(text, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="DeblurGAN paper generator and training step vs PyTorch, the other families' default "
                             "generators at their first size vs PyTorch, peak, retracing")
    parser.add_argument("--family", choices=sorted(STANDARD_SIZES), help="only this family")
    parser.add_argument("--json", help="write every result to this JSON file")
    parser.add_argument("--reps", type=int, help="timed rounds per comparison (default 7, --quick 5)")
    parser.add_argument("--photo", action="store_true",
                        help="only: peak memory of default-flag inference on a 4032x3024 photo per family")
    parser.add_argument("--photo-size", default="3024x4032", metavar="HxW",
                        help="with --photo: the photo's height x width (default 3024x4032)")
    parser.add_argument("--photo-precision", default="auto", choices=("auto", "float32", "mixed_bfloat16"),
                        help="with --photo: predict.py's --precision (default auto: what predict.py picks "
                             "for each family on this machine)")
    parser.add_argument("--seams", action="store_true",
                        help="only: tiled vs whole-image output (PSNR) per family and preset")
    parser.add_argument("--inference-only", action="store_true",
                        help="only the per-family generator timings, with PyTorch's at each first size "
                             "(no training, seams)")
    parser.add_argument("--small", action="store_true",
                        help="with --inference-only: each family's default preset at its first size")
    parser.add_argument("--smoke", action="store_true",
                        help="check the code paths only: one timed round, family generators on 16-32 px "
                             "inputs (figures meaningless)")
    parser.add_argument("--log", default=os.devnull, help="workers' stderr goes here")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0

    global AUTO_POLICY
    from common.precision import cpu_has_fast_bfloat16

    if AUTO_POLICY is None:  # resolve_precision("auto") without importing TensorFlow here
        AUTO_POLICY = "mixed_bfloat16" if cpu_has_fast_bfloat16() else "float32"
    reps = args.reps or (5 if args.quick else 7)
    results: dict = {"machine": machine(), "comparisons": {}}
    print(f"machine: {results['machine']}", flush=True)
    log = open(args.log, "a")
    families = [args.family] if args.family else list(STANDARD_SIZES)
    torch_ok = _torch_available()

    def section(title: str, cases: dict, n: int = reps) -> list[dict]:
        print(f"\n{title}", flush=True)
        rows = compare(cases, 1 if args.smoke else n, log)
        _print_rows(rows, results.get("peak"))
        results["comparisons"][title] = rows
        return rows

    if args.seams:
        _seams(families, results, log)
        return _finish(results, args.json)
    if args.photo:
        size = [int(side) for side in args.photo_size.lower().split("x")]
        print(f"\npredict with default flags on a {size[1]}x{size[0]} photo (automatic tile)")
        rows = []
        from common.precision import resolve_inference_precision

        for family in families:
            policy = resolve_inference_precision(args.photo_precision, family)
            row = one_shot(family, {"kind": "photo", "family": family, "preset": PRESETS[family][0],
                                    "size": size, "policy": policy}, log)
            row["policy"] = policy
            print(f"  {family:<16} {row}", flush=True)
            rows.append(row)
        results["photo"] = rows
        return _finish(results, args.json)

    # the machine's peak: best of TF and PyTorch 4096^3 matmuls
    peak_cases = {f"matmul tf {d}": {"kind": "matmul", "bf16": d == "bf16"} for d in ("f32", "bf16")}
    peak_cases.update({f"conv3x3 tf {d}": {"kind": "matmul", "conv": True, "bf16": d == "bf16"}
                       for d in ("f32", "bf16")})
    if torch_ok:
        peak_cases.update({f"matmul torch {d}": {"kind": "matmul", "torch": True, "bf16": d == "bf16"}
                           for d in ("f32", "bf16")})
    if not args.smoke:  # (--smoke: no peak, no fraction of it)
        rows = section("machine peak (4096^3 matmul, 3x3 conv)", peak_cases, max(3, reps // 2))
        rates = {r["name"]: r["flops"] / (r["median_ms"] / 1000) / 1e9 for r in rows if r.get("median_ms")}
        results["peak"] = {d: round(max([v for k, v in rates.items() if k.endswith(d)] or [1.0]), 1)
                           for d in ("f32", "bf16")}
        print(f"  peak GFLOP/s: {results['peak']}")

    if "deblur_gan" in families and not args.inference_only:
        cases = {f"ours {p}{' xla' if x else ''}": {"kind": "infer", "family": "deblur_gan", "preset": "paper",
                                                   "size": [256, 256], "policy": p, "xla": x}
                 for p in policies() for x in (False, True) if not (args.quick and x)}
        if torch_ok:
            cases.update(_torch_cases("infer"))
        _ratios(section("DeblurGAN paper generator, 256x256, batch 1", cases))
        results["agreement"] = one_shot("agreement", {"kind": "agreement", "policy": AUTO_POLICY}, log)
        print(f"  {AUTO_POLICY} vs float32 output, PSNR: {results['agreement'].get('psnr_output_db')} dB "
              f"(learned part before the global residual: {results['agreement'].get('psnr_learned_part_db')} dB)"
              f"{results['agreement'].get('error', '')}", flush=True)
        cases = {f"ours {p}": {"kind": "train", "family": "deblur_gan", "preset": "paper", "policy": p}
                 for p in policies()}
        if torch_ok:
            cases.update({k: v for k, v in _torch_cases("train").items()
                          if not args.quick or k == "pytorch float32"})  # bf16 steps took 2-3x longer
        _ratios(section("DeblurGAN paper training step (5 critic + 1 generator update), batch 1, 256x256",
                        cases, max(3, reps // 2)))
        rows = section("DeblurGAN paper input pipeline (bundled sample pairs, 256x256 crops)",
                       {"pipeline batches": {"kind": "pipeline"}}, 20)
        train_rows = [r for r in results["comparisons"][list(results["comparisons"])[-2]]
                      if r["name"] == f"ours {AUTO_POLICY}" and r.get("median_ms")]
        if rows and rows[0].get("median_ms") and train_rows:
            factor = train_rows[0]["median_ms"] / rows[0]["median_ms"]
            results["pipeline_vs_step"] = round(factor, 1)
            print(f"  pipeline: {1000 / rows[0]['median_ms']:.1f} batches/s; a training step "
                  f"({AUTO_POLICY}) takes {1000 / train_rows[0]['median_ms']:.2f} batches/s: {factor:.0f}x")
    if args.inference_only:
        _family_timings(families, reps, section, skip_deblurgan_256=False, small=args.small, torch_ok=torch_ok,
                        smoke=args.smoke)
        return _finish(results, args.json)
    if args.quick:  # the other generators vs PyTorch: default preset, first standard size
        _family_timings([f for f in families if f != "deblur_gan"], reps, section, skip_deblurgan_256=True,
                        small=True, torch_ok=torch_ok, smoke=args.smoke)
    print("\nretracing: 20 images of mixed sizes through common.inference", flush=True)
    results["retrace"] = one_shot("retrace", {"kind": "retrace", "tiny": True}, log)
    print(f"  {results['retrace'].get('traces')} traces for {results['retrace'].get('images')} images")
    if args.quick:
        return _finish(results, args.json)

    _seams(families, results, log)
    _family_timings(families, reps, section, skip_deblurgan_256=True, train=True, torch_ok=torch_ok)
    return _finish(results, args.json)


def _seams(families, results: dict, log) -> None:
    """Tiled vs whole image, PSNR, for every family and preset, in the precision predict.py's
    --precision auto picks (the network it runs: folded); instance-norm networks (DeblurGAN paper,
    tiled with the whole image's statistics) in float32 too."""
    from common.precision import resolve_inference_precision

    print("\ntiled vs whole image, PSNR", flush=True)
    results["seams"] = []
    for family in families:
        for preset in PRESETS[family]:
            # DGF whole at 720x1280 needs over 10 GB (README): a quarter of it, with a 256 tile;
            # GLCIC: output tiles around the holes, in the holes
            size = {"srgan": [180, 320], "dgf_deblur": [360, 640]}.get(family, [720, 1280])
            tile = {"srgan": 128, "dgf_deblur": 256, "glcic_inpaint": 64}.get(family, 512)
            policy = resolve_inference_precision("auto", family)
            policies = [policy] + (["float32"] if (family, preset) == ("deblur_gan", "paper") and policy != "float32"
                                   else [])
            for policy in policies:
                row = one_shot(f"{family} {preset}", {"kind": "seams", "family": family, "preset": preset,
                                                      "size": size, "tile": tile, "policy": policy}, log)
                print(f"  {family} {preset} {size[0]}x{size[1]} tile {row.get('tile')} {policy}: "
                      f"{row.get('psnr_db')} dB {row.get('error', '')}", flush=True)
                results["seams"].append(row)


SMOKE_SIZES = {"srgan": (16, 16)}  # --smoke: tiny inputs (the others 32x32) to check the code paths


def _family_timings(families, reps, section, skip_deblurgan_256: bool, train: bool = False,
                    small: bool = False, torch_ok: bool = False, smoke: bool = False) -> None:
    """Each family's generators at the standard sizes (and training steps), float32 vs mixed; with
    ``torch_ok`` also the same network in PyTorch (benchmarks/torch_generators.py; for DeblurGAN the
    paper preset) at the family's first standard size (the larger ones take minutes and, DGF at
    720x1280, over 10 GB per process), timed in turns with ours."""
    for family in families:
        for preset in PRESETS[family][:1] if small else PRESETS[family]:
            sizes = STANDARD_SIZES[family][:1] if small else STANDARD_SIZES[family]
            for index, (height, width) in enumerate([SMOKE_SIZES.get(family, (32, 32))] if smoke else sizes):
                if skip_deblurgan_256 and family == "deblur_gan" and preset == "paper" and height == 256:
                    continue  # compared with PyTorch above
                name = f"{family} {preset} {height}x{width}"
                cases = {f"{name} {p}{' xla' if x else ''}":
                         {"kind": "infer", "family": family, "preset": preset, "size": [height, width],
                          "policy": p, "xla": x}
                         for p in policies() for x in ((False, True) if _gpu() else (False,))}
                twin = torch_ok and index == 0 and (family != "deblur_gan" or preset == "paper")
                if twin:
                    cases.update(_torch_cases("infer", {"family": family, "preset": preset, "size": [height, width]},
                                              float32_channels_last=False))
                rows = section(f"{family} {preset} generator, {height}x{width}", cases, max(3, reps // 2))
                if twin:
                    # predict.py's auto stays float32 for some families (common.precision)
                    from common.precision import INFERENCE_FLOAT32_FAMILIES

                    if family in INFERENCE_FLOAT32_FAMILIES:
                        _ratios(rows, f"{name} float32", "float32",
                                "what predict.py's --precision auto runs for this family")
                        _ratios(rows, f"{name} {AUTO_POLICY}", AUTO_POLICY,
                                f"with --precision {AUTO_POLICY}")
                    else:
                        _ratios(rows, f"{name} {AUTO_POLICY}")
            if train and family in TRAINABLE and not (family == "deblur_gan" and preset == "paper"):
                cases = {f"{family} {preset} train {p}": {"kind": "train", "family": family, "preset": preset,
                                                          "policy": p} for p in policies()}
                section(f"{family} {preset} training step", cases, 3)


def _finish(results: dict, path: str | None) -> int:
    if path:
        Path(path).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
