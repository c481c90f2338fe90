"""GLCIC hole masks: bounds, local patch, inclusive size ranges, user mask files."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.errors import UserError
from glcic_inpaint import masks
from glcic_inpaint.config import PRESETS, get_config

H, W, L = 20, 24, 10  # small image, local patch
HOLE_MIN, HOLE_MAX = 3, 6
N = 3000  # samples: every hole size and every extreme position appears


def _draw(placement, holes=(1, 1), batch=N, seed=(1, 2), hole_max=HOLE_MAX):
    spec = masks.HoleSpec((H, W), L, HOLE_MIN, hole_max, holes, placement)
    batch_holes = masks.sample_holes(batch, spec, seed)
    return (
        batch_holes.masks.numpy(),
        batch_holes.corners.numpy(),
        batch_holes.boxes.numpy(),
        batch_holes.valid.numpy(),
    )


def _check_rasterised(m, boxes, valid):
    """The mask is exactly the union of the valid boxes (no off-by-one row / column)."""
    expected = np.zeros(m.shape[:3], bool)
    for b in range(m.shape[0]):
        for (top, left, h, w), ok in zip(boxes[b], valid[b]):
            if ok:
                expected[b, top : top + h, left : left + w] = True
    np.testing.assert_array_equal(m[..., 0] > 0.5, expected)
    assert set(np.unique(m)) <= {0.0, 1.0}


@pytest.mark.parametrize("placement", ["random", "centred"])
def test_single_hole_inside_image_and_local_patch(placement):
    m, corners, boxes, valid = _draw(placement)
    assert m.shape == (N, H, W, 1) and m.dtype == np.float32
    assert valid.all()
    _check_rasterised(m, boxes, valid)
    top, left, h, w = boxes[:, 0].T
    ctop, cleft = corners.T
    # sides inclusive [min, max], every value drawn
    assert set(h) == set(range(HOLE_MIN, HOLE_MAX + 1))
    assert set(w) == set(range(HOLE_MIN, HOLE_MAX + 1))
    # inside the image
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= H).all() and (left + w <= W).all()
    # the local patch is inside the image and contains the hole
    assert (ctop >= 0).all() and (cleft >= 0).all()
    assert (ctop + L <= H).all() and (cleft + L <= W).all()
    assert (top >= ctop).all() and (left >= cleft).all()
    assert (top + h <= ctop + L).all() and (left + w <= cleft + L).all()
    # every pixel of every mask is inside its patch
    for b in range(0, N, 97):
        outside = m[b, ..., 0].copy()
        outside[ctop[b] : ctop[b] + L, cleft[b] : cleft[b] + L] = 0
        assert outside.sum() == 0
    # the pixel count is exactly h * w for one hole
    np.testing.assert_array_equal(m.sum(axis=(1, 2, 3)), h * w)


def test_random_placement_reaches_every_edge():
    """tadax get_points(): patch uniformly in [0, size - L], hole at [0, L - w] inside it."""
    _, corners, boxes, _ = _draw("random")
    top, left, h, w = boxes[:, 0].T
    assert set(corners[:, 0]) == set(range(0, H - L + 1))
    assert set(corners[:, 1]) == set(range(0, W - L + 1))
    assert set(top - corners[:, 0] + h) >= {L}  # touches the patch's bottom edge
    assert (top - corners[:, 0] == 0).any()  # and its top edge
    assert set(left - corners[:, 1] + w) >= {L}
    assert (left - corners[:, 1] == 0).any()


def test_centred_placement_hole_anywhere_patch_centred():
    _, corners, boxes, _ = _draw("centred")
    top, left, h, w = boxes[:, 0].T
    assert top.min() == 0 and (top + h).max() == H  # the hole reaches both image edges
    assert left.min() == 0 and (left + w).max() == W
    free = (top + (h - L) // 2 >= 0) & (top + (h - L) // 2 <= H - L)
    np.testing.assert_array_equal(corners[free, 0], (top + (h - L) // 2)[free])
    assert (corners[~free, 0] == 0).any() or (corners[~free, 0] == H - L).any()


@pytest.mark.parametrize("placement", ["random", "centred"])
def test_several_holes_all_inside_the_patch(placement):
    m, corners, boxes, valid = _draw(placement, holes=(2, 4), batch=600)
    _check_rasterised(m, boxes, valid)
    assert set(valid.sum(axis=1)) == {2, 3, 4}
    assert valid[:, :2].all()  # counts fill the first slots
    ctop, cleft = corners[:, 0:1], corners[:, 1:2]
    top, left, h, w = np.moveaxis(boxes, -1, 0)
    inside = (top >= ctop) & (left >= cleft) & (top + h <= ctop + L) & (left + w <= cleft + L)
    assert inside[valid].all()
    assert set(h[valid]) == set(range(HOLE_MIN, HOLE_MAX + 1))


def test_anywhere_placement_for_inference():
    m, _, boxes, valid = _draw("anywhere", holes=(2, 4), batch=400, hole_max=12)
    _check_rasterised(m, boxes, valid)
    top, left, h, w = np.moveaxis(boxes, -1, 0)
    assert (top >= 0).all() and (top + h <= H).all() and (left + w <= W).all()
    assert set(h[valid]) == set(range(HOLE_MIN, 13))


def test_hole_sides_equal_to_the_patch():
    """hole_max == local_size: the hole fills the patch exactly, no wrap, no overflow."""
    spec = masks.HoleSpec((12, 12), 8, 8, 8, (1, 1), "random")
    batch = masks.sample_holes(200, spec, (0, 0))
    boxes, corners = batch.boxes.numpy()[:, 0], batch.corners.numpy()
    np.testing.assert_array_equal(boxes[:, :2], corners)
    np.testing.assert_array_equal(batch.masks.numpy().sum(axis=(1, 2, 3)), 64)


def test_deterministic_and_graph_compatible():
    spec = masks.HoleSpec((H, W), L, HOLE_MIN, HOLE_MAX, (1, 3), "centred")
    a = masks.sample_holes(8, spec, (5, 7)).masks.numpy()
    b = masks.sample_holes(8, spec, (5, 7)).masks.numpy()
    c = masks.sample_holes(8, spec, (5, 8)).masks.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

    @tf.function
    def in_graph(seed):
        return masks.sample_holes(8, spec, seed).masks

    np.testing.assert_array_equal(in_graph(tf.constant([5, 7], tf.int64)).numpy(), a)


def test_crop_patches_matches_slicing():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, H, W, 3)).astype("float32")
    corners = np.array([[0, 0], [H - L, W - L], [4, 9]], "int32")
    patches = masks.crop_patches(images, corners, L).numpy()
    for b, (top, left) in enumerate(corners):
        np.testing.assert_array_equal(patches[b], images[b, top : top + L, left : left + L])


def test_crop_patches_is_differentiable():
    images = tf.Variable(tf.zeros((2, H, W, 3)))
    corners = tf.constant([[1, 2], [3, 4]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(masks.crop_patches(images, corners, L))
    grad = tape.gradient(total, images).numpy()
    assert grad.sum() == 2 * L * L * 3
    assert grad[0, 1 : 1 + L, 2 : 2 + L].min() == 1 and grad[0, 0].sum() == 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_hole_spec_from_presets(name):
    config = PRESETS[name]
    spec = masks.hole_spec(config)
    assert spec.image_size == (config.image_size, config.image_size)
    batch = masks.sample_holes(16, spec, (0, 1))
    boxes = batch.boxes.numpy()[:, 0]
    assert boxes[:, 2].min() >= config.hole_min and boxes[:, 2].max() <= config.hole_max
    assert tuple(batch.masks.shape) == (16, config.image_size, config.image_size, 1)
    if name == "tadax":
        assert (spec.hole_min, spec.hole_max, spec.local_size) == (24, 48, 64)
        assert spec.placement == "random"
    else:
        assert (spec.hole_min, spec.hole_max, spec.local_size) == (96, 128, 128)
        assert spec.placement == "centred"


def test_invalid_specs():
    with pytest.raises(ValueError):
        masks.HoleSpec((H, W), L, 4, L + 1)  # hole larger than the patch
    with pytest.raises(ValueError):
        masks.HoleSpec((H, W), W + 1, 4, 6)  # patch larger than the image
    with pytest.raises(ValueError):
        masks.HoleSpec((H, W), L, 4, 6, placement="middle")
    with pytest.raises(ValueError):
        masks.HoleSpec((H, W), L, 4, 6, holes=(0, 2))
    spec = masks.hole_spec(get_config("paper", image_size=64, local_size=32, hole_min=8,
                                      hole_max=16, resize_short_side=(64, 80)), (40, 52))
    assert spec.image_size == (40, 52)


# ----------------------------------------------------------------------------- mask files


def test_load_mask_white_is_hole(tmp_path):
    grey = np.zeros((6, 9), np.uint8)
    grey[1:3, 2:7] = 255
    grey[5, 8] = 200  # light grey counts as hole
    grey[4, 0] = 100  # dark grey does not
    Image.fromarray(grey).save(tmp_path / "m.png")
    mask = masks.load_mask(tmp_path / "m.png", shape=(6, 9, 3))
    assert mask.shape == (6, 9, 1) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask[..., 0], (grey > 127).astype(np.float32))
    rgb = np.stack([grey] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(masks.load_mask(tmp_path / "rgb.png"), mask)


def test_save_then_load_mask(tmp_path):
    mask = np.zeros((5, 7, 1), np.float32)
    mask[2:4, 1:6] = 1
    path = masks.save_mask(tmp_path / "sub" / "mask.png", mask)
    np.testing.assert_array_equal(masks.load_mask(path), mask)
    assert np.asarray(Image.open(path)).max() == 255


def test_mask_file_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        masks.load_mask(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="bad.png"):
        masks.load_mask(tmp_path / "bad.png")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(UserError, match="6x4.*8x5"):
        masks.load_mask(tmp_path / "small.png", shape=(5, 8))


def test_mask_bbox_centre():
    mask = np.zeros((10, 12), np.float32)
    assert masks.mask_bbox_centre(mask) is None
    mask[2:6, 3:9] = 1  # rows 2..5, cols 3..8
    assert masks.mask_bbox_centre(mask) == (6, 4)
