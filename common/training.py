"""The shared training driver used by every ``<family>/train.py``.

It runs a family's :class:`common.gan.GANModel` with ``fit`` under a ``tf.distribute`` strategy and
owns everything around it:

- the run directory ``runs/<family>/<name>/``: ``config.json`` (what actually ran),
  ``checkpoints/`` (step, G, D, optimizers, RNG state), ``logs/`` (TensorBoard), ``samples/``
  (a result grid per epoch), and the exports ``generator.weights.h5`` / ``generator.keras``;
- resume: a rerun with the same run directory continues at the saved step, on the same batches
  (the data pipeline is a pure function of (seed, step));
- safety: Ctrl-C / SIGTERM save a checkpoint and exit; a NaN or Inf loss stops the run with a
  clear message and leaves the last good checkpoint untouched; exports are written atomically;
  a lock file (``.lock``, :mod:`common.run_lock`) keeps a second process out of the run
  directory; a checkpoint that cannot be read (a crash or a full disk while it was written) is
  skipped on resume for the newest complete one; a failed save (disk full) stops the run saying
  that the previous checkpoint and exports are intact;
- logs: a progress bar on a terminal, else (``--no-progress``, output to a file) one plain line
  every ``log_every`` steps with the losses, steps/s and the ETA.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from common import determinism
from common.distribute import get_strategy, is_chief
from common.errors import TrainingInterrupted, UserError, first_line  # noqa: F401 (re-exported)
from common.precision import set_precision


class TrainingDiverged(UserError):
    """A loss became NaN or Inf."""


@dataclass
class TrainJob:
    """What a family hands to :func:`train`.

    Attributes:
        family: package name, e.g. "deblur_gan".
        config: the frozen config dataclass; needs ``epochs``, ``steps_per_epoch``, ``save_every``.
        run_dir: where everything is written.
        build_gan: builds and compiles the GANModel; called inside the strategy scope after the
            dtype policy is set.
        build_dataset: ``start_step -> tf.data.Dataset`` of global batches, infinite, starting at
            the batch an uninterrupted run would see at ``start_step``.
        sample_grid: ``(gan, png_path) -> None``, called at the end of every epoch.
        lr_schedule: ``step -> {"g_optimizer": lr, "d_optimizer": lr}`` set before each step.
        exports: ``gan -> {name: keras.Model}`` saved as ``name.weights.h5`` and ``name.keras``
            (default: the generator).
        info: extra facts for config.json (data path, content-loss fallback, ...).
        warnings: printed at the start and recorded in config.json.
    """

    family: str
    config: Any
    run_dir: Path
    build_gan: Callable[[], Any]
    build_dataset: Callable[[int], tf.data.Dataset]
    sample_grid: Callable[[Any, Path], None] | None = None
    lr_schedule: Callable[[int], dict] | None = None
    exports: Callable[[Any], dict] | None = None
    precision: str = "auto"
    strategy: str = "auto"
    log_every: int = 10
    info: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    progress: bool = True
    max_bad_images: int | None = None  # unreadable training images tolerated (None: 1%, >= 10)
    deterministic: bool = False  # op determinism + seeds (common.determinism); --deterministic

    @property
    def total_steps(self) -> int:
        return int(self.config.epochs) * int(self.config.steps_per_epoch)


# ------------------------------------------------------------------------------- files
def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def export_model(model: keras.Model, run_dir: Path, name: str) -> None:
    """Write ``name.weights.h5`` and ``name.keras`` so a crash mid-write never leaves a broken file.

    A failed write (disk full) raises UserError; the previous exports are left as they were.
    """
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=".export-", dir=run_dir))
        try:
            model.save_weights(tmp_dir / f"{name}.weights.h5")
            model.save(tmp_dir / f"{name}.keras")
            for suffix in (".weights.h5", ".keras"):
                os.replace(tmp_dir / f"{name}{suffix}", run_dir / f"{name}{suffix}")
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    except (OSError, tf.errors.OpError) as error:
        raise UserError(f"{run_dir}: cannot write {name}.weights.h5 / {name}.keras ({_reason(error)}); "
                        "the previous exports (if any) are intact and the last checkpoint holds "
                        "the trained weights; free disk space and rerun the same command to "
                        "export") from None


def _reason(error: BaseException) -> str:
    return first_line(error, 200)


def config_record(job: TrainJob, policy: str, replicas: int) -> dict:
    return {
        "family": job.family,
        "config": dataclasses.asdict(job.config),
        "precision": policy,
        "strategy": job.strategy if isinstance(job.strategy, str) else type(job.strategy).__name__,
        "replicas": replicas,
        "deterministic": determinism.is_enabled(),
        "global_batch_size": int(getattr(job.config, "batch_size", 0)),
        "info": job.info,
        "warnings": list(job.warnings),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": sys.version.split()[0]},
    }


def _write_config(job: TrainJob, record: dict, start_step: int) -> None:
    path = job.run_dir / "config.json"
    history = []
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
        history = previous.get("history", [])
        current = json.loads(json.dumps(record["config"], default=str))  # tuples -> lists, as stored
        changed = sorted(k for k, v in current.items() if previous.get("config", {}).get(k, v) != v)
        if changed and start_step > 0:
            print(f"note: resuming with changed settings: {', '.join(changed)}")
    history.append({"started_at_step": start_step, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    record = {**record, "history": history}
    try:
        atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    except OSError as error:
        raise UserError(f"{path}: cannot write ({_reason(error)}); check the run directory is "
                        "writable and the disk has space") from None


# ------------------------------------------------------------------------------- driver
class _Driver(keras.callbacks.Callback):
    """Counts steps, schedules the LR, logs, checkpoints, and stops on NaN / signals / the end."""

    def __init__(self, job: TrainJob, gan, manager, writer, bar, total_steps: int, log=None):
        super().__init__()
        self.job, self.gan, self.manager, self.writer, self.bar = job, gan, manager, writer, bar
        self.total_steps = total_steps
        self.save_every = max(1, int(getattr(job.config, "save_every", 0) or total_steps))
        self.diverged: tuple | None = None
        self.signal_name: str | None = None
        self.last_saved = -1
        self.last_logs: dict = {}
        self.save_error: tuple | None = None  # (step, reason) of a checkpoint that failed to write
        self.log = log

    @property
    def step(self) -> int:
        return int(self.gan.global_step.numpy())

    def save(self) -> None:
        step = self.step
        if step == self.last_saved or self.save_error is not None:
            return
        try:
            self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:
            # Disk full, or the folder went away: keep the previous checkpoint, stop cleanly.
            _remove_partial_checkpoint(Path(self.manager.directory), step)
            self.save_error = (step, _reason(error))
            self.model.stop_training = True
            return
        self.last_saved = step

    def on_train_batch_begin(self, batch, logs=None):
        if self.job.lr_schedule is not None:
            optimizers = self.gan.optimizers()
            for name, lr in self.job.lr_schedule(self.step).items():
                if name in optimizers:
                    optimizers[name].learning_rate = float(lr)

    def on_train_batch_end(self, batch, logs=None):
        values = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in (logs or {}).items()}
        bad = [(k, v) for k, v in values.items() if not math.isfinite(v)]
        if bad:
            # The weights already took the bad step: do not save them, stop here.
            self.diverged = (self.step + 1, bad[0][0], bad[0][1])
            self.model.stop_training = True
            return
        self.gan.global_step.assign_add(1)
        step = self.step
        self.last_logs = values
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
        elif self.log is not None:
            self.log.step(step, values)
        if self.writer is not None and (step % self.job.log_every == 0 or step == 1):
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)
                for name, opt in self.gan.optimizers().items():
                    tf.summary.scalar(f"lr/{name}", float(np.asarray(opt.learning_rate)))
        if step % self.save_every == 0:
            self.save()
        if self.signal_name is not None or step >= self.total_steps:
            self.save()
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        from common.data import report_skipped_items

        report_skipped_items(f"epoch {epoch + 1}")
        if self.diverged or self.job.sample_grid is None or self.manager is None:
            return
        if self.signal_name is not None or self.save_error is not None:
            return
        if self.step % int(self.job.config.steps_per_epoch) == 0:
            epoch_number = self.step // int(self.job.config.steps_per_epoch)
            try:
                self.job.sample_grid(self.gan, self.job.run_dir / "samples" / f"epoch_{epoch_number:04d}.png")
            except (UserError, OSError) as error:  # a full disk must not end a run for a picture
                print(f"warning: no sample grid for epoch {epoch_number}: {error}", file=sys.stderr)


def _remove_partial_checkpoint(folder: Path, number: int) -> None:
    """Files of checkpoint ``number`` whose write failed (TensorFlow writes ``ckpt-N_temp/`` and
    then ``ckpt-N.index`` / ``.data-*``); the state file still names the previous one."""
    for path in folder.glob(f"ckpt-{number}[._]*"):
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass


class _LogLines:
    """One plain line every ``every`` steps (for --no-progress and logs written to files)."""

    def __init__(self, every: int, total: int):
        self.every, self.total = max(1, int(every)), total
        self.started = self.last_time = None
        self.first_step = self.last_step = 0

    def step(self, step: int, values: dict) -> None:
        now = time.monotonic()
        if self.started is None:  # the first step includes tracing; rates start after it
            self.started, self.last_time, self.first_step, self.last_step = now, now, step, step
            return
        if step % self.every and step < self.total:
            return
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        mean_rate = (step - self.first_step) / max(now - self.started, 1e-9)
        eta = (self.total - step) / mean_rate if mean_rate > 0 else float("inf")
        losses = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
        print(f"step {step}/{self.total}  {losses}  {rate:.2f} steps/s  ETA {_duration(eta)}",
              flush=True)
        self.last_time, self.last_step = now, step


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class _SignalGuard:
    """First Ctrl-C / SIGTERM asks the driver to checkpoint and stop; a second Ctrl-C aborts."""

    def __init__(self, driver: _Driver):
        self.driver = driver
        self.previous = {}

    def _handler(self, signum, frame):
        if self.driver.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.driver.signal_name = signal.Signals(signum).name
        print(f"\n{self.driver.signal_name} received: saving a checkpoint after this step "
              "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def train(job: TrainJob) -> Path:
    """Run (or resume) a training job; returns the run directory.

    The chief holds the run directory's lock file while it trains (a second process is refused).
    """
    from common.data import set_bad_item_limit
    from common.run_lock import RunLock

    policy = set_precision(job.precision)
    strategy = job.strategy if isinstance(job.strategy, tf.distribute.Strategy) else get_strategy(job.strategy)
    chief = is_chief(strategy)
    set_bad_item_limit(job.max_bad_images)
    if not chief:
        return _train(job, policy, strategy, chief)
    with RunLock(job.run_dir):
        return _train(job, policy, strategy, chief)


def _show_progress_bar(job: TrainJob) -> bool:
    """A bar on a terminal; plain log lines for --no-progress and output sent to a file."""
    return bool(job.progress) and sys.stdout.isatty() and sys.stderr.isatty()


def restore_newest_checkpoint(checkpoint, folder: Path) -> str | None:
    """Restore the newest checkpoint in ``folder`` that can be read; returns its prefix.

    A checkpoint whose files were cut off (killed or out of disk space while writing) is skipped
    with a warning for the one before it. One that is readable but does not fit the models
    (settings changed the architecture) is a UserError, as is a folder of only unreadable ones.
    """
    from common.own_weights import list_checkpoints

    candidates = [prefix for _, prefix in list_checkpoints(folder)]
    stated = tf.train.latest_checkpoint(str(folder))
    if stated and stated not in candidates:
        candidates.insert(0, stated)
    skipped = []
    for prefix in candidates:
        try:
            checkpoint.restore(prefix).expect_partial()
        except (ValueError, AssertionError) as error:
            raise UserError(f"{prefix}: this checkpoint does not fit the models built from these "
                            f"settings ({_reason(error)}); resume with the settings of config.json "
                            "or pass another --out") from None
        except Exception as error:  # noqa: BLE001 a damaged file raises OpError, IndexError...
            skipped.append(f"{Path(prefix).name} ({_reason(error)[:80]})")
            continue
        if skipped:
            print(f"warning: skipped unreadable checkpoint(s) {'; '.join(skipped)}; resuming from "
                  f"{Path(prefix).name}", file=sys.stderr)
        return prefix
    if skipped:
        raise UserError(f"{folder}: no readable checkpoint ({'; '.join(skipped)}); delete the "
                        "folder to start over, or restore it from a backup")
    return None


def _train(job: TrainJob, policy: str, strategy, chief: bool) -> Path:
    run_dir = Path(job.run_dir)
    write_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="worker-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    for warning in job.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)

    if job.deterministic:
        determinism.enable()  # bitwise-equal reruns (issue 14); --deterministic may have done it already
    keras.utils.set_random_seed(int(getattr(job.config, "seed", 0)))  # same initial weights per seed
    with strategy.scope():
        gan = job.build_gan()
        checkpoint = tf.train.Checkpoint(**gan.checkpoint_items())
        manager = tf.train.CheckpointManager(checkpoint, str(write_dir / "checkpoints"), max_to_keep=3)
        latest = restore_newest_checkpoint(checkpoint, run_dir / "checkpoints")
    start_step = int(gan.global_step.numpy())
    total = job.total_steps
    if chief:
        _write_config(job, config_record(job, policy, strategy.num_replicas_in_sync), start_step)
    if latest:
        print(f"resuming {run_dir} at step {start_step} of {total}")
    if start_step >= total:
        print(f"training already complete ({start_step} steps); pass more --epochs to continue")
        if chief:
            _export(job, gan, run_dir)
        return run_dir

    writer = tf.summary.create_file_writer(str(write_dir / "logs")) if chief else None
    bar = log = None
    if chief and _show_progress_bar(job):
        bar = tqdm(total=total, initial=start_step, desc=f"{job.family}", unit="step",
                   dynamic_ncols=True)
    elif chief:
        log = _LogLines(job.log_every, total)
    driver = _Driver(job, gan, manager, writer, bar, total, log)
    if start_step == 0 and chief and job.sample_grid is not None:
        job.sample_grid(gan, run_dir / "samples" / "epoch_0000.png")  # what the untrained G does

    steps_per_epoch = int(job.config.steps_per_epoch)
    with _SignalGuard(driver), _data_errors_as_user_errors():
        while (driver.step < total and not driver.diverged and driver.signal_name is None
               and driver.save_error is None):
            step = driver.step
            epoch, offset = divmod(step, steps_per_epoch)
            dataset = job.build_dataset(step)
            if offset:  # finish the epoch we stopped in
                gan.fit(dataset, initial_epoch=epoch, epochs=epoch + 1,
                        steps_per_epoch=steps_per_epoch - offset, verbose=0, shuffle=False,
                        callbacks=[driver, *job.callbacks])
            else:
                gan.fit(dataset, initial_epoch=epoch, epochs=int(job.config.epochs),
                        steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                        callbacks=[driver, *job.callbacks])
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.flush()
    from common.data import report_skipped_items

    report_skipped_items("training")
    if driver.save_error:
        step, reason = driver.save_error
        last = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
        kept = (f"the previous checkpoint ({Path(last).name}) and the exports are intact" if last
                else "no earlier checkpoint exists; the exports (if any) are intact")
        raise UserError(f"{run_dir}: cannot write the checkpoint of step {step} ({reason}); {kept}; "
                        "free disk space and run the same command again to resume")

    if driver.diverged:
        step, name, value = driver.diverged
        last = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
        kept = f"the last good checkpoint ({Path(last).name}) is untouched" if last else "no checkpoint was saved yet"
        raise TrainingDiverged(f"{run_dir}: loss '{name}' became {value} at step {step}; {kept}; "
                               "lower --lr, try --precision float32, or check the data")
    if driver.signal_name is not None:
        raise TrainingInterrupted(driver.step, driver.signal_name, run_dir)
    if chief:
        _export(job, gan, run_dir)
        print(f"finished {total} steps; run directory: {run_dir}")
    return run_dir


class _data_errors_as_user_errors:
    """An unreadable file found mid-training surfaces from tf.data as a TensorFlow error; turn it
    back into the one-line UserError the data source raised."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, tf.errors.OpError):
            from common.data import as_user_error

            user_error = as_user_error(exc)
            if user_error is not None:
                raise user_error from None
        return False


def _export(job: TrainJob, gan, run_dir: Path) -> None:
    models = job.exports(gan) if job.exports else {"generator": gan.generator}
    for name, model in models.items():
        export_model(model, run_dir, name)
