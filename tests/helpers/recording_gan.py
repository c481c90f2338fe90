"""DeblurGAN that records every optimizer step, for the same-state gradient parity tests."""

from __future__ import annotations

import numpy as np

from deblur_gan.gan import DeblurGAN


class RecordingDeblurGAN(DeblurGAN):
    """Each optimizer step appends ``(optimizer name, {variable path: gradient}, state)``, where
    ``state`` is ``{model name: {variable path: value}}`` of every weight of G and D (BatchNorm
    statistics included) as the step found them. Run it eagerly (``run_eagerly=True``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records = []

    def apply(self, tape, scaled_loss, variables, optimizer):
        grads = tape.gradient(scaled_loss, variables)
        state = {m.name: {w.path: np.array(w) for w in m.weights} for m in (self.generator, self.discriminator)}
        self.records.append((optimizer.name, {v.path: np.array(g) for v, g in zip(variables, grads)}, state))
        optimizer.apply(grads, variables)
