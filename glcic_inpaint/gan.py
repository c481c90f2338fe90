"""GLCIC training: the completion network and the context discriminator, in three phases.

The paper's training procedure (and the ``--phase-steps Tc,Td,Ttotal`` flag):

1. steps [0, Tc): the completion network alone, on the masked MSE;
2. steps [Tc, Tc + Td): the discriminator alone. Real: images with a local patch from an
   independent random mask (the paper's M_d). Fake: completed images with the patch around the hole;
3. steps [Tc + Td, Ttotal): both. The discriminator is trained as in 2. The completion network
   gets MSE + alpha x BCE(D(completed), real), so it really receives the adversarial gradient
   (tadax never gives it one).

The discriminator always sees the *completed* image: the generator's output inside the hole, the
input elsewhere (the paper's completed image; otenim issue #20).

The phase is a Python value fixed while a step is traced. :class:`PhaseSchedule` is added by
:meth:`GLCIC.fit`; it sets the phase before each batch and retraces the train function when the
phase changes (at most three traces). This keeps ``tf.cond`` around optimizer updates out of the
graph, which distribution strategies do not allow. The same callback copies the completion network
into ``phase1_generator`` when phase 1 ends, for the tutorial's "phase 1 vs phase 3" comparison.

Logged losses:

- ``g_mse``: the masked MSE;
- ``g_adv``: BCE of the fake scores against "real";
- ``g_total``: mse_weight x g_mse + alpha x g_adv, the generator's objective;
- ``d_real`` and ``d_fake``: BCE on real and completed images;
- ``d_loss`` = d_real + d_fake. The discriminator minimises alpha x d_loss (the paper's joint
  objective; tadax ``calc_d_loss``); the logged value is without alpha, to stay readable.

Losses not computed in a phase keep their last value (0 at the start of an epoch).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from common import losses
from common.gan import GANModel
from glcic_inpaint.config import Config
from glcic_inpaint.masks import crop_patches, hole_spec, random_corners, sample_holes

LOSS_NAMES = ("g_mse", "g_adv", "g_total", "d_loss", "d_real", "d_fake")


def to_model_range(images, config: Config):
    """[-1, 1] images (common.data pipelines) -> the preset's range ([0, 1] or [-1, 1])."""
    images = tf.cast(images, tf.float32)
    return (images + 1.0) / 2.0 if config.value_range == "unit" else images


def from_model_range(images, config: Config):
    """The preset's range -> [0, 1] (for display and metrics)."""
    return images if config.value_range == "unit" else (images + 1.0) / 2.0


def masked_mse(target, completed, masks, reduction: str = "mean"):
    """Squared error inside the holes, float32.

    ``"mean"``: mean over every element of the batch, holes and known pixels alike (Torch
    ``MSECriterion``, otenim's ``mse_loss(output * mask, x * mask)``).
    ``"sum"``: sum over each image's hole, averaged over the batch (the paper's ``||M (C - x)||^2``).
    """
    masks = tf.cast(masks, tf.float32)
    error = tf.square(tf.cast(completed, tf.float32) - tf.cast(target, tf.float32)) * masks
    if reduction == "sum":
        return tf.reduce_mean(tf.reduce_sum(error, axis=[1, 2, 3]))
    return tf.reduce_mean(error)


class GLCIC(GANModel):
    """``generator``: the inpainter ``[image, mask] -> completed`` (model.build_inpainter);
    ``discriminator``: ``[global image, local patch] -> logit``; ``phase1_generator``: a second
    inpainter of the same shape that receives a copy of the weights when phase 1 ends (optional).
    """

    loss_names = LOSS_NAMES

    def __init__(self, generator, discriminator, config: Config, phase1_generator=None, **kwargs):
        super().__init__(generator, discriminator, seed=config.seed, **kwargs)
        self.config = config
        self.spec = hole_spec(config)
        self.phase1_generator = phase1_generator
        if phase1_generator is not None:
            phase1_generator.trainable = False
        self.phase = config.phase(0)

    # ------------------------------------------------------------------ phases
    def set_phase(self, phase: int) -> None:
        """Switch the traced train step to ``phase`` (1, 2 or 3); no-op if it is current."""
        if phase not in (1, 2, 3):
            raise ValueError(f"phase must be 1, 2 or 3, got {phase}")
        if phase == self.phase:
            return
        self.phase = phase
        for tracker in self.trackers.values():
            tracker.reset_state()
        if self.train_function is not None:
            self.make_train_function(force=True)

    def snapshot_phase1(self) -> None:
        if self.phase1_generator is not None:
            self.phase1_generator.set_weights(self.generator.get_weights())

    def fit(self, *args, callbacks=None, **kwargs):
        return super().fit(*args, callbacks=[PhaseSchedule(self), *(callbacks or [])], **kwargs)

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        if self.phase1_generator is not None:
            items["phase1_generator"] = self.phase1_generator
        return items

    # ------------------------------------------------------------------ train step
    def _seeds(self):
        """Two stateless seeds from (config.seed, step, replica): resumable and per replica."""
        step = tf.cast(tf.convert_to_tensor(self.global_step), tf.int64)
        base = tf.stack([tf.constant(self.config.seed, tf.int64), step])
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        base = tf.random.experimental.stateless_fold_in(base, tf.cast(replica, tf.int32))
        seeds = tf.random.experimental.stateless_split(base, num=2)
        return seeds[0], seeds[1]

    def train_step(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        config, phase = self.config, self.phase
        images = to_model_range(data, config)
        batch = tf.shape(images)[0]
        fake_seed, real_seed = self._seeds()
        holes = sample_holes(batch, self.spec, fake_seed)
        masks = holes.masks
        logs = {}

        if phase in (1, 3):
            with tf.GradientTape() as tape:
                completed = self.generator([images, masks], training=True)
                g_mse = masked_mse(images, completed, masks, config.mse_reduction)
                g_total = config.mse_weight * g_mse
                if phase == 3:
                    local = crop_patches(completed, holes.corners, config.local_size)
                    fake_logits = self.discriminator([completed, local], training=True)
                    g_adv = losses.bce_with_logits(1.0, fake_logits)
                    g_total = g_total + config.alpha * g_adv
                    logs["g_adv"] = g_adv
                scaled = self.scale(g_total, self.g_optimizer)
            self.apply(tape, scaled, self.generator.trainable_variables, self.g_optimizer)
            logs.update(g_mse=g_mse, g_total=g_total)
        else:
            completed = self.generator([images, masks], training=True)

        if phase in (2, 3):
            completed = tf.stop_gradient(completed)  # tadax: the completion before G's update
            real_corners = random_corners(batch, self.spec, real_seed)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(
                    [images, crop_patches(images, real_corners, config.local_size)], training=True
                )
                fake_logits = self.discriminator(
                    [completed, crop_patches(completed, holes.corners, config.local_size)],
                    training=True,
                )
                d_real = losses.bce_with_logits(1.0, real_logits)
                d_fake = losses.bce_with_logits(0.0, fake_logits)
                d_loss = d_real + d_fake
                scaled = self.scale(config.alpha * d_loss, self.d_optimizer)
            self.apply(tape, scaled, self.discriminator.trainable_variables, self.d_optimizer)
            logs.update(d_loss=d_loss, d_real=d_real, d_fake=d_fake)

        return self.report(**logs)


class PhaseSchedule(keras.callbacks.Callback):
    """Sets :attr:`GLCIC.phase` from the global step before each batch; snapshots phase 1."""

    def __init__(self, gan: GLCIC):
        super().__init__()
        self.gan = gan

    def _step(self) -> int:
        return int(self.gan.global_step.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        step = self._step()
        tc = self.gan.config.phase_steps[0]
        if tc > 0 and step == tc:
            self.gan.snapshot_phase1()
        self.gan.set_phase(self.gan.config.phase(step))

    def on_train_end(self, logs=None):
        tc = self.gan.config.phase_steps[0]
        if tc > 0 and self._step() == tc:
            self.gan.snapshot_phase1()


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """Adadelta (paper; Torch defaults: lr 1, rho 0.9, eps 1e-6) or Adam (tadax)."""
    if config.optimizer == "adadelta":
        return keras.optimizers.Adadelta(
            learning_rate=config.lr, rho=config.rho, epsilon=config.epsilon
        )
    return keras.optimizers.Adam(
        learning_rate=config.lr, beta_1=config.beta_1, beta_2=config.beta_2,
        epsilon=config.epsilon,
    )


def build_gan(config: Config, mean_color=None, with_phase1: bool = True) -> GLCIC:
    """Build the networks and compile a :class:`GLCIC` (call inside the strategy scope).

    ``mean_color``: the training-set mean (value-range units) for ``hole_fill="mean"`` presets.
    """
    from glcic_inpaint.model import build_completion_network, build_discriminator, build_inpainter

    generator = build_inpainter(build_completion_network(config), config, mean_color)
    phase1 = None
    if with_phase1 and config.phase_steps[0] > 0:
        phase1 = build_inpainter(build_completion_network(config), config, mean_color)
    gan = GLCIC(generator, build_discriminator(config), config, phase1_generator=phase1)
    gan.compile(make_optimizer(config), make_optimizer(config))
    return gan
