"""Where one DeblurGAN ``paper`` training step spends its time (issue 10).

    python benchmarks/deblurgan_step_profile.py ops  [--steps 2] [--top 40]   # TF profiler op stats
    python benchmarks/deblurgan_step_profile.py parts [--rounds 5]            # sub-parts timed in turns

``ops`` traces ``--steps`` compiled training steps with ``tf.profiler`` and prints the self time
by part of the step (G forward / backward, critic loop, VGG, optimizers), by op type, and the
heaviest ops. ``parts`` times pieces of the step in isolation, in turns (one repetition of each per
round, medians), and prints each one's share of the full step: G forward + backward, one critic
update (with its gradient penalty), the penalty alone, the VGG content loss forward + backward, the
critic forward + backward on the generator's output, the two optimizers' applies; and G forward +
backward and a critic update traced with the instance norm as separate ops (the path 16-bit
training took before the fused kernel served it). 256x256, batch 1, random VGG,
``--precision`` (default auto). On a shared machine compare shares and ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(precision: str, size: int):
    """The paper step's model (random VGG19), compiled, and one (blurred, sharp) pair; the modules
    come from ``sys.path`` (benchmarks/ab_train_step.py builds another checkout's step with it)."""
    import numpy as np
    import tensorflow as tf

    from common.precision import set_precision

    policy = set_precision(precision)
    from deblur_gan.config import get_config
    from deblur_gan.gan import DeblurGAN, make_content_loss, make_optimizer
    from deblur_gan.model import build_discriminator, build_generator

    config = get_config("paper", crop=(size, size))
    gan = DeblurGAN(build_generator(config), build_discriminator(config), config,
                    make_content_loss(config, vgg_weights=None), seed=0)
    gan.compile(make_optimizer(config, "g_adam"), make_optimizer(config, "d_adam"))
    rng = np.random.default_rng(0)
    blurred = tf.constant(rng.uniform(-1, 1, (1, size, size, 3)).astype("float32"))
    sharp = tf.constant(rng.uniform(-1, 1, (1, size, size, 3)).astype("float32"))
    return policy, gan, blurred, sharp


def ops(args):
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    if args.logdir:  # analyse an earlier trace again
        logdir, policy, elapsed = args.logdir, args.precision, float("nan")
    else:
        policy, gan, blurred, sharp = build(args.precision, args.size)
        step = tf.function(gan.train_step)
        step((blurred, sharp))
        step((blurred, sharp))
        logdir = tempfile.mkdtemp(prefix="deblurgan_profile_")
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            [float(v) for v in step((blurred, sharp)).values()]
        elapsed = time.perf_counter() - start
        tf.profiler.experimental.stop()
        print(f"trace in {logdir}")
    paths = [str(p) for p in Path(logdir).rglob("*.xplane.pb")]
    data, _ = plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
    print(f"policy {policy}: {args.steps} steps in {elapsed:.2f} s ({elapsed / args.steps:.2f} s/step, profiled)")
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    rows = [{col: (cell or {}).get("v") for col, cell in zip(columns, row["c"])} for row in table["rows"]]
    total = sum(r["total_self_time"] for r in rows)

    def report(title, key, top):
        sums: dict[str, float] = {}
        for r in rows:
            sums[key(r)] = sums.get(key(r), 0.0) + r["total_self_time"]
        print(f"\n{title} (self time, {total / 1e3 / args.steps:.0f} ms per step in all):")
        for name, t in sorted(sums.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {100 * t / total:5.1f}%  {t / 1e3 / args.steps:8.1f} ms  {name}")

    report("by part of the step", _area, 20)
    report("by op type", lambda r: r["type"], args.top)
    report("by part and op type", lambda r: f"{_area(r):28s} {r['type']}", args.top)
    print("\nheaviest ops (self time per step):")
    for r in sorted(rows, key=lambda r: -r["total_self_time"])[:args.top]:
        print(f"  {100 * r['total_self_time'] / total:5.1f}%  {r['total_self_time'] / 1e3 / args.steps:8.1f} ms "
              f"x{r['occurrences'] / args.steps:<4g} {r['type']:32s} {r['operation'][-80:]}")


def _area(row) -> str:
    """Which part of the step an op belongs to, from its name."""
    name = row["operation"]
    if "adam" in name:
        return "optimizer (" + ("G" if "g_adam" in name else "D") + ")"
    loop = name.startswith("while/")
    if "vgg19" in name:
        return "VGG content loss"
    if loop and "gradient_tape/while/gradient_tape" in name:
        return "critic loop: GP 2nd-order bwd"
    if loop and "gradient_tape" in name.split("/")[1:] and "/gradient_tape/" in name[len("while/"):]:
        return "critic loop: backward"
    if loop and "gradient_tape" in name:
        return "critic loop: GP/backward"
    if loop:
        return "critic loop: forward/other"
    if "deblurgan_generator" in name:
        return "G " + ("backward" if "gradient_tape" in name else "forward")
    if "deblurgan_discriminator" in name:
        return "critic in G step " + ("backward" if "gradient_tape" in name else "forward")
    return "other"


def parts(args):
    import tensorflow as tf

    policy, gan, blurred, sharp = build(args.precision, args.size)
    g, d = gan.generator, gan.discriminator
    fake = tf.stop_gradient(g(blurred, training=True))

    @tf.function
    def full():
        return gan.train_step((blurred, sharp))

    @tf.function
    def g_forward():
        return tf.reduce_sum(g(blurred, training=True))

    @tf.function
    def g_fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(g(blurred, training=True))
        return tape.gradient(loss, g.trainable_variables)

    @tf.function
    def critic_update():
        return gan._critic_update_official(sharp, fake)

    @tf.function
    def critic_fwd_bwd_no_gp():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(d(fake, training=True)) - tf.reduce_mean(d(sharp, training=True))
        return tape.gradient(loss, d.trainable_variables)

    @tf.function
    def penalty_fwd_bwd():
        with tf.GradientTape() as tape:
            loss = gan._penalty(sharp, fake)
        return tape.gradient(loss, d.trainable_variables)

    @tf.function
    def content_fwd_bwd():
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = gan.content_loss(sharp, fake)
        return tape.gradient(loss, fake)

    @tf.function
    def critic_on_fake_input_grad():
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = tf.reduce_mean(d(fake, training=True))
        return tape.gradient(loss, fake)

    g_grads = [tf.zeros_like(v) for v in g.trainable_variables]
    d_grads = [tf.zeros_like(v) for v in d.trainable_variables]

    @tf.function
    def g_apply():
        gan.g_optimizer.apply(g_grads, g.trainable_variables)

    @tf.function
    def d_apply():
        gan.d_optimizer.apply(d_grads, d.trainable_variables)

    from common.layers import ExactGroupNormalization

    fused_applies = ExactGroupNormalization._fused_applies
    ExactGroupNormalization._fused_applies = lambda self, inputs: False  # trace with the plain ops
    try:
        g_fwd_bwd_plain_norm = tf.function(g_fwd_bwd.python_function, autograph=False).get_concrete_function()
        critic_update_plain_norm = tf.function(critic_update.python_function,
                                               autograph=False).get_concrete_function()
    finally:
        ExactGroupNormalization._fused_applies = fused_applies

    cases = {"full step": full, "G forward": g_forward, "G fwd+bwd": g_fwd_bwd,
             "G fwd+bwd, instance norm as separate ops": g_fwd_bwd_plain_norm,
             "critic update (x5 in a step)": critic_update,
             "critic update, instance norm as separate ops": critic_update_plain_norm, "  critic fwd+bwd real+fake, no GP": critic_fwd_bwd_no_gp,
             "  GP fwd + double backprop": penalty_fwd_bwd, "VGG content fwd+bwd": content_fwd_bwd,
             "critic fwd+input grad on fake": critic_on_fake_input_grad, "G Adam apply": g_apply,
             "D Adam apply": d_apply}
    if args.only:
        cases = {k: v for k, v in cases.items() if k == "full step" or any(o in k for o in args.only)}
    times = {name: [] for name in cases}

    def run(fn):
        out = fn()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)

    for fn in cases.values():
        run(fn)
    for _ in range(args.rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            run(fn)
            times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["full step"])
    print(f"policy {policy}, {args.size}x{args.size}, {args.rounds} rounds, medians:")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:40s} {1000 * m:8.1f} ms  {100 * m / ref:5.1f}% of the step")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("ops", "parts"))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--logdir", help="ops: analyse this earlier trace instead of running steps")
    parser.add_argument("--only", nargs="*", help="parts whose names contain one of these (plus the full step)")
    args = parser.parse_args()
    {"ops": ops, "parts": parts}[args.mode](args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
