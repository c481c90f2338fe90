"""DeblurGAN's adversarial training step (keras-io GAN shape) and what train.py assembles around it.

Logged losses, the same names for both presets:

- ``d_loss``: the critic loss of the last critic update. ``official``: E[D(fake)] - E[D(real)] +
  gp_weight * gp. ``keras-port``: 0.5 * (mean(+1 * D(real)) + mean(-1 * D(fake))), as the
  port's ``d_loss = 0.5 * np.add(d_loss_fake, d_loss_real)``.
- ``gp``: the gradient penalty before its weight (0 when ``gp_weight`` is 0).
- ``g_adv``: the generator's adversarial term (official: -E[D(G(x))]; Keras port:
  mean(+1 * D(G(x)))).
- ``g_content``: the content term before its weight (perceptual MSE, or L1 / L2).
- ``g_total``: ``adv_weight * g_adv + content_weight * g_content``, the loss G minimises.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from common import losses
from common.gan import GANModel
from common.optimizers import make_adam
from deblur_gan.config import Config

LOSS_NAMES = ("d_loss", "gp", "g_adv", "g_content", "g_total")


class DeblurGAN(GANModel):
    """Generator + critic with DeblurGAN's update (``config.update_style``).

    Args:
        generator, discriminator: from :mod:`deblur_gan.model` (images in [-1, 1]).
        config: the run's :class:`~deblur_gan.config.Config`.
        content_loss: ``(sharp, restored) -> float32 scalar``; e.g. a
            :class:`common.losses.PerceptualLoss`, :func:`common.losses.l1`.
        seed: seeds the gradient-penalty mixing factors (checkpointed by the base class).
    """

    loss_names = LOSS_NAMES

    def __init__(self, generator, discriminator, config: Config, content_loss, seed: int = 0, **kwargs):
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.config = config
        self.content_loss = content_loss

    def compile(self, g_optimizer, d_optimizer=None, **kwargs):
        super().compile(g_optimizer, d_optimizer, **kwargs)
        # create the optimizer slots now, not inside the critic loop of the first traced step
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    # ------------------------------------------------------------------ pieces
    def _critic_loop(self, update, sharp, fake):
        """Run ``update(sharp, fake)`` ``critic_updates`` times; returns the last (d_loss, gp).

        On one device the updates run in a tf.while_loop, so the traced graph holds one critic
        update instead of five (a much shorter first step). Under a tf.distribute strategy the loop
        is unrolled, as cross-replica gradient reduction inside a while_loop is not supported there.
        """
        n = self.config.critic_updates
        if n == 1 or tf.distribute.has_strategy() or tf.executing_eagerly():
            for _ in range(n):
                d_loss, gp = update(sharp, fake)
            return d_loss, gp

        def body(i, _d_loss, _gp):
            d_loss, gp = update(sharp, fake)
            return i + 1, tf.cast(d_loss, tf.float32), tf.cast(gp, tf.float32)

        _, d_loss, gp = tf.while_loop(lambda i, *_: i < n, body,
                                      (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
        return d_loss, gp

    def _penalty(self, sharp, fake):
        if self.config.gp_weight <= 0:
            return tf.constant(0.0, tf.float32)
        return losses.gradient_penalty(self.discriminator, sharp, fake, self.seed_generator,
                                       mode=self.config.gp_variant)

    def _critic_update_official(self, sharp, fake):
        """One critic step of DiscLossWGANGP: E[D(fake)] - E[D(real)] + lambda * GP."""
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_fake = self.discriminator(fake, training=True)
            d_real = self.discriminator(sharp, training=True)
            gp = self._penalty(sharp, fake)
            d_loss = losses.wasserstein_critic_loss(d_real, d_fake) + self.config.gp_weight * gp
            scaled = self.scale(d_loss, self.d_optimizer)
        self.apply(tape, scaled, d_vars, self.d_optimizer)
        return d_loss, gp

    def _critic_update_keras_port(self, sharp, fake):
        """d.train_on_batch(sharp, +1) then d.train_on_batch(fake, -1): two optimizer steps.

        The port has no penalty (``gp_weight`` 0); a non-zero one is added to the fake step."""
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_real = losses.signed_label_wasserstein(1.0, self.discriminator(sharp, training=True))
            scaled = self.scale(d_real, self.d_optimizer)
        self.apply(tape, scaled, d_vars, self.d_optimizer)
        with tf.GradientTape() as tape:
            d_fake = losses.signed_label_wasserstein(-1.0, self.discriminator(fake, training=True))
            gp = self._penalty(sharp, fake)
            scaled = self.scale(d_fake + self.config.gp_weight * gp, self.d_optimizer)
        self.apply(tape, scaled, d_vars, self.d_optimizer)
        return 0.5 * (d_real + d_fake) + self.config.gp_weight * gp, gp

    def _generator_losses(self, sharp, fake):
        scores = self.discriminator(fake, training=True)
        if self.config.update_style == "official":
            g_adv = losses.wasserstein_generator_loss(scores)
        else:
            g_adv = losses.signed_label_wasserstein(1.0, scores)
        g_content = tf.cast(self.content_loss(sharp, fake), tf.float32)
        g_total = self.config.adv_weight * g_adv + self.config.content_weight * g_content
        return g_adv, g_content, g_total

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        blurred, sharp = data[0], data[1]  # fit may append sample weights
        cfg = self.config
        g_vars = self.generator.trainable_variables

        if cfg.update_style == "official":
            # optimize_parameters(): forward() once, criticUpdates x backward_D on fake_B.detach(),
            # then backward_G through the updated critic on the same fake_B. The tape watches only
            # G's variables, so the critic updates in between are not recorded on it.
            with tf.GradientTape(watch_accessed_variables=False) as g_tape:
                g_tape.watch([v.value for v in g_vars])  # the tf.Variables behind Keras variables
                fake = self.generator(blurred, training=True)
                detached = tf.stop_gradient(fake)
                d_loss, gp = self._critic_loop(self._critic_update_official, sharp, detached)
                g_adv, g_content, g_total = self._generator_losses(sharp, fake)
                scaled = self.scale(g_total, self.g_optimizer)
            self.apply(g_tape, scaled, g_vars, self.g_optimizer)
        else:
            # scripts/train.py: generated = g.predict(blurred) (inference mode), critic_updates x
            # (real step, fake step), then d_on_g.train_on_batch with the critic frozen.
            fake = tf.stop_gradient(self.generator(blurred, training=False))
            d_loss, gp = self._critic_loop(self._critic_update_keras_port, sharp, fake)
            with tf.GradientTape() as g_tape:
                restored = self.generator(blurred, training=True)
                g_adv, g_content, g_total = self._generator_losses(sharp, restored)
                scaled = self.scale(g_total, self.g_optimizer)
            self.apply(g_tape, scaled, g_vars, self.g_optimizer)

        return self.report(d_loss=d_loss, gp=gp, g_adv=g_adv, g_content=g_content, g_total=g_total)


# ---------------------------------------------------------------------- schedule and optimizers
def learning_rate(config: Config, step: int, steps_per_epoch: int) -> float:
    """The official schedule: constant, then linear decay over the last ``decay_epochs`` epochs.

    Official train.py calls ``update_learning_rate()`` (lr -= lr0 / niter_decay) at the end of every
    epoch after ``niter``; so 0-based epoch k trains at lr0 * (1 - max(0, k - niter) / niter_decay),
    with niter = epochs - decay_epochs (the last epoch at lr0 / niter_decay, reaching 0 after it).
    """
    if config.decay_epochs <= 0:
        return float(config.lr)
    epoch = step // max(1, steps_per_epoch)
    constant = config.epochs - config.decay_epochs
    done = max(0, epoch - constant)
    return float(config.lr) * max(0.0, 1.0 - done / config.decay_epochs)


def make_optimizer(config: Config, name: str) -> keras.optimizers.Adam:
    """Adam(lr, beta_1, beta_2, epsilon) as both upstreams (official: betas (0.5, 0.999)), with
    epsilon where their framework adds it (``adam_epsilon_placement``: PyTorch or Keras 2)."""
    return make_adam(config.lr, config.beta_1, config.beta_2, config.adam_epsilon,
                     config.adam_epsilon_placement, name=name)


def make_content_loss(config: Config, vgg_weights="imagenet"):
    """The content term: VGG perceptual MSE (``vgg_weights``: "imagenet", a path, or None = random),
    or L1 / L2 on pixels."""
    if config.content_loss == "l1":
        return losses.l1
    if config.content_loss == "l2":
        return losses.l2
    return losses.PerceptualLoss(
        network=config.vgg_network, layer=config.vgg_layer, preprocess=config.vgg_preprocess,
        distance="mse", weights=vgg_weights, pre_activation=config.vgg_pre_activation,
    )
