"""Run the toy GAN under a tf.distribute strategy in a fresh process (device setup is per process).

usage: python distributed_run.py mirrored OUT_DIR      -> OUT_DIR/{mirrored,single}/...
       python distributed_run.py multiworker OUT_DIR    (TF_CONFIG set by the caller)
"""

import sys
from pathlib import Path

import tensorflow as tf
import keras
keras.config.disable_traceback_filtering()

mode, out = sys.argv[1], Path(sys.argv[2])
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import toy_gan  # noqa: E402
from common.training import train  # noqa: E402

config = toy_gan.ToyConfig(epochs=1, steps_per_epoch=2, save_every=1, optimizer="sgd", lr=0.5)
if mode == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    assert strategy.num_replicas_in_sync == 2
    train(toy_gan.toy_job(out / "mirrored", config, strategy=strategy))
    train(toy_gan.toy_job(out / "single", config, strategy="none"))
else:
    train(toy_gan.toy_job(out / "run", config, strategy="multiworker"))
print("OK")
