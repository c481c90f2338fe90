"""``--strategy auto|none|mirrored|multiworker``: which ``tf.distribute`` strategy a run uses."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from common.errors import UserError

CHOICES = ("auto", "none", "mirrored", "multiworker")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all GPUs when there are several, else the default strategy.

    multiworker reads the cluster from the TF_CONFIG environment variable (one process per machine,
    each started with the same command and its own task index).
    """
    if name not in CHOICES:
        raise ValueError(f"strategy must be one of {CHOICES}, got {name!r}")
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy multiworker needs the TF_CONFIG environment variable "
                            "(cluster addresses and this worker's task index); set it on every worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief (worker 0) writes the run directory; other workers write to scratch space."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not os.environ.get("TF_CONFIG"):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0
