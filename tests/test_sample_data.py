"""common.sample_data: the bundled sample sets build with the documented layout."""

import time

import numpy as np
import pytest

from common import sample_data
from common.data import open_images, open_pairs
from common.errors import UserError
from common.image_io import list_images, read_image
from common.sample_data import SAMPLE_KINDS, sample_dir


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(sample_data.ENV_VAR, str(root))
        start = time.perf_counter()
        folders = {kind: sample_dir(kind) for kind in SAMPLE_KINDS}
        elapsed = time.perf_counter() - start
        yield root, folders, elapsed


def _sharpness(image):
    gray = image.astype(np.float64).mean(axis=2)
    return np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()


def test_all_kinds_build_quickly_in_place(sample_root):
    root, folders, elapsed = sample_root
    assert elapsed < 60  # budget 30 s on a free machine; slack for a busy one
    assert set(folders) == set(SAMPLE_KINDS)
    for kind, folder in folders.items():
        assert folder == root / kind and folder.is_dir()
    assert sorted(p.name for p in root.iterdir()) == sorted(SAMPLE_KINDS)  # no temp folders left
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 15e6


def test_blurred_pairs(sample_root):
    folder = sample_root[1]["blurred_pairs"]
    for split in ("train", "test"):
        a = [p.name for p in list_images(folder / split / "A")]
        b = [p.name for p in list_images(folder / split / "B")]
        assert a == b and len(a) >= 3
    train, test = open_pairs(folder), open_pairs(folder, split="test")
    assert len(train) >= 8 and len(test) >= 3
    assert not {n.rsplit("_", 1)[0] for n in train.names} & {n.rsplit("_", 1)[0] for n in test.names}
    for index in range(len(test)):
        blurred, sharp = test.load(index)
        assert blurred.shape == sharp.shape == (256, 256, 3)
        assert _sharpness(blurred) < 0.9 * _sharpness(sharp)
        # same scene: blurred is close to the sharp image on average
        assert abs(blurred.astype(float).mean() - sharp.astype(float).mean()) < 12


def test_side_by_side_sharp_left(sample_root):
    folder = sample_root[1]["side_by_side"]
    for split in ("train", "test"):
        files = list_images(folder / split)
        assert len(files) >= 3
        image = read_image(files[0])
        assert image.shape == (256, 512, 3)
    source = open_pairs(folder, split="test", side_by_side="target_left")
    for index in range(len(source)):
        blurred, sharp = source.load(index)
        assert _sharpness(blurred) < 0.9 * _sharpness(sharp)


def test_hr_and_lr_images(sample_root):
    folders = sample_root[1]
    for split in ("train", "test"):
        source = open_images(folders["hr_images"], split=split)
        assert len(source) >= 3
        for index in range(len(source)):
            height, width, _ = source.load(index).shape
            assert 256 <= min(height, width) <= 320 and max(height, width) <= 512
    small = open_images(folders["lr_images"])
    shapes = [small.load(i).shape for i in range(len(small))]
    assert len(shapes) >= 3 and all(max(s[:2]) <= 128 and min(s[:2]) >= 32 for s in shapes)
    assert any(s[0] % 2 or s[1] % 2 for s in shapes)  # odd sizes included


def test_inpaint_masks(sample_root):
    folder = sample_root[1]["inpaint"]
    assert len(list_images(folder / "train")) >= 8
    test_images = list_images(folder / "test")
    masks = list_images(folder / "test" / "masks")
    assert len(test_images) >= 3
    assert [p.stem for p in masks] == [p.stem for p in test_images]
    for image_path, mask_path in zip(test_images, masks):
        assert read_image(image_path).shape == (256, 256, 3)
        mask = read_image(mask_path)[..., 0]
        assert mask.shape == (256, 256) and set(np.unique(mask)) == {0, 255}
        assert 0.02 < (mask == 255).mean() < 0.5


def test_built_once_and_rebuilt_for_a_new_version(sample_root, monkeypatch):
    root, folders, _ = sample_root
    monkeypatch.setenv(sample_data.ENV_VAR, str(root))
    marker = folders["lr_images"] / ".sample_version"
    before = marker.stat().st_mtime_ns
    assert sample_dir("lr_images") == folders["lr_images"]
    assert marker.stat().st_mtime_ns == before
    monkeypatch.setattr(sample_data, "SAMPLE_VERSION", "test-version")
    sample_dir("lr_images")
    assert marker.read_text().strip() == "test-version"
    assert sorted(p.name for p in root.iterdir()) == sorted(SAMPLE_KINDS)


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(sample_data.ENV_VAR, str(tmp_path))

    def broken(root, rng):
        (root / "half.png").write_bytes(b"x")
        raise RuntimeError("crash in the middle")

    monkeypatch.setitem(sample_data._BUILDERS, "lr_images", (broken, 0))
    with pytest.raises(RuntimeError):
        sample_dir("lr_images")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="unknown sample set 'nope'"):
        sample_dir("nope")
