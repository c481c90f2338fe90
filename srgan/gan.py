"""The SRGAN training model: SRResNet pretraining and the adversarial stage in one train_step.

Logged losses (fixed names, TensorBoard and the progress bar):

``d_loss``
    Discriminator BCE, the mean of the real and the fake terms.
``g_adv``
    ``-log D(G(x))``, i.e. BCE of D's output on the SR images against label 1.
``g_content``
    The VGG feature MSE (or the L1 fallback of the offline sample demo).
``g_pixel``
    MSE between SR and HR in [-1, 1].
``g_total``
    ``pixel_weight * g_pixel + content_weight * g_content + adv_weight * g_adv``.

In stage ``srresnet`` only ``g_pixel`` and ``g_total`` are non-zero and there is no discriminator.

One adversarial step (stage ``srgan``):

0. With ``d_fakes_inference_bn`` (bubbliiiing's ``G.predict``), the critic's fakes are made first:
   ``G(lr)`` in inference mode, with G's BatchNorm moving averages as they were before the step.
1. ``sr = G(lr)`` with BatchNorm in training mode, recorded for the generator's gradient (Keras 3
   moves G's moving averages here).
2. The discriminator is updated on the HR batch (label 1) and on the fakes (label 0): those of
   step 0, or else ``sr`` itself without gradient. The update is either two updates, real then
   fake (``d_split_update``; bubbliiiing's two ``train_on_batch`` calls), or one update on their
   mean.
3. The generator is updated through the *updated* discriminator (batch statistics, as the
   combined Keras 2 model used them) on ``g_total``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from common import losses
from common.gan import GANModel
from srgan.config import Config


class SRGAN(GANModel):
    loss_names = ("d_loss", "g_adv", "g_content", "g_pixel", "g_total")

    def __init__(self, generator, discriminator=None, *, config: Config, content_loss=None,
                 seed: int = 0, **kwargs):
        """``content_loss(hr, sr) -> float32 scalar`` (e.g. a :class:`common.losses.PerceptualLoss`)
        is needed when ``config.content_weight > 0`` in stage ``srgan``."""
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.cfg = config
        self.content_loss = content_loss
        if config.stage == "srgan" and discriminator is None:
            raise ValueError("stage srgan needs a discriminator")
        if config.stage == "srgan" and config.content_weight > 0 and content_loss is None:
            raise ValueError("content_weight > 0 needs a content_loss")

    def compile(self, g_optimizer, d_optimizer=None, **kwargs):
        """With ``config.shared_optimizer`` (stage srgan) ``g_optimizer`` serves D too and
        ``d_optimizer`` is ignored: one Adam whose step counter advances at every D and G update,
        as bubbliiiing's train.py compiles D_model and Combine_model with the same instance."""
        shared = self.cfg.shared_optimizer and self.discriminator is not None
        super().compile(g_optimizer, None if shared else d_optimizer, **kwargs)
        if shared:
            self.d_optimizer = self.g_optimizer
            # Built on both networks now: its first apply (to D's variables) would otherwise build
            # it for D's variables alone.
            self.g_optimizer.build(self.discriminator.trainable_variables
                                   + self.generator.trainable_variables)

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        if self.d_optimizer is self.g_optimizer:
            items.pop("d_optimizer", None)
        return items

    # ------------------------------------------------------------------------------------------
    def train_step(self, data):
        lr, hr = data
        hr = tf.cast(hr, tf.float32)
        if self.cfg.stage == "srresnet":
            return self._srresnet_step(lr, hr)
        return self._srgan_step(lr, hr)

    def _srresnet_step(self, lr, hr):
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            g_pixel = losses.l2(hr, sr)
            g_total = self.cfg.pixel_weight * g_pixel
            scaled = self.scale(g_total, self.g_optimizer)
        self.apply(tape, scaled, self.generator.trainable_variables, self.g_optimizer)
        zero = tf.zeros((), tf.float32)
        return self.report(d_loss=zero, g_adv=zero, g_content=zero, g_pixel=g_pixel, g_total=g_total)

    def _d_update(self, loss_fn):
        with tf.GradientTape() as tape:
            loss = loss_fn()
            scaled = self.scale(loss, self.d_optimizer)
        self.apply(tape, scaled, self.discriminator.trainable_variables, self.d_optimizer)
        return loss

    def _discriminator_step(self, hr, fake):
        d = self.discriminator

        def real_loss():
            return losses.bce_on_probabilities(1.0, d(hr, training=True))

        def fake_loss():
            return losses.bce_on_probabilities(0.0, d(fake, training=True))

        if self.cfg.d_split_update:
            real = self._d_update(real_loss)
            fake_term = self._d_update(fake_loss)
            return 0.5 * (real + fake_term)
        return self._d_update(lambda: 0.5 * (real_loss() + fake_loss()))

    def _srgan_step(self, lr, hr):
        c = self.cfg
        if c.d_fakes_inference_bn:
            # utils_fit.fit_one_epoch calls G.predict(lr) before any training-mode forward of G.
            # It must come first here too: a training-mode call moves G's BatchNorm moving
            # averages at once, and fakes made after it would reflect the current batch.
            fake = self.generator(lr, training=False)
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            with tape.stop_recording():
                if not c.d_fakes_inference_bn:
                    fake = tf.stop_gradient(sr)
                d_loss = self._discriminator_step(hr, fake)
            g_pixel = losses.l2(hr, sr)
            if self.content_loss is not None and c.content_weight > 0:
                g_content = tf.cast(self.content_loss(hr, sr), tf.float32)
            else:
                g_content = tf.zeros((), tf.float32)
            g_adv = losses.bce_on_probabilities(1.0, self.discriminator(sr, training=True))
            g_total = c.pixel_weight * g_pixel + c.content_weight * g_content + c.adv_weight * g_adv
            scaled = self.scale(g_total, self.g_optimizer)
        self.apply(tape, scaled, self.generator.trainable_variables, self.g_optimizer)
        return self.report(d_loss=d_loss, g_adv=g_adv, g_content=g_content, g_pixel=g_pixel,
                           g_total=g_total)


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """Adam with the preset's betas and epsilon; the driver sets the learning rate every step."""
    return keras.optimizers.Adam(learning_rate=config.lr, beta_1=config.beta_1,
                                 beta_2=config.beta_2, epsilon=config.adam_epsilon)
