"""TorchAdam against numpy statements of PyTorch's and Keras 2's Adam, and against torch.optim.Adam."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.optimizers import TorchAdam, make_adam

# exactly representable in float32 (Keras keeps the learning rate and betas in float32), so float64
# variables can be compared to 1e-12
LR, B1, B2, EPS = 2.0 ** -7, 0.5, 1 - 2.0 ** -10, 2.0 ** -27


def _gradients(steps=4, shape=(3, 5)):
    rng = np.random.default_rng(0)
    # tiny gradients make sqrt(v) comparable to eps, where the two placements differ
    return [rng.normal(scale=10.0 ** rng.uniform(-9, -6), size=shape) for _ in range(steps)]


def _numpy_adam(p, grads, placement, amsgrad=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        v_max = np.maximum(v_max, v)
        vv = v_max if amsgrad else v
        if placement == "pytorch":  # torch.optim.Adam: eps after the bias correction
            p = p - LR / (1 - B1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - B2 ** t) + EPS)
        else:  # Keras 2 Adam: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); eps added to sqrt(v)
            p = p - LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t) * m / (np.sqrt(vv) + EPS)
    return p


def _keras_steps(optimizer, p0, grads):
    var = keras.Variable(p0, dtype="float64")
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g, "float64")], [var])
    return var.numpy()


@pytest.mark.parametrize("placement", ["pytorch", "keras"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_numpy_reference(placement, amsgrad):
    p0 = np.random.default_rng(1).normal(size=(3, 5))
    grads = _gradients()
    opt = make_adam(LR, B1, B2, EPS, placement)
    if amsgrad:
        opt = type(opt)(learning_rate=LR, beta_1=B1, beta_2=B2, epsilon=EPS, amsgrad=True)
    got = _keras_steps(opt, p0, grads)
    np.testing.assert_allclose(got, _numpy_adam(p0, grads, placement, amsgrad), rtol=1e-12, atol=1e-15)
    other = _numpy_adam(p0, grads, "keras" if placement == "pytorch" else "pytorch", amsgrad)
    assert np.max(np.abs(got - other)) > 1e-4  # the placements really differ on these gradients


def test_torch_adam_equals_torch_optim_adam():
    torch = pytest.importorskip("torch", reason="PyTorch (requirements-dev.txt) is needed for this reference")
    p0 = np.random.default_rng(2).normal(size=(3, 5))
    grads = _gradients(steps=5)
    param = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    ref = torch.optim.Adam([param], lr=LR, betas=(B1, B2), eps=EPS, foreach=False)
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
    got = _keras_steps(TorchAdam(learning_rate=LR, beta_1=B1, beta_2=B2, epsilon=EPS), p0, grads)
    np.testing.assert_allclose(got, param.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_torch_adam_serialises_and_builds_the_same_slots():
    opt = TorchAdam(learning_rate=3e-4, beta_1=0.5, epsilon=1e-8, name="g_adam")
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(clone) is TorchAdam and clone.get_config() == opt.get_config()
    var = keras.Variable(np.zeros((2, 2), "float32"))
    opt.build([var])
    reference = keras.optimizers.Adam()
    reference.build([var])
    assert [v.shape for v in opt.variables] == [v.shape for v in reference.variables]
    with pytest.raises(ValueError, match="placement"):
        make_adam(1e-3, 0.9, 0.999, 1e-8, "tensorflow")
