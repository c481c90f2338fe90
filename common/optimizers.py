"""Adam with the epsilon where a recipe's framework put it.

Keras (2 and 3), Lasagne and Torch7 ``optim.adam`` fold the bias corrections into the step size and
add epsilon to sqrt(v) *before* correcting it (the "epsilon hat" form at the end of §2 of
Kingma & Ba 2015):

    p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

PyTorch ``torch.optim.Adam`` adds it *after* correcting v:

    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

The two agree when eps is negligible next to sqrt(v), but in the first steps Keras' eps acts like
PyTorch's eps / sqrt(1 - b2^t) (3.2e-7 instead of 1e-8 at t = 1 with b2 = 0.999). Recipes ported
from PyTorch use :class:`TorchAdam`; recipes from Keras 2 use ``keras.optimizers.Adam``.
"""

from __future__ import annotations

import keras
from keras import ops

EPSILON_PLACEMENTS = ("pytorch", "keras")


@keras.saving.register_keras_serializable(package="gan_restoration")
class TorchAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with PyTorch's update (``torch.optim.Adam``, foreach=False path).

    Same constructor, slots (momentums, velocities) and checkpoints as Keras' Adam; only where
    epsilon enters differs (module docstring). ``amsgrad=True`` follows PyTorch's AMSGrad (the
    running maximum of v, then the same bias correction).
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        bias_correction1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
        bias_correction2 = 1 - ops.power(ops.cast(self.beta_2, dtype), step)

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        # torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            v_max = self._velocity_hats[self._get_variable_index(variable)]
            self.assign(v_max, ops.maximum(v_max, v))
            v = v_max
        # torch: denom = (exp_avg_sq.sqrt() / sqrt(bias_correction2)).add_(eps)
        denom = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(bias_correction2)), ops.cast(self.epsilon, dtype))
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / bias_correction1), denom))


def make_adam(learning_rate, beta_1, beta_2, epsilon, placement: str = "keras", name: str | None = None):
    """``TorchAdam`` for ``placement="pytorch"``, ``keras.optimizers.Adam`` for ``"keras"``."""
    if placement not in EPSILON_PLACEMENTS:
        raise ValueError(f"epsilon placement must be one of {EPSILON_PLACEMENTS}, got {placement!r}")
    cls = TorchAdam if placement == "pytorch" else keras.optimizers.Adam
    return cls(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name)
