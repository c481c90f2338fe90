"""Learning rate as a pure function of the global step, for every SRGAN preset.

The trainer calls :func:`learning_rate` before each step and assigns the value to both
optimizers, so resuming at step ``n`` gives exactly the rate an uninterrupted run would have had.

``warmup_cosine`` reproduces bubbliiiing/srgan-keras ``utils/utils.py: get_lr_scheduler("cos")``
(YOLOX-style): the upstream evaluates it once per *epoch* (``train.py`` sets the rate at the start of
each epoch from the epoch index), so the step is turned into ``step // steps_per_epoch`` first.
"""

from __future__ import annotations

import math

from srgan.config import Config

# get_lr_scheduler: warmup_lr_start = max(warmup_lr_ratio * lr, 1e-6)
WARMUP_LR_FLOOR = 1e-6


def warmup_cosine_lr(
    epoch: float,
    *,
    base_lr: float,
    total_epochs: int,
    min_lr_ratio: float = 0.01,
    warmup_ratio: float = 0.05,
    warmup_max_epochs: int = 3,
    warmup_lr_ratio: float = 0.1,
    final_ratio: float = 0.05,
    final_max_epochs: int = 15,
) -> float:
    """bubbliiiing's ``yolox_warm_cos_lr`` with the ``"cos"`` settings of ``get_lr_scheduler``.

    * quadratic warm-up from ``max(warmup_lr_ratio * base_lr, 1e-6)`` to ``base_lr`` over
      ``W = min(max(warmup_ratio * total_epochs, 1), warmup_max_epochs)`` epochs (``epoch <= W``);
    * the last ``F = min(max(final_ratio * total_epochs, 1), final_max_epochs)`` epochs at
      ``min_lr = min_lr_ratio * base_lr``;
    * a half cosine from ``base_lr`` to ``min_lr`` in between.

    With the tutorial's values (2e-4, 200 epochs): 2e-5 at epoch 0, 2e-4 at epoch 3, 2e-6 from
    epoch 190 on.
    """
    min_lr = min_lr_ratio * base_lr
    warmup = min(max(warmup_ratio * total_epochs, 1), warmup_max_epochs)
    warmup_start = max(warmup_lr_ratio * base_lr, WARMUP_LR_FLOOR)
    final = min(max(final_ratio * total_epochs, 1), final_max_epochs)
    if epoch <= warmup:
        return (base_lr - warmup_start) * (epoch / float(warmup)) ** 2 + warmup_start
    if epoch >= total_epochs - final:
        return min_lr
    span = total_epochs - warmup - final
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * (epoch - warmup) / span))


def piecewise_lr(step: int, *, base_lr: float, boundaries, factors) -> float:
    """``base_lr * factors[i]`` where ``i`` is the number of boundaries ``<= step``.

    Same convention as ``keras.optimizers.schedules.PiecewiseConstantDecay`` used by krasserm's
    SrganTrainer (boundary ``b`` belongs to the earlier piece there: ``step <= b``); here the
    new rate starts *at* step ``b``, i.e. after ``b`` updates (paper: "10^5 update iterations
    at 10^-4 and another 10^5 at 10^-5").
    """
    index = sum(1 for boundary in boundaries if step >= boundary)
    return base_lr * factors[index]


def learning_rate(config: Config, step: int) -> float:
    """Learning rate for the update that happens at global step ``step`` (0-based)."""
    if config.lr_schedule == "constant":
        return float(config.lr)
    if config.lr_schedule == "piecewise":
        return float(piecewise_lr(step, base_lr=config.lr, boundaries=config.lr_boundaries,
                                  factors=config.lr_factors))
    if config.lr_schedule == "warmup_cosine":
        return float(warmup_cosine_lr(
            step // config.steps_per_epoch,
            base_lr=config.lr,
            total_epochs=config.epochs,
            min_lr_ratio=config.min_lr_ratio,
            warmup_ratio=config.warmup_ratio,
            warmup_max_epochs=config.warmup_max_epochs,
            warmup_lr_ratio=config.warmup_lr_ratio,
            final_ratio=config.final_ratio,
            final_max_epochs=config.final_max_epochs,
        ))
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}")
