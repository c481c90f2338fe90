"""GLCIC train step: phases, the adversarial gradient, what the discriminator sees, inference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from glcic_inpaint import data as glcic_data
from glcic_inpaint import inference
from glcic_inpaint.config import get_config
from glcic_inpaint.gan import GLCIC, build_gan, masked_mse, to_model_range
from glcic_inpaint.model import build_completion_network, build_discriminator, build_inpainter

TINY = dict(
    filters=4,
    image_size=16,
    resize_short_side=(16, 20),
    local_size=8,
    hole_min=2,
    hole_max=6,
    global_d_filters=(4, 8),
    local_d_filters=(4,),
    d_fc_units=8,
    batch_size=2,
    phase_steps=(2, 2, 6),
    steps_per_epoch=2,
)


def _config(preset="tadax", **extra):
    return get_config(preset, **{**TINY, **extra})


def _batch(seed=0, size=16):
    return tf.random.stateless_uniform((2, size, size, 3), (seed, 1), -1.0, 1.0)


def _trainable(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def _changed(before, model):
    return any(not np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_variables))


def test_masked_mse_reductions():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    completed = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    masks = np.zeros((2, 4, 5, 1), "float32")
    masks[0, 1:3, 2:4] = 1
    masks[1, 0, 0] = 1
    squared = (completed - target) ** 2 * masks
    np.testing.assert_allclose(masked_mse(target, completed, masks, "mean"), squared.mean(),
                               rtol=1e-6)
    np.testing.assert_allclose(masked_mse(target, completed, masks, "sum"),
                               squared.sum(axis=(1, 2, 3)).mean(), rtol=1e-6)


def test_value_ranges():
    x = tf.constant([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(to_model_range(x, _config("paper")), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(to_model_range(x, _config("tadax")), [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_each_phase_trains_the_right_network(preset):
    config = _config(preset)
    gan = build_gan(config, mean_color=(0.5, 0.5, 0.5))
    expected = {1: (True, False), 2: (False, True), 3: (True, True)}
    for phase, (g_moves, d_moves) in expected.items():
        gan.set_phase(phase)
        g_before, d_before = _trainable(gan.generator), _trainable(gan.discriminator)
        logs = gan.train_step(_batch(phase))
        assert _changed(g_before, gan.generator) == g_moves, phase
        assert _changed(d_before, gan.discriminator) == d_moves, phase
        assert set(logs) == {"g_mse", "g_adv", "g_total", "d_loss", "d_real", "d_fake"}
        assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["g_adv"]) > 0 and float(logs["d_real"]) > 0


def test_phase3_generator_gets_the_adversarial_gradient():
    """MSE off: the completion network still moves in phase 3, through the discriminator."""
    config = _config("tadax", mse_weight=0.0)
    gan = build_gan(config)
    gan.set_phase(3)
    before = _trainable(gan.generator)
    logs = gan.train_step(_batch())
    assert float(logs["g_total"]) == pytest.approx(config.alpha * float(logs["g_adv"]))
    assert _changed(before, gan.generator)
    # the control: with alpha = 0 as well, Adam sees zero gradients and nothing moves
    still = build_gan(_config("tadax", mse_weight=0.0, alpha=0.0))
    still.set_phase(3)
    before = _trainable(still.generator)
    still.train_step(_batch())
    assert not _changed(before, still.generator)


class _Recorder(keras.Model):
    """Wraps the discriminator and keeps every input it was given (eager only)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen = []

    def call(self, inputs, training=False):
        self.seen.append([np.asarray(t) for t in inputs])
        return self.inner(inputs, training=training)


def test_discriminator_sees_completed_images_and_local_patches():
    config = _config("paper")
    generator = build_inpainter(build_completion_network(config), config, (0.4, 0.5, 0.6))
    recorder = _Recorder(build_discriminator(config))
    gan = GLCIC(generator, recorder, config)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    gan.set_phase(2)
    data = _batch(7)
    images = to_model_range(data, config).numpy()
    fake_seed, _ = gan._seeds()
    from glcic_inpaint.masks import hole_spec, sample_holes

    holes = sample_holes(2, hole_spec(config), fake_seed)
    masks, corners = holes.masks.numpy(), holes.corners.numpy()
    gan.train_step(data)
    (real_global, real_local), (fake_global, fake_local) = recorder.seen[-2:]
    np.testing.assert_array_equal(real_global, images)
    known = masks[..., 0] < 0.5
    np.testing.assert_array_equal(fake_global[known], images[known])  # input outside the hole
    assert not np.allclose(fake_global[~known], images[~known])  # the generator inside it
    for b, (top, left) in enumerate(corners):
        np.testing.assert_array_equal(fake_local[b], fake_global[b, top:top + 8, left:left + 8])
        patch_mask = masks[b, top:top + 8, left:left + 8]
        assert patch_mask.sum() == masks[b].sum()  # the whole hole is inside the local patch
    assert real_local.shape == (2, 8, 8, 3)


def test_masks_differ_per_step_and_repeat_per_seed():
    gan = build_gan(_config("tadax"))
    first = [s.numpy() for s in gan._seeds()]
    gan.global_step.assign(1)
    second = [s.numpy() for s in gan._seeds()]
    assert not np.array_equal(first[0], second[0])
    assert not np.array_equal(first[0], first[1])  # fake and real masks are independent
    gan.global_step.assign(0)
    np.testing.assert_array_equal(gan._seeds()[0].numpy(), first[0])


def test_fit_switches_phases_and_snapshots_phase1():
    """Through fit (as the training driver runs it): phases follow the step, and the phase-1
    snapshot holds the completion network as it was after Tc steps."""
    config = _config("tadax", phase_steps=(2, 1, 4), steps_per_epoch=4)
    gan = build_gan(config)
    gan.compile(gan.g_optimizer, gan.d_optimizer, run_eagerly=True)
    seen, at_tc = [], {}

    class Driver(keras.callbacks.Callback):  # what common.training's driver does per batch
        def on_train_batch_end(self, batch, logs=None):
            seen.append(gan.phase)
            gan.global_step.assign_add(1)
            if int(gan.global_step.numpy()) == 2:
                at_tc["weights"] = gan.generator.get_weights()

    data = tf.data.Dataset.from_tensors(_batch()).repeat()
    gan.fit(data, epochs=1, steps_per_epoch=4, verbose=0, shuffle=False, callbacks=[Driver()])
    assert seen == [1, 1, 2, 3]
    for snap, ref in zip(gan.phase1_generator.get_weights(), at_tc["weights"]):
        np.testing.assert_array_equal(snap, ref)
    assert any(not np.array_equal(a, b) for a, b in
               zip(gan.phase1_generator.get_weights(), gan.generator.get_weights()))
    assert "phase1_generator" in gan.checkpoint_items()


def test_adadelta_and_adam_settings():
    from glcic_inpaint.gan import make_optimizer

    paper = make_optimizer(get_config("paper"))
    assert isinstance(paper, keras.optimizers.Adadelta)
    assert float(paper.learning_rate) == 1.0 and paper.rho == 0.9 and paper.epsilon == 1e-6
    tadax = make_optimizer(get_config("tadax"))
    assert isinstance(tadax, keras.optimizers.Adam)
    assert float(tadax.learning_rate) == pytest.approx(1e-3) and tadax.epsilon == 1e-8


# ------------------------------------------------------------------------------ inference
@pytest.mark.parametrize("preset", ["tadax", "paper"])
def test_complete_keeps_known_pixels_at_odd_sizes(preset):
    config = _config(preset)
    inpainter = build_inpainter(build_completion_network(config), config, (0.5, 0.5, 0.5))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(23, 30, 3), dtype=np.uint8)
    mask = np.zeros((23, 30, 1), np.float32)
    mask[20:23, 3:12] = 1  # touches the bottom border
    for blend in (None, "poisson"):
        out = inference.complete(inpainter, image, mask, config, blend)
        assert out.shape == image.shape and out.dtype == np.uint8
        known = mask[..., 0] < 0.5
        np.testing.assert_array_equal(out[known], image[known])


def test_poisson_blend_keeps_the_completion_in_place():
    """A perfect completion survives the blend better than fast marching alone would, the known
    pixels are untouched, and the caller's mask is not modified (OpenCV's seamlessClone writes
    into its mask argument)."""
    import cv2

    y, x = np.mgrid[0:60, 0:70]
    image = np.stack([128 + 100 * np.sin(x / 4.0), 128 + 100 * np.sin(y / 4.0),
                      128 + 60 * np.sin((x + y) / 5.0)], axis=-1).astype(np.uint8)
    mask = np.zeros((60, 70, 1), np.float32)
    mask[10:25, 15:35] = 1
    hole = mask[..., 0] > 0.5
    saved = mask.copy()
    out = inference.poisson_blend(image, mask)
    np.testing.assert_array_equal(mask, saved)
    telea = cv2.inpaint(image, hole.astype(np.uint8) * 255, 1, cv2.INPAINT_TELEA)
    blend_error = np.abs(out.astype(int) - image)[hole].mean()
    assert blend_error < 0.9 * np.abs(telea.astype(int) - image)[hole].mean()
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_array_equal(inference.poisson_blend(image, np.zeros_like(mask)), image)


def test_hole_metrics_and_mean_fill():
    image = np.full((16, 16, 3), 100, np.uint8)
    image[4:8, 4:8] = 200
    mask = np.zeros((16, 16, 1), np.float32)
    mask[4:8, 4:8] = 1
    assert inference.hole_psnr(image, image, mask) == float("inf")
    filled = inference.mean_fill(image, mask)
    assert (filled[4:8, 4:8] == 100).all() and (filled[mask[..., 0] < 0.5] == 100).all()
    expected = 10 * np.log10(1 / ((100 / 255) ** 2))
    assert inference.hole_psnr(filled, image, mask) == pytest.approx(expected)
    assert inference.hole_ssim(image, image, mask) == pytest.approx(1.0)
    assert np.isnan(inference.hole_psnr(image, image, np.zeros_like(mask)))
    shown = inference.masked_display(image, mask)
    assert (shown[4:8, 4:8] == 255).all()


def test_fit_square_and_mean_color():
    from common.data import ImageSource
    from common.image_io import write_image

    image = np.zeros((30, 50, 3), np.uint8)
    image[:, 25:] = 255
    out = inference.fit_square(image, 20)
    assert out.shape == (20, 20, 3)
    mask = np.zeros((30, 50, 1), np.float32)
    mask[:, 25:] = 1
    fitted = inference.fit_square(mask, 20, nearest=True)
    assert fitted.shape == (20, 20, 1) and set(np.unique(fitted)) <= {0.0, 1.0}
    np.testing.assert_array_equal(fitted[..., 0] > 0.5, out[..., 0] > 127)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, colour in enumerate(((255, 0, 0), (0, 0, 255))):
            paths.append(write_image(Path(folder) / f"{i}.png",
                                     np.full((4, 6, 3), colour, np.uint8)))
        source = ImageSource(paths)
        assert glcic_data.dataset_mean_color(source, _config("paper")) == (0.5, 0.0, 0.5)
        assert glcic_data.dataset_mean_color(source, _config("tadax")) == (0.0, -1.0, 0.0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_train_step_under_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    try:
        gan = build_gan(_config("paper"), mean_color=(0.5, 0.5, 0.5))
        if policy == "mixed_float16":
            assert isinstance(gan.g_optimizer, keras.mixed_precision.LossScaleOptimizer)
        for phase in (1, 2, 3):
            gan.set_phase(phase)
            before = _trainable(gan.generator)
            logs = gan.train_step(_batch(phase))
            assert all(np.isfinite(float(v)) for v in logs.values())
            if phase != 2:
                assert _changed(before, gan.generator)
        ones = tf.ones((2, 16, 16, 1))
        assert gan.generator([_batch(), ones]).dtype == "float32"
    finally:
        keras.config.set_dtype_policy("float32")
