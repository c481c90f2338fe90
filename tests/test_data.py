"""common.data: sources (A/B, side-by-side, HDF5, single images) and the tf.data pipelines."""

import pickle

import numpy as np
import pytest

from common.data import (
    FolderPairSource, HDF5PairSource, SideBySidePairSource, as_user_error, bicubic_downscale,
    image_dataset, open_images, open_pairs, pair_dataset, resolve_data_dir, set_bad_item_limit,
)
from common.errors import UserError
from common.image_io import write_image


def _random(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _make_ab(root, names, shape=(24, 32, 3), b_of=lambda a: a, suffix_b=".png"):
    for k, name in enumerate(names):
        a = _random(shape, k)
        write_image(root / "A" / f"{name}.png", a)
        write_image(root / "B" / f"{name}{suffix_b}", b_of(a))
    return root


def _batches(dataset, count):
    out = []
    for batch in dataset.take(count):
        out.append(tuple(t.numpy() for t in batch) if isinstance(batch, tuple) else batch.numpy())
    return out


# ----------------------------------------------------------------------------- sources

def test_ab_folders_pair_by_stem(tmp_path):
    _make_ab(tmp_path, ["b", "a", "c"], suffix_b=".bmp")
    source = open_pairs(tmp_path)
    assert isinstance(source, FolderPairSource)
    assert source.names == ["a", "b", "c"] and len(source) == 3
    degraded, target = source.load(1)
    assert degraded.dtype == np.uint8 and degraded.shape == (24, 32, 3)
    np.testing.assert_array_equal(degraded, target)
    np.testing.assert_array_equal(degraded, _random((24, 32, 3), 0))  # "b" was made first


def test_unpaired_names_are_listed(tmp_path):
    _make_ab(tmp_path, ["x1", "x2"])
    for k in range(7):
        write_image(tmp_path / "A" / f"lonely{k}.png", _random((4, 4, 3), k))
    write_image(tmp_path / "B" / "orphan.png", _random((4, 4, 3), 0))
    with pytest.raises(UserError) as info:
        open_pairs(tmp_path)
    message = str(info.value)
    assert "7 in A/ without a partner in B/" in message and "lonely0" in message
    assert "(7 in all)" in message and "lonely6" not in message
    assert "1 in B/ without a partner in A/: orphan" in message
    assert "\n" not in message


def test_pair_size_mismatch(tmp_path):
    write_image(tmp_path / "A" / "p.png", _random((8, 8, 3), 0))
    write_image(tmp_path / "B" / "p.png", _random((8, 10, 3), 0))
    with pytest.raises(UserError, match="differ in size.*p \\(8x8 vs 10x8\\)"):
        open_pairs(tmp_path)


def test_a_without_b(tmp_path):
    write_image(tmp_path / "A" / "p.png", _random((8, 8, 3), 0))
    with pytest.raises(UserError, match="has A/ but no B/"):
        open_pairs(tmp_path)


def test_side_by_side_order(tmp_path):
    left = np.full((6, 5, 3), 10, np.uint8)
    right = np.full((6, 5, 3), 200, np.uint8)
    write_image(tmp_path / "s.png", np.concatenate([left, right], axis=1))
    source = open_pairs(tmp_path)  # default: DeblurGAN's combined images, degraded left
    assert isinstance(source, SideBySidePairSource)
    degraded, target = source.load(0)
    assert degraded.shape == (6, 5, 3) and (degraded == 10).all() and (target == 200).all()
    degraded, target = open_pairs(tmp_path, side_by_side="target_left").load(0)  # DGF data
    assert (degraded == 200).all() and (target == 10).all()
    with pytest.raises(UserError, match="order"):
        open_pairs(tmp_path, side_by_side="left")


def test_side_by_side_odd_width(tmp_path):
    write_image(tmp_path / "odd.png", _random((4, 7, 3), 0))
    with pytest.raises(UserError, match="odd width: odd.png"):
        open_pairs(tmp_path)


def test_corrupt_image_named_at_open_and_left_out(tmp_path, capsys):
    _make_ab(tmp_path, ["good"])
    write_image(tmp_path / "A" / "bad.png", _random((24, 32, 3), 0))
    (tmp_path / "B" / "bad.png").write_bytes(b"not an image")
    source = open_pairs(tmp_path)  # one unreadable pair among many is skipped, not fatal
    assert source.names == ["good"]
    err = capsys.readouterr().err
    assert err.startswith("skipped ") and "bad.png: cannot read image" in err


def test_resolve_data_dir(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    assert resolve_data_dir(tmp_path) == tmp_path / "train"
    assert resolve_data_dir(tmp_path, "train") == tmp_path / "train"
    assert resolve_data_dir(tmp_path, "test") == tmp_path / "test"
    flat = tmp_path / "flat"
    flat.mkdir()
    assert resolve_data_dir(flat) == flat and resolve_data_dir(flat, "test") == flat
    with pytest.raises(UserError) as info:
        resolve_data_dir(tmp_path / "missing")
    assert "missing: no such file or folder" in str(info.value)
    assert "A" in str(info.value) and "side-by-side" in str(info.value)
    assert ".h5" in str(info.value)


def test_open_pairs_with_splits(tmp_path):
    _make_ab(tmp_path / "train", ["t1", "t2"])
    _make_ab(tmp_path / "test", ["v1"])
    assert open_pairs(tmp_path).names == ["t1", "t2"]
    assert open_pairs(tmp_path, split="test").names == ["v1"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: no image pairs found"):
        open_pairs(tmp_path / "empty")


def test_open_images(tmp_path):
    for name in ["b", "a"]:
        write_image(tmp_path / "train" / f"{name}.png", _random((5, 6, 3), 1))
    write_image(tmp_path / "test" / "z.jpg", _random((5, 6, 3), 2))
    write_image(tmp_path / "test" / "masks" / "z.png", np.zeros((5, 6), np.uint8))
    assert open_images(tmp_path).names == ["a", "b"]
    source = open_images(tmp_path, split="test")
    assert source.names == ["z"] and source.load(0).shape == (5, 6, 3)
    assert open_images(tmp_path / "test" / "z.jpg").names == ["z"]
    (tmp_path / "none").mkdir()
    with pytest.raises(UserError, match="none: no images"):
        open_images(tmp_path / "none")


# ----------------------------------------------------------------------------- HDF5

def _side_by_side_split(folder, count, seed):
    rng = np.random.default_rng(seed)
    expected = []
    for k in range(count):
        sharp = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        blurred = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        write_image(folder / f"img{k}.png", np.concatenate([sharp, blurred], axis=1))
        expected.append((blurred, sharp))
    return expected


def test_hdf5_round_trip_streams_from_disk(tmp_path):
    import h5py

    from common.datasets_tools import build_hdf5

    train = _side_by_side_split(tmp_path / "sbs" / "train", 5, 0)
    test = _side_by_side_split(tmp_path / "sbs" / "test", 2, 1)
    h5_path = tmp_path / "data.h5"
    counts = build_hdf5(tmp_path / "sbs", h5_path, size=16, order="target_left")
    assert counts == {"train": 5, "test": 2}
    with h5py.File(h5_path, "r") as h5:
        assert h5["train_data_full"].shape == (5, 16, 16, 3)
        assert h5["train_data_full"].dtype == np.uint8
        assert h5["test_data_blur"].shape == (2, 16, 16, 3)

    source = open_pairs(h5_path)
    assert isinstance(source, HDF5PairSource) and source.split == "train" and len(source) == 5
    assert source.names == [f"img{k}" for k in range(5)]
    # Nothing but metadata is held: no arrays, no open file before the first read.
    assert source._handle is None
    assert not any(isinstance(v, (np.ndarray, h5py.Dataset)) for v in vars(source).values())
    degraded, target = source.load(3)
    np.testing.assert_array_equal(degraded, train[3][0])
    np.testing.assert_array_equal(target, train[3][1])
    assert not any(isinstance(v, (np.ndarray, h5py.Dataset)) for v in vars(source).values())
    clone = pickle.loads(pickle.dumps(source))  # picklable; reopens lazily
    np.testing.assert_array_equal(clone.load(1)[1], train[1][1])
    source.close()

    test_source = open_pairs(h5_path, split="test")
    np.testing.assert_array_equal(test_source.load(1)[0], test[1][0])
    # A folder holding the .h5 file works too (both splits inside).
    assert open_pairs(tmp_path, split="test").split == "test"
    with pytest.raises(UserError, match="no val_data_full"):
        open_pairs(h5_path, split="val")


def test_hdf5_dataset_pipeline(tmp_path):
    from common.datasets_tools import build_hdf5

    _side_by_side_split(tmp_path / "sbs" / "train", 3, 0)
    build_hdf5(tmp_path / "sbs", tmp_path / "d.h5", size=16)
    dataset = pair_dataset(open_pairs(tmp_path / "d.h5"), 2, crop=(8, 8), seed=0)
    degraded, target = _batches(dataset, 2)[1]
    assert degraded.shape == (2, 8, 8, 3) and target.shape == (2, 8, 8, 3)


# ----------------------------------------------------------------------------- pipelines

def _varied_pairs(root, b_of=lambda a: a):
    """Pairs of different sizes (one smaller than the crop)."""
    for k, shape in enumerate([(24, 32, 3), (20, 20, 3), (12, 30, 3), (30, 26, 3), (25, 25, 3)]):
        a = _random(shape, k)
        write_image(root / "A" / f"p{k}.png", a)
        write_image(root / "B" / f"p{k}.png", b_of(a))
    return open_pairs(root)


def test_pair_dataset_shapes_and_range(tmp_path):
    source = _varied_pairs(tmp_path)
    batches = _batches(pair_dataset(source, 2, crop=(16, 16), seed=3), 4)
    for degraded, target in batches:
        assert degraded.shape == (2, 16, 16, 3) and degraded.dtype == np.float32
        assert degraded.min() >= -1.0 and degraded.max() <= 1.0
        np.testing.assert_array_equal(degraded, target)  # identical images: same crop and flip
    assert any(b[0].min() < -0.9 and b[0].max() > 0.9 for b in batches)


def test_pair_dataset_alignment(tmp_path):
    # B = 255 - A, so an aligned crop/flip/resize gives target == -degraded exactly.
    source = _varied_pairs(tmp_path, b_of=lambda a: 255 - a)
    for kwargs in ({"crop": (16, 16)}, {"crop": (8, 12), "resize": (20, 24)}):
        for degraded, target in _batches(pair_dataset(source, 2, seed=5, **kwargs), 5):
            np.testing.assert_allclose(target, -degraded, atol=1e-5)


def test_small_images_are_upscaled_to_fit(tmp_path):
    write_image(tmp_path / "A" / "s.png", _random((10, 6, 3), 0))
    write_image(tmp_path / "B" / "s.png", _random((10, 6, 3), 0))
    (degraded, _), = _batches(pair_dataset(open_pairs(tmp_path), 1, crop=(16, 12)), 1)
    assert degraded.shape == (1, 16, 12, 3)


def test_resize_without_crop(tmp_path):
    source = _varied_pairs(tmp_path)
    (degraded, target), = _batches(pair_dataset(source, 5, resize=(8, 8), flip=False), 1)
    assert degraded.shape == (5, 8, 8, 3)


def test_determinism_and_seed(tmp_path):
    source = _varied_pairs(tmp_path)
    first = _batches(pair_dataset(source, 2, crop=(8, 8), seed=1), 6)
    again = _batches(pair_dataset(source, 2, crop=(8, 8), seed=1), 6)
    other = _batches(pair_dataset(source, 2, crop=(8, 8), seed=2), 6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
    assert any(not np.array_equal(a[0], c[0]) for a, c in zip(first, other))


def test_resume_gives_the_same_batches(tmp_path):
    source = _varied_pairs(tmp_path)  # 5 items, batch 2: batches cross epoch boundaries
    full = _batches(pair_dataset(source, 2, crop=(8, 8), seed=7), 7)
    for k in (1, 2, 4):
        resumed = _batches(pair_dataset(source, 2, crop=(8, 8), seed=7, start_step=k), 7 - k)
        for step, batch in enumerate(resumed, start=k):
            np.testing.assert_array_equal(batch[0], full[step][0])
            np.testing.assert_array_equal(batch[1], full[step][1])


def test_each_epoch_is_a_permutation(tmp_path):
    for k in range(5):
        write_image(tmp_path / f"{k}.png", np.full((4, 4, 3), 10 * k, np.uint8))
    source = open_images(tmp_path)
    dataset = image_dataset(source, 5, crop=None, flip=False, seed=4)
    epochs = [sorted(np.round((b[:, 0, 0, 0] + 1) * 127.5).astype(int).tolist())
              for b in _batches(dataset, 3)]
    assert all(e == [0, 10, 20, 30, 40] for e in epochs)
    ordered = _batches(image_dataset(source, 2, shuffle=False, repeat=False, flip=False), 10)
    assert len(ordered) == 2  # one epoch, remainder dropped
    assert np.round((ordered[0][:, 0, 0, 0] + 1) * 127.5).astype(int).tolist() == [0, 10]


def test_image_dataset_resize_short_side(tmp_path):
    write_image(tmp_path / "w.png", _random((20, 40, 3), 0))
    write_image(tmp_path / "t.png", _random((36, 18, 3), 1))
    dataset = image_dataset(open_images(tmp_path), 2, crop=(12, 12), resize_short_side=(14, 18),
                            seed=0)
    for batch in _batches(dataset, 3):
        assert batch.shape == (2, 12, 12, 3) and batch.dtype == np.float32
        assert -1.0 <= batch.min() and batch.max() <= 1.0
    again = _batches(image_dataset(open_images(tmp_path), 2, crop=(12, 12),
                                   resize_short_side=(14, 18), seed=0, start_step=2), 1)
    np.testing.assert_array_equal(again[0], _batches(dataset, 3)[2])


def test_pipeline_error_carries_the_user_error(tmp_path):
    _make_ab(tmp_path, ["a", "b"])
    source = FolderPairSource(tmp_path / "A", tmp_path / "B", check_sizes=False)
    (tmp_path / "B" / "b.png").write_bytes(b"broken")
    set_bad_item_limit(0)  # training skips up to the limit of unreadable items (test_faults.py)
    with pytest.raises(Exception) as info:
        _batches(pair_dataset(source, 2, crop=(8, 8), shuffle=False), 1)
    set_bad_item_limit(None)
    error = as_user_error(info.value)
    assert error is not None and str(error).startswith(str(tmp_path / "B" / "b.png"))
    assert "cannot read image" in str(error)


def test_bicubic_downscale():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    signed = tf.constant(rng.uniform(-1, 1, (2, 16, 12, 3)), tf.float32)
    low = bicubic_downscale(signed, 4)
    assert low.shape == (2, 4, 3, 3) and low.dtype == tf.float32
    assert float(tf.reduce_min(low)) >= -1.0 and float(tf.reduce_max(low)) <= 1.0
    reference = tf.image.resize(signed, (4, 3), method="bicubic", antialias=True)
    np.testing.assert_allclose(low.numpy(), np.clip(reference.numpy(), -1, 1), atol=1e-6)
    # [0, 1] input: a checkerboard overshoots, and is clipped to [0, 1].
    board = np.indices((16, 16)).sum(0) % 2
    board = tf.constant(np.repeat(board[..., None], 3, -1)[None], tf.float32)
    out = bicubic_downscale(board, 3)
    assert out.shape == (1, 5, 5, 3) and float(tf.reduce_min(out)) >= 0.0
    assert float(tf.reduce_max(out)) <= 1.0
    single = bicubic_downscale(np.zeros((10, 10, 3), np.uint8) + 7, 2)
    assert single.shape == (5, 5, 3) and single.dtype == tf.uint8
    assert (single.numpy() == 7).all()
