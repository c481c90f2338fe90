"""The flags every script shares, config overrides, run lookup, and clean error exits."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from common.errors import TrainingInterrupted, UserError, first_line

RUNS_ROOT = Path("runs")


def run_cli(main, argv=None) -> None:
    """Call ``main(argv)``; a :class:`UserError` becomes one ``error:`` line and exit status 2.

    A training run stopped by Ctrl-C / SIGTERM exits with 130 / 143 after saving its checkpoint.
    """
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 only the kinds _environment_error names
        line = _environment_error(err)
        if line is None or os.environ.get("GAN_RESTORATION_DEBUG"):
            raise
        print(f"error: {line} (GAN_RESTORATION_DEBUG=1 shows where)", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as stop:
        print(str(stop), file=sys.stderr)
        sys.exit(143 if stop.signal_name == "SIGTERM" else 130)
    sys.exit(code or 0)


def _environment_error(err: BaseException) -> str | None:
    """One line for a file, disk or memory problem our code did not name (an h5py error, a full
    disk, out of memory); None for anything else (a bug keeps its traceback)."""
    tf = sys.modules.get("tensorflow")
    first = first_line(err, 300)
    if isinstance(err, MemoryError) or (tf is not None and isinstance(err, tf.errors.ResourceExhaustedError)):
        return "out of memory; lower --batch-size, or pass --tile to process images in tiles"
    if isinstance(err, OSError):
        return f"{first}; check the file, its permissions and the free disk space"
    return None


# ----------------------------------------------------------------------------- parsers
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for flags whose value comes from the preset (default None)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _formatter(prog):
    return _HelpFormatter(prog, max_help_position=32)


class _DeterministicAction(argparse.Action):
    """``--deterministic``: turn op determinism on as soon as the flag is parsed, before any op runs."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from common import determinism

        determinism.enable()
        setattr(namespace, self.dest, True)


def train_parser(family: str, presets, default_preset: str, description: str,
                 perceptual: bool = True) -> argparse.ArgumentParser:
    """Flags of every train.py. Flags left unset keep the preset's value."""
    p = argparse.ArgumentParser(prog=f"python {family}/train.py", description=description,
                                formatter_class=_formatter)
    p.add_argument("--data", help="training data (see README); the bundled sample set when absent")
    p.add_argument("--out", help=f"run directory (default: runs/{family}/<preset>); rerun to resume")
    p.add_argument("--preset", default=default_preset, choices=sorted(presets), help="recipe")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--steps-per-epoch", type=int, help="training steps per epoch")
    p.add_argument("--batch-size", type=int, help="global batch size (split over replicas)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, help="seed of data order, crops and the train step's RNG")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (and at the end)")
    p.add_argument("--precision", default="auto",
                   choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                   help="auto: mixed_float16 on GPU, mixed_bfloat16 on CPUs with bf16 units, else float32")
    p.add_argument("--strategy", default="auto", choices=("auto", "none", "mirrored", "multiworker"),
                   help="tf.distribute strategy; auto = MirroredStrategy when there are several GPUs")
    p.add_argument("--no-progress", action="store_true",
                   help="plain log lines instead of the progress bar (automatic when the output "
                        "is not a terminal)")
    p.add_argument("--log-every", type=int, default=100,
                   help="steps between log lines (step, losses, steps/s, ETA) and TensorBoard points")
    p.add_argument("--max-bad-images", type=int,
                   help="unreadable training images to skip before stopping (default: 1%% of the "
                        "data, at least 10)")
    p.add_argument("--deterministic", action=_DeterministicAction,
                   help="bitwise-reproducible runs: TensorFlow op determinism + seeds (slower; "
                        "recorded in config.json)")
    if perceptual:
        p.add_argument("--vgg-weights", default="imagenet",
                       help="imagenet (Keras cache or download) | PATH to a notop .h5 | random (untrained VGG: tests only)")
        p.add_argument("--vgg-preprocess", choices=("caffe", "none"),
                       help="caffe: proper ImageNet preprocessing; none: [-1, 1] straight into VGG as upstream did")
    return p


def add_inference_precision_flag(p) -> None:
    """``--precision`` of predict.py and test.py: default auto (common.precision.INFERENCE_HELP)."""
    from common.precision import CHOICES, INFERENCE_HELP

    p.add_argument("--precision", default="auto", choices=CHOICES, help=INFERENCE_HELP)


def predict_parser(family: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python {family}/predict.py", description=description,
                                formatter_class=_formatter)
    p.add_argument("--weights", help=f"run directory or weights file (default: newest run in runs/{family})")
    p.add_argument("--input", help="image file or folder (default: the bundled sample images)")
    p.add_argument("--output", help=f"output folder (default: outputs/{family}/predict)")
    p.add_argument("--tile", type=int,
                   help="process images in overlapping tiles of this size (input pixels); default: "
                        "chosen from the image size and free memory (whole image when it fits, peak "
                        "memory under 3 GB); 0 = always the whole image")
    add_inference_precision_flag(p)
    return p


def test_parser(family: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python {family}/test.py", description=description,
                                formatter_class=_formatter)
    p.add_argument("--weights", help=f"run directory or weights file (default: newest run in runs/{family})")
    p.add_argument("--data", help="test data (default: the bundled sample test set)")
    p.add_argument("--output", help=f"output folder (default: outputs/{family}/test)")
    add_inference_precision_flag(p)
    p.add_argument("--limit", type=int, help="evaluate at most this many images")
    return p


def number_list(cast=int, count: int | None = None, name: str = "values"):
    """argparse ``type=`` for comma-separated numbers ("1,2,3"), optionally exactly ``count`` of them."""
    noun = "integers" if cast is int else "numbers"

    def parse(text: str):
        try:
            values = tuple(cast(v) for v in text.replace(" ", "").split(","))
        except ValueError:
            values = None
        if values is None or (count is not None and len(values) != count):
            expected = f"{count} comma-separated {noun}" if count else f"comma-separated {noun}"
            raise argparse.ArgumentTypeError(f"{name} needs {expected}, got {text!r}")
        return values

    parse.__name__ = name
    return parse


# ----------------------------------------------------------------------------- config
def override_config(config, args: argparse.Namespace, extra: dict | None = None):
    """Replace each config field whose same-named flag was given (dashes -> underscores)."""
    names = {f.name for f in dataclasses.fields(config)}
    changes = dict(extra or {})
    for key, value in vars(args).items():
        if key in names and value is not None and key != "preset":
            changes[key] = value
    return dataclasses.replace(config, **changes)


def default_run_dir(family: str, args: argparse.Namespace) -> Path:
    return Path(args.out) if getattr(args, "out", None) else RUNS_ROOT / family / args.preset


# ----------------------------------------------------------------------------- runs
def _run_mtime(run: Path) -> float | None:
    """When a run last saved a usable generator: its export, else its newest checkpoint."""
    from common.own_weights import CHECKPOINT_DIR, list_checkpoints

    export = run / "generator.weights.h5"
    if export.is_file():
        return export.stat().st_mtime
    checkpoints = list_checkpoints(run / CHECKPOINT_DIR)
    return Path(checkpoints[0][1] + ".index").stat().st_mtime if checkpoints else None


def newest_run(family: str) -> Path | None:
    """The run of ``family`` that saved a generator last (finished, or interrupted after a
    checkpoint)."""
    root = RUNS_ROOT / family
    if not root.is_dir():
        return None
    runs = [(t, r) for r in root.iterdir() if r.is_dir() for t in [_run_mtime(r)] if t is not None]
    return max(runs)[1] if runs else None


def _run_weights(run: Path, name: str) -> Path:
    """A run's ``<name>.weights.h5``; for a run that did not finish, its ``checkpoints/`` folder
    (:func:`common.own_weights.load_own_weights` restores the generator of the newest one)."""
    from common.own_weights import CHECKPOINT_DIR, list_checkpoints

    file = run / f"{name}.weights.h5"
    if file.is_file():
        return file
    if list_checkpoints(run / CHECKPOINT_DIR):
        return run / CHECKPOINT_DIR
    raise UserError(f"{run}: no {name}.weights.h5 and no checkpoint in this run directory; train "
                    "it first (rerun its train command) or pass a weights file")


def resolve_weights(family: str, weights: str | None, name: str = "generator") -> tuple[Path | None, Path]:
    """Find ``(run_dir, weights_file)`` from ``--weights`` (a run directory or a weights file).

    Without ``--weights`` the newest run of the family is used; with none, the error says which
    train command makes one. A run that was interrupted has no export yet: ``weights_file`` is
    then its ``checkpoints/`` folder, which :func:`common.own_weights.load_own_weights` reads.
    """
    if weights is None:
        run = newest_run(family)
        if run is None:
            raise UserError(f"no trained {family} model in {RUNS_ROOT / family}; run "
                            f"`python {family}/train.py` first or pass --weights RUN_DIR_OR_FILE")
        return run, _run_weights(run, name)
    path = Path(weights).expanduser()
    if path.is_dir():
        if path.name == "checkpoints" and (path.parent / "config.json").is_file():
            return path.parent, path
        return path, _run_weights(path, name)
    if path.is_file():
        run = path.parent if (path.parent / "config.json").is_file() else None
        return run, path
    raise UserError(f"{path}: no such run directory or weights file")


def load_run_config(run_dir: Path | None) -> dict:
    """The ``config`` section of a run's config.json ({} when there is none)."""
    if run_dir is None or not (run_dir / "config.json").is_file():
        return {}
    path = run_dir / "config.json"
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); the file is truncated or corrupt; restore "
                        "it from the run's train command (rerun it) or pass a weights file and "
                        "--preset") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err}); check its permissions") from None
    config = record.get("config") if isinstance(record, dict) else None
    if not isinstance(config, dict):
        raise UserError(f"{path}: no \"config\" section (not a config.json written by train.py); "
                        "restore it or pass a weights file and --preset")
    return config


def resolve_vgg_choice(vgg_weights: str, network: str, sample_demo: bool):
    """Decide the perceptual loss's VGG weights from ``--vgg-weights``.

    Returns ``(weights, use_l1_instead, warnings)``: ``weights`` for PerceptualLoss ("imagenet",
    a path, or None for random). Offline without ImageNet weights a run on the user's data stops
    here with the message naming the file; only the built-in sample demo goes on, with an L1
    content loss in place of the perceptual term and a warning recorded in config.json.
    """
    from common.losses import imagenet_weights_available, missing_weights_message, resolve_vgg_weights

    if vgg_weights in ("random", "none"):
        return None, False, [f"--vgg-weights random: the perceptual loss uses an UNTRAINED {network.upper()}; "
                             "results are meaningless, use this only to test the code path"]
    if vgg_weights != "imagenet":
        return resolve_vgg_weights(vgg_weights, network), False, []
    if imagenet_weights_available(network):
        return "imagenet", False, []
    if sample_demo:
        return None, True, [f"ImageNet {network.upper()} weights are not available, so this sample-data demo "
                            "trains with an L1 content loss in place of the perceptual loss. "
                            + missing_weights_message(network)]
    raise UserError(missing_weights_message(network))
