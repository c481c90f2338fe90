"""DGF's adversarial training step (keras-io GAN shape) and the pieces train.py assembles.

Logged losses, the same names for both presets:

- ``d_loss``: binary cross-entropy of D on real (label 1) and fake (label 0), the mean of the two
  halves (main.py ``d.train_on_batch(concat(sharp, generated), [1]*B + [0]*B)``; train.lua
  ``errD = (errD_real + errD_fake) / 2``).
- ``g_adv``: -log(D(G(x)) + adv_epsilon) (losses.py ``adversarial_loss``; train.lua
  ``BCECriterion(D(fake), 1)``).
- ``g_perceptual``: distance between VGG16 features of G(x) and the sharp image (before its weight).
- ``g_l1``: mean absolute error between G(x) and the sharp image (before its weight).
- ``g_total``: ``adv_weight * g_adv + perceptual_weight * g_perceptual + l1_weight * g_l1``.

Update schedules (Python-static flags of the config, see config.py):

- ``keras`` preset: the fakes for the D step come from G in inference mode (``g.predict``), made
  before any training-mode forward of G in the step (Keras 3 moves G's BatchNorm moving averages
  during a training-mode call, so later fakes would see this batch's statistics); one D
  step on the joint real + fake batch; then TWO generator steps, each with its own Adam, as
  main.py's ``d_on_g.train_on_batch`` (adversarial) and ``g.train_on_batch`` (content). Unlike
  Keras 2's ``d_on_g``, the adversarial step changes only G's variables.
- ``paper`` preset: one training-mode G forward; D steps on real and fake (separate forwards); G
  steps once on the summed loss computed from that same forward (train.lua createRealFake, fDx,
  fGx), D re-evaluated after its update.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from common import losses
from common.gan import GANModel
from common.precision import uses_loss_scaling
from dgf_deblur.config import Config

LOSS_NAMES = ("d_loss", "g_adv", "g_perceptual", "g_l1", "g_total")


def make_optimizer(cfg: Config, name: str) -> keras.optimizers.Adam:
    """Adam with the preset's settings (main.py: Keras defaults; train.lua: 3e-4, beta1 0.5)."""
    return keras.optimizers.Adam(learning_rate=cfg.lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2,
                                 epsilon=cfg.adam_epsilon, name=name)


def make_perceptual_loss(cfg: Config, weights):
    """The content-feature loss: VGG features (``weights``: "imagenet", a path, or None = random),
    or, when ``weights == "l1-fallback"``, plain L1 (the offline sample demo)."""
    if weights == "l1-fallback":
        return losses.l1
    return losses.PerceptualLoss(
        network=cfg.perceptual_network, layer=cfg.perceptual_layer,
        preprocess=cfg.perceptual_preprocess, distance=cfg.perceptual_distance, weights=weights,
    )


class DGFGAN(GANModel):
    """DGF generator + discriminator with the preset's update schedule.

    Args:
        generator, discriminator: from :mod:`dgf_deblur.model` (images in [-1, 1]).
        config: the run's :class:`~dgf_deblur.config.Config`.
        perceptual_loss: ``(sharp, restored) -> float32 scalar`` (see :func:`make_perceptual_loss`).
    """

    loss_names = LOSS_NAMES

    def __init__(self, generator, discriminator, config: Config, perceptual_loss, seed: int = 0,
                 **kwargs):
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.config = config
        self.perceptual_loss = perceptual_loss
        self.g_adv_optimizer = None

    def compile(self, g_optimizer, d_optimizer=None, g_adv_optimizer=None, **kwargs):
        """``g_adv_optimizer``: the second generator Adam of the split (``keras``) schedule."""
        super().compile(g_optimizer, d_optimizer, **kwargs)
        if self.config.split_generator_updates:
            if g_adv_optimizer is None:
                raise ValueError("split_generator_updates needs g_adv_optimizer (main.py's d_on_g Adam)")
            if uses_loss_scaling():
                g_adv_optimizer = keras.mixed_precision.LossScaleOptimizer(g_adv_optimizer)
        self.g_adv_optimizer = g_adv_optimizer

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        if self.g_adv_optimizer is not None:
            items["g_adv_optimizer"] = self.g_adv_optimizer
        return items

    def optimizers(self) -> dict:
        named = super().optimizers()
        if self.g_adv_optimizer is not None:
            named["g_adv_optimizer"] = self.g_adv_optimizer
        return named

    # ------------------------------------------------------------------ pieces
    def discriminate(self, blurred, image, training):
        """D's probabilities for ``image``; the conditional D also sees the blurred input."""
        if self.config.conditional:
            return self.discriminator([blurred, image], training=training)
        return self.discriminator(image, training=training)

    def _d_step(self, blurred, sharp, fake):
        cfg = self.config
        fake = ops.stop_gradient(fake)
        with tf.GradientTape() as tape:
            if cfg.d_joint_batch:
                # One batch holding real then fake: BN statistics over both (main.py).
                scores = self.discriminate(ops.concatenate([blurred, blurred], axis=0),
                                           ops.concatenate([sharp, fake], axis=0), training=True)
                real_scores, fake_scores = ops.split(scores, 2, axis=0)
            else:
                real_scores = self.discriminate(blurred, sharp, training=True)
                fake_scores = self.discriminate(blurred, fake, training=True)
            d_real = losses.bce_on_probabilities(ops.ones_like(real_scores), real_scores, cfg.adv_epsilon)
            d_fake = losses.bce_on_probabilities(ops.zeros_like(fake_scores), fake_scores, cfg.adv_epsilon)
            d_loss = 0.5 * (d_real + d_fake)
            scaled = self.scale(d_loss, self.d_optimizer)
        self.apply(tape, scaled, self.discriminator.trainable_variables, self.d_optimizer)
        return d_loss

    def _adversarial(self, blurred, fake):
        # Training mode, as both upstreams: D's BatchNorm normalises with the fake batch's own
        # statistics (Keras 2's frozen d_on_g and Torch's netD never switch to inference). Only
        # G's variables are updated; D's moving averages (unused in training) see the batch too.
        scores = self.discriminate(blurred, fake, training=True)
        return losses.non_saturating_generator_loss(scores, epsilon=self.config.adv_epsilon)

    def _content(self, sharp, fake):
        return self.perceptual_loss(sharp, fake), losses.l1(sharp, fake)

    def _total(self, g_adv, g_perceptual, g_l1):
        cfg = self.config
        return cfg.adv_weight * g_adv + cfg.perceptual_weight * g_perceptual + cfg.l1_weight * g_l1

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        blurred, sharp = data
        cfg = self.config
        g_vars = self.generator.trainable_variables

        if not cfg.split_generator_updates and not cfg.fakes_from_inference_mode:
            # train.lua: one G forward serves the D step and the G step.
            with tf.GradientTape() as tape:
                fake = self.generator(blurred, training=True)
                with tape.stop_recording():
                    d_loss = self._d_step(blurred, sharp, fake)
                g_adv = self._adversarial(blurred, fake)
                g_perceptual, g_l1 = self._content(sharp, fake)
                g_total = self._total(g_adv, g_perceptual, g_l1)
                scaled = self.scale(g_total, self.g_optimizer)
            self.apply(tape, scaled, g_vars, self.g_optimizer)
            return self.report(d_loss=d_loss, g_adv=g_adv, g_perceptual=g_perceptual, g_l1=g_l1,
                               g_total=g_total)

        fake = self.generator(blurred, training=not cfg.fakes_from_inference_mode)
        d_loss = self._d_step(blurred, sharp, fake)

        if cfg.split_generator_updates:
            # main.py: d_on_g.train_on_batch(blurred, [1] * B), adversarial loss only ...
            with tf.GradientTape() as tape:
                fake = self.generator(blurred, training=True)
                g_adv = self._adversarial(blurred, fake)
                scaled = self.scale(cfg.adv_weight * g_adv, self.g_adv_optimizer)
            self.apply(tape, scaled, g_vars, self.g_adv_optimizer)
            # ... then g.train_on_batch(blurred, sharp), K_1 * perceptual + K_2 * L1, its own Adam.
            with tf.GradientTape() as tape:
                fake = self.generator(blurred, training=True)
                g_perceptual, g_l1 = self._content(sharp, fake)
                content = cfg.perceptual_weight * g_perceptual + cfg.l1_weight * g_l1
                scaled = self.scale(content, self.g_optimizer)
            self.apply(tape, scaled, g_vars, self.g_optimizer)
            g_total = cfg.adv_weight * g_adv + content
        else:
            with tf.GradientTape() as tape:
                fake = self.generator(blurred, training=True)
                g_adv = self._adversarial(blurred, fake)
                g_perceptual, g_l1 = self._content(sharp, fake)
                g_total = self._total(g_adv, g_perceptual, g_l1)
                scaled = self.scale(g_total, self.g_optimizer)
            self.apply(tape, scaled, g_vars, self.g_optimizer)
        return self.report(d_loss=d_loss, g_adv=g_adv, g_perceptual=g_perceptual, g_l1=g_l1,
                           g_total=g_total)


def build_gan(cfg: Config, perceptual_weights) -> DGFGAN:
    """Generator, discriminator, losses and the preset's Adam optimisers, compiled."""
    from dgf_deblur.model import build_discriminator, build_generator

    gan = DGFGAN(build_generator(cfg), build_discriminator(cfg), cfg,
                 make_perceptual_loss(cfg, perceptual_weights), seed=cfg.seed)
    g_adv = make_optimizer(cfg, "g_adv_adam") if cfg.split_generator_updates else None
    gan.compile(make_optimizer(cfg, "g_adam"), make_optimizer(cfg, "d_adam"), g_adv_optimizer=g_adv)
    return gan
