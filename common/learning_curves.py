"""Learning curves: evaluate a generator on held-out images while the normal training driver runs.

Used by ``benchmarks/learning.py``. A :class:`CurveRecorder` is a Keras callback added to a
family's :class:`common.training.TrainJob` (:func:`recording`): every ``eval_every`` steps it copies
the training generator's weights into a float32 copy (what the test scripts run) and calls the
family's evaluation, which returns ``(metric, baseline)``; it stops the run when the time budget is
spent. The curve is written as a CSV (``step, seconds, metric, baseline``; ``seconds`` is training
time, evaluation excluded) and a matplotlib plot of the metric against the baseline line.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np

COLUMNS = ("step", "seconds", "metric", "baseline")


class BudgetReached(Exception):
    """Raised by :class:`CurveRecorder` to end a run when its time budget is spent."""


@dataclass
class Point:
    step: int
    seconds: float
    metric: float
    baseline: float


@dataclass
class Curve:
    """The recorded points and the facts written above them in the CSV."""

    points: list = field(default_factory=list)
    header: dict = field(default_factory=dict)

    def crossing(self) -> Point | None:
        """The first evaluation after step 0 whose metric is above its baseline."""
        return next((p for p in self.points if p.step > 0 and p.metric > p.baseline), None)

    def steps_per_second(self) -> float:
        timed = [p for p in self.points if p.step > 0 and p.seconds > 0]
        return timed[-1].step / timed[-1].seconds if timed else float("nan")

    def projected_crossing(self) -> int | None:
        """Step where a least-squares line of metric vs log(step), fitted to the evaluations
        from a quarter of the run on (the first fast rise left out), reaches the baseline; None
        when the trend is flat or falling. A rough guide: single evaluations are noisy."""
        last = self.points[-1].step if self.points else 0
        later = [p for p in self.points if p.step > 0 and p.step >= last / 4]
        if len(later) < 3:
            return None
        x = np.log([p.step for p in later])
        y = np.array([p.metric - p.baseline for p in later])
        if np.ptp(x) == 0:
            return None
        slope, intercept = np.polyfit(x, y, 1)
        if slope <= 0:
            return None
        return int(round(math.exp(-intercept / slope)))


class CurveRecorder(keras.callbacks.Callback):
    """Evaluates every ``eval_every`` steps and when ``seconds`` of training have passed or
    ``max_steps`` are done (then raises :class:`BudgetReached`).

    ``make_eval_model(config) -> keras.Model``: builds the generator (called under the float32
    policy); ``evaluate(model, config) -> (metric, baseline)``. ``log``: print(str) per point.
    ``on_point(curve)``: called after every evaluation (the benchmark rewrites its CSV there, so
    a run that is killed keeps every point it made).
    """

    def __init__(self, make_eval_model: Callable, evaluate: Callable, eval_every: int,
                 seconds: float, max_steps: int | None = None, log: Callable[[str], None] = print,
                 on_point: Callable[[Curve], None] | None = None):
        super().__init__()
        self.make_eval_model, self.evaluate = make_eval_model, evaluate
        self.eval_every, self.budget = max(1, int(eval_every)), float(seconds)
        self.max_steps = max_steps
        self.log = log
        self.on_point = on_point
        self.curve = Curve()
        self.config = None
        self._eval_model = None
        self._started = None
        self._eval_time = 0.0

    # ------------------------------------------------------------------ set-up by recording()
    def attach(self, job):
        self.config = job.config
        return dataclasses.replace(job, callbacks=[*job.callbacks, self], progress=False)

    @property
    def training_seconds(self) -> float:
        if self._started is None:
            return 0.0
        return time.monotonic() - self._started - self._eval_time

    def _step(self) -> int:
        return int(np.asarray(self.model.global_step))

    def _record(self) -> None:
        step = self._step()
        if self.curve.points and self.curve.points[-1].step == step:
            return
        began = time.monotonic()
        seconds = self.training_seconds
        if self._eval_model is None:
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy("float32")  # the test scripts run float32 models
            try:
                self._eval_model = self.make_eval_model(self.config)
            finally:
                keras.config.set_dtype_policy(previous)
        self._eval_model.set_weights(self.model.generator.get_weights())
        metric, baseline = self.evaluate(self._eval_model, self.config)
        point = Point(step, round(seconds, 2), float(metric), float(baseline))
        self.curve.points.append(point)
        self.log(f"eval step {step}: {metric:.3f} (baseline {baseline:.3f}) after "
                 f"{seconds / 60:.1f} min of training")
        if self.on_point is not None:
            self.on_point(self.curve)
        if self._started is not None:
            self._eval_time += time.monotonic() - began

    # ------------------------------------------------------------------ keras hooks
    def on_train_begin(self, logs=None):
        if self._started is None:
            self._record()  # the untrained generator (step 0, or the resumed step)
            self._started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        over = self.training_seconds >= self.budget or (self.max_steps is not None and step >= self.max_steps)
        if step % self.eval_every == 0 or over:
            self._record()
        if over:
            raise BudgetReached(step)


@contextlib.contextmanager
def recording(recorder: CurveRecorder):
    """Within the block, :func:`common.training.train` runs every job with ``recorder`` added to
    its callbacks (and plain log lines); a family's ``train.main`` is then the normal driver with
    the evaluations added. :class:`BudgetReached` ends the run as the budget is spent."""
    from common import training

    real_train = training.train

    def train(job):
        return real_train(recorder.attach(job))

    training.train = train
    try:
        yield recorder
    finally:
        training.train = real_train


# ----------------------------------------------------------------------------- outputs
def write_csv(path: Path, curve: Curve) -> None:
    """``# key: value`` lines (the header facts), then the columns ``step, seconds, metric,
    baseline``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        for key, value in curve.header.items():
            handle.write(f"# {key}: {value}\n")
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in curve.points:
            writer.writerow([p.step, f"{p.seconds:.2f}", f"{p.metric:.4f}", f"{p.baseline:.4f}"])


def read_csv(path: Path) -> Curve:
    """The curve :func:`write_csv` wrote."""
    header, rows = {}, []
    with open(path, newline="") as handle:
        lines = handle.read().splitlines()
    body = []
    for line in lines:
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            header[key] = value
        else:
            body.append(line)
    for row in csv.DictReader(body):
        rows.append(Point(int(row["step"]), float(row["seconds"]), float(row["metric"]),
                          float(row["baseline"])))
    return Curve(rows, header)


def plot(path: Path, curve: Curve, title: str, metric_label: str, baseline_label: str) -> None:
    """The metric per step against the baseline (dashed), the crossing marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p.step for p in curve.points]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(steps, [p.metric for p in curve.points], marker="o", markersize=3, label=metric_label)
    ax.plot(steps, [p.baseline for p in curve.points], linestyle="--", color="gray",
            label=baseline_label)
    crossed = curve.crossing()
    if crossed is not None:
        ax.axvline(crossed.step, color="green", linewidth=0.8)
        ax.annotate(f"above at step {crossed.step}\n({crossed.seconds / 60:.1f} min)",
                    (crossed.step, crossed.metric), textcoords="offset points", xytext=(6, -24),
                    fontsize=8, color="green")
    if curve.points:
        last = curve.points[-1]
        ax.set_xlabel(f"training step ({last.step} steps in {last.seconds / 60:.1f} min)")
    ax.set_ylabel(metric_label.split(" (")[0])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def summary(curve: Curve, paper_steps: int | None = None) -> str:
    """Where the curve crossed its baseline, or its trend and the projected crossing."""
    if not curve.points:
        return "no evaluation was made"
    last = curve.points[-1]
    rate = curve.steps_per_second()
    crossed = curve.crossing()
    if crossed is not None:
        return (f"crossed the baseline at step {crossed.step} ({crossed.seconds / 60:.1f} min of "
                f"training): {crossed.metric:.2f} vs {crossed.baseline:.2f}; last: step "
                f"{last.step}, {last.metric:.2f} ({rate:.2f} steps/s)")
    first = curve.points[0]
    text = (f"did not cross the baseline in {last.step} steps ({last.seconds / 60:.1f} min, "
            f"{rate:.2f} steps/s): {first.metric:.2f} at step {first.step} -> {last.metric:.2f} "
            f"at step {last.step}, baseline {last.baseline:.2f}")
    projected = curve.projected_crossing()
    if projected is None:
        text += "; no rising trend to project"
    else:
        text += f"; the log-step trend reaches it near step {projected}"
        if math.isfinite(rate) and rate > 0:
            text += f" (~{projected / rate / 60:.0f} min at this rate)"
    if paper_steps:
        text += f"; the recipe's schedule is {paper_steps} steps"
    return text


def demo_standing(family: str, items, load: Callable, run: Callable, baseline: Callable,
                  metric: Callable, name: str, baseline_name: str) -> str:
    """One line for the end of a sample-data demo: its held-out mean against the baseline's.

    ``items``: ``(input, target)`` pairs; ``load()`` loads the trained generator (called under the
    float32 policy, as the test scripts run it); ``run(loaded, input)`` and ``baseline(input)``
    give images; ``metric(image, target, input) -> dB``.
    """
    keras.config.set_dtype_policy("float32")
    loaded = load()
    ours, base = [], []
    for given, target in items:
        ours.append(metric(run(loaded, given), target, given))
        base.append(metric(baseline(given), target, given))
    ours_mean, base_mean = float(np.mean(ours)), float(np.mean(base))
    verdict = "above" if ours_mean > base_mean else "still below"
    return (f"demo result on the {len(ours)} sample test images: {name} {ours_mean:.2f} dB, "
            f"{baseline_name} {base_mean:.2f} dB ({verdict} the baseline; a few demo minutes show "
            f"the pipeline, not the method). How the recipe passes the baseline in a longer run: "
            f"python benchmarks/learning.py --family {family} (README, Results)")
