"""Base class of every family's adversarial wrapper (the keras-io GAN shape).

A family subclasses :class:`GANModel`, sets ``loss_names`` and writes ``train_step``:

    class DeblurGAN(GANModel):
        loss_names = ("d_loss", "gp", "g_adv", "g_content", "g_total")

        def train_step(self, data):
            blurred, sharp = data
            with tf.GradientTape() as tape:
                ...
                d_loss = ...
                scaled = self.scale(d_loss, self.d_optimizer)      # inside the tape
            self.apply(tape, scaled, self.discriminator.trainable_variables, self.d_optimizer)
            ...
            return self.report(d_loss=d_loss, ...)

``scale`` divides by the number of replicas (hand-written losses are per-replica means, while
``tf.distribute`` sums the replicas' gradients) and applies the loss scale of a
``LossScaleOptimizer`` (mixed_float16). ``apply`` takes the gradients and lets the optimizer
unscale them and skip non-finite steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from common.precision import uses_loss_scaling


class GANModel(keras.Model):
    loss_names: tuple[str, ...] = ()

    def __init__(self, generator, discriminator=None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        # Randomness of the train step (gradient-penalty alpha, masks...) comes from here; its
        # state is checkpointed so a resumed run draws the same numbers as an uninterrupted one.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}
        # Completed training steps. The driver increments it after each batch and checkpoints it;
        # a train_step may read it (e.g. GLCIC's phase schedule).
        self.global_step = keras.Variable(0, dtype="int64", trainable=False, name="global_step")

    def compile(self, g_optimizer, d_optimizer=None, **kwargs):
        super().compile(**kwargs)
        if uses_loss_scaling():
            g_optimizer = keras.mixed_precision.LossScaleOptimizer(g_optimizer)
            if d_optimizer is not None:
                d_optimizer = keras.mixed_precision.LossScaleOptimizer(d_optimizer)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds a model made under a strategy from its first batch, averaged with
        # strategy.reduce, which fails for MultiWorkerMirroredStrategy ("PerReplica ... to a
        # Tensor"). One replica's local batch has the same shapes and serves as well.
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and strategy is not None:
            for _, _, it in iterator:
                first = next(it)
                break
            data_batch = tf.nest.map_structure(
                lambda x: strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x, first)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # -- helpers for train_step ------------------------------------------------------------
    @staticmethod
    def num_replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    def scale(self, loss, optimizer):
        """Loss to differentiate: per-replica share, times the fp16 loss scale. Call in the tape."""
        loss = tf.cast(loss, tf.float32) / self.num_replicas()
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
        return loss

    def apply(self, tape, scaled_loss, variables, optimizer):
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply(grads, variables)

    def report(self, **values):
        """Update the named trackers and return the logs Keras shows and the driver records."""
        for name, value in values.items():
            self.trackers[name].update_state(tf.cast(value, tf.float32))
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 averages logs across workers with strategy.reduce(..., axis=0), which
            # needs at least one dimension.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def checkpoint_items(self) -> dict:
        """Everything a resumed run needs, for ``tf.train.Checkpoint(**items)``."""
        items = {"generator": self.generator, "g_optimizer": self.g_optimizer,
                 "seed_state": self.seed_generator.state, "step": self.global_step}
        if self.discriminator is not None:
            items["discriminator"] = self.discriminator
        if getattr(self, "d_optimizer", None) is not None:
            items["d_optimizer"] = self.d_optimizer
        return items

    def optimizers(self) -> dict:
        """Named optimizers whose learning rate the driver may schedule."""
        named = {"g_optimizer": self.g_optimizer}
        if getattr(self, "d_optimizer", None) is not None:
            named["d_optimizer"] = self.d_optimizer
        return named
