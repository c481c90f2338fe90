"""A tiny GAN used to test the shared training driver (not a model family)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common import losses
from common.gan import GANModel
from common.training import TrainJob


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    batch_size: int = 4
    epochs: int = 2
    steps_per_epoch: int = 3
    lr: float = 1e-2
    seed: int = 0
    save_every: int = 2
    size: int = 8
    gradient_penalty: bool = False
    nan_from_step: int = -1   # data turns NaN from this step on (tests the divergence guard)
    optimizer: str = "adam"   # "sgd" makes a wrong replica scaling visible (Adam hides a 2x factor)


def build_generator(size=None):
    x = inputs = keras.Input((size, size, 3))
    x = layers.Conv2D(4, 3, padding="same", name="g_conv1")(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(3, 3, padding="same", name="g_conv2")(x)
    x = layers.Activation("tanh", dtype="float32", name="g_out")(x)
    return keras.Model(inputs, x, name="toy_generator")


def build_discriminator():
    x = inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same", name="d_conv1")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(1, dtype="float32", name="d_out")(x)
    return keras.Model(inputs, x, name="toy_discriminator")


class ToyGAN(GANModel):
    loss_names = ("d_loss", "g_adv", "g_content", "g_total")

    def __init__(self, *args, gradient_penalty=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_gp = gradient_penalty

    def train_step(self, data):
        degraded, target = data
        fake = self.generator(degraded, training=True)
        with tf.GradientTape() as tape:
            d_loss = losses.wasserstein_critic_loss(self.discriminator(target, training=True),
                                                    self.discriminator(fake, training=True))
            if self.use_gp:
                d_loss += 10.0 * losses.gradient_penalty(self.discriminator, target, fake, self.seed_generator)
            scaled = self.scale(d_loss, self.d_optimizer)
        self.apply(tape, scaled, self.discriminator.trainable_variables, self.d_optimizer)
        with tf.GradientTape() as tape:
            fake = self.generator(degraded, training=True)
            g_adv = losses.wasserstein_generator_loss(self.discriminator(fake, training=False))
            g_content = losses.l1(target, fake)
            g_total = 0.1 * g_adv + g_content
            scaled = self.scale(g_total, self.g_optimizer)
        self.apply(tape, scaled, self.generator.trainable_variables, self.g_optimizer)
        return self.report(d_loss=d_loss, g_adv=g_adv, g_content=g_content, g_total=g_total)


def toy_dataset(config: ToyConfig, start_step: int) -> tf.data.Dataset:
    """Deterministic batches: batch k depends only on (seed, k)."""
    def batch(step):
        seed = tf.stack([tf.cast(config.seed, tf.int64), step])
        target = tf.random.stateless_uniform((config.batch_size, config.size, config.size, 3), seed, -1, 1)
        degraded = 0.5 * target
        if config.nan_from_step >= 0:
            poison = tf.where(step >= config.nan_from_step, np.nan, 0.0)
            degraded, target = degraded + poison, target + poison
        return degraded, target
    return tf.data.Dataset.range(start_step, 1 << 40).map(batch)


def toy_job(run_dir: Path, config: ToyConfig | None = None, **job_kwargs) -> TrainJob:
    config = config or ToyConfig()

    def build_gan():
        gan = ToyGAN(build_generator(), build_discriminator(), seed=config.seed,
                     gradient_penalty=config.gradient_penalty)
        make = keras.optimizers.SGD if config.optimizer == "sgd" else keras.optimizers.Adam
        gan.compile(make(config.lr), make(config.lr))
        return gan

    job_kwargs.setdefault("precision", "float32")
    job_kwargs.setdefault("progress", False)
    return TrainJob(family="toy", config=config, run_dir=Path(run_dir), build_gan=build_gan,
                    build_dataset=lambda start: toy_dataset(config, start), **job_kwargs)
