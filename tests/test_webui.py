"""The functions behind the web page (webui.restore, masks, compare, models, families), without a
browser: tiny untrained runs of SRGAN, DeblurGAN and GLCIC made directly (tests/helpers/tiny_runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from common import metrics
from common.errors import UserError
from common.image_io import read_image, write_image
from tiny_runs import make_tiny_run
from webui import compare, restore, uploads
from webui.families import FAMILIES, before_and_baseline, sample_files, sample_names
from webui.masks import choose_mask, painted_mask
from webui.models import ModelSlot, load_slots, parse_weights_flags


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("webui_runs") / "runs"
    return {family: make_tiny_run(family, root) for family in ("srgan", "deblur_gan", "glcic_inpaint")}


@pytest.fixture(autouse=True)
def page_folder(tmp_path, monkeypatch):
    """The page's temporary folder inside this test's tmp_path."""
    folder = tmp_path / "page"
    folder.mkdir()
    monkeypatch.setattr(uploads, "_ROOT", folder)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder / "uploads"))
    return folder


@pytest.fixture(scope="module")
def srgan_slot(runs):
    return ModelSlot("srgan", str(runs["srgan"]))


def _photo(path, height, width, seed=0):
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# ----------------------------------------------------------------------------- settings
def test_weights_flags_parse_and_reject():
    assert parse_weights_flags(["srgan=runs/a", "glcic_inpaint=x.h5"], FAMILIES) == {
        "srgan": "runs/a", "glcic_inpaint": "x.h5"}
    with pytest.raises(UserError, match="FAMILY=PATH"):
        parse_weights_flags(["runs/a"], FAMILIES)
    with pytest.raises(UserError, match="unknown family 'esrgan'"):
        parse_weights_flags(["esrgan=x"], FAMILIES)


def test_tile_choice_and_automatic_tiling():
    assert restore.parse_tile("auto") == "auto" and restore.parse_tile(None) == "auto"
    assert restore.parse_tile("whole image") is None and restore.parse_tile(" 256 ") == 256
    with pytest.raises(UserError, match="tile size 'big'"):
        restore.parse_tile("big")
    with pytest.raises(UserError, match="at least 8"):
        restore.parse_tile("4")
    assert restore.tile_for("auto", (512, 512)) is None         # up to 512 x 512: whole
    assert restore.tile_for("auto", (513, 512)) == 256          # above: tiles
    assert restore.tile_for("auto", (128, 128), scale=4) is None
    assert restore.tile_for("auto", (200, 150), scale=4) == 64   # 800 x 600 result, 256 / 4
    assert restore.tile_for(96, (4000, 4000)) == 96 and restore.tile_for(None, (4000, 4000)) is None


def test_references_pair_by_name_then_by_order():
    pair = restore.pair_references
    assert pair(["/u/1/a.png", "/u/2/b.jpg"], ["/u/3/b.png", "/u/4/a.png"]) == ["/u/4/a.png", "/u/3/b.png"]
    # as many references as photos: an unmatched photo takes the unused one
    assert pair(["/u/1/a.png", "/u/2/b.png"], ["/u/3/x.png", "/u/4/a.png"]) == ["/u/4/a.png", "/u/3/x.png"]
    assert pair(["/u/1/a.png", "/u/2/b.png"], ["/u/3/x.png"]) == [None, None]
    assert pair(["/u/1/a.png"], None) == [None]


def test_messages_are_single_code_spans_even_with_backticks():
    assert compare.code_line("error: x.png: bad") == "` error: x.png: bad `"
    assert compare.code_line("run `python a.py` first") == "`` run `python a.py` first ``"


# ----------------------------------------------------------------------------- running
def test_upscale_writes_full_resolution_png_and_scores(srgan_slot, tmp_path, page_folder):
    lr = _photo(tmp_path / "in" / "lr.png", 12, 10)
    hr = _photo(tmp_path / "ref" / "lr.png", 48, 40, seed=1)
    calls = []
    outcome = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(lr)], [str(hr)],
                                     progress=lambda f, desc: calls.append(f))
    assert outcome.messages == []
    (item,) = outcome.items
    result = read_image(item.result)
    assert result.shape == (48, 40, 3) and item.result.suffix == ".png"
    assert item.result.resolve().is_relative_to(page_folder.resolve())  # only in the page's folder
    loaded = srgan_slot.get()
    expected = srgan_slot.inference().run(loaded, read_image(lr))
    np.testing.assert_array_equal(result, expected)
    bicubic = np.asarray(Image.open(lr).resize((40, 48), Image.BICUBIC))
    np.testing.assert_array_equal(read_image(item.before), bicubic)  # slider's left: bicubic
    row = outcome.rows[0]
    assert row["size"] == (40, 48) and row["seconds"] > 0
    reference = read_image(hr)
    assert row["result"][0] == pytest.approx(metrics.psnr(expected, reference))
    assert row["result"][1] == pytest.approx(metrics.ssim(expected, reference))
    assert row["baseline"][0] == pytest.approx(metrics.psnr(bicubic, reference))
    report = outcome.report()
    assert "PSNR bicubic" in report and f"{row['result'][0]:.2f}" in report and "40x48" in report
    assert calls[0] == 0.0 and calls[-1] == 1.0


def test_bad_photo_gets_predict_line_and_the_rest_go_on(srgan_slot, tmp_path):
    good = _photo(tmp_path / "a" / "good.png", 9, 11)
    bad = tmp_path / "b" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    outcome = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(bad), str(good)])
    assert [i.name for i in outcome.items] == ["good.png"]
    (line,) = outcome.messages
    with pytest.raises(UserError) as predict_error:  # what predict.py prints, with the folder left out
        read_image(bad)
    assert line == f"error: {str(predict_error.value).replace(str(bad), 'broken.png')}"
    assert line.startswith("error: broken.png: cannot read image") and str(tmp_path) not in line
    assert "` error: broken.png" in outcome.report() and "| good.png |" in outcome.report()


def test_reference_of_another_size_is_reported_not_scored(srgan_slot, tmp_path):
    lr = _photo(tmp_path / "lr.png", 8, 8)
    wrong = _photo(tmp_path / "ref" / "lr.png", 30, 30)
    outcome = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(lr)], [str(wrong)])
    assert len(outcome.items) == 1 and "result" not in outcome.rows[0]
    assert outcome.messages == ["error: lr.png: the reference is 30x30 but the result of lr.png is "
                                "32x32; upload the original of this photo at the result's size to get "
                                "PSNR / SSIM"]


def test_photo_without_its_reference_is_reported(srgan_slot, tmp_path):
    one = _photo(tmp_path / "one.png", 8, 8)
    two = _photo(tmp_path / "two.png", 8, 8)
    ref = _photo(tmp_path / "ref" / "one.png", 32, 32)
    outcome = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(one), str(two)], [str(ref)])
    assert "result" in outcome.rows[0] and "result" not in outcome.rows[1]
    assert outcome.messages == [restore.no_reference("two.png")]
    assert outcome.messages[0].startswith("error: two.png: no reference with the same name")


def test_no_photo_and_bad_tile_are_messages(srgan_slot):
    assert restore.restore_photos(srgan_slot, FAMILIES["srgan"], []).messages[0].startswith("error: no photo")
    outcome = restore.restore_photos(srgan_slot, FAMILIES["srgan"], ["x.png"], tile="huge")
    assert outcome.messages == ["error: tile size 'huge': give 'auto', 'whole image' or a number of input "
                                "pixels of at least 8 (e.g. 256)"]


def test_deblur_tiled_equals_inference_run_with_that_tile(runs, tmp_path):
    slot = ModelSlot("deblur_gan", str(runs["deblur_gan"]))
    # the tiny paper generator's tiles need 20 px of context on each side (common/whole_image_norm.py)
    photo = _photo(tmp_path / "blurred.png", 150, 120)
    sharp = _photo(tmp_path / "sharp" / "blurred.png", 150, 120, seed=3)
    outcome = restore.restore_photos(slot, FAMILIES["deblur_gan"], [str(photo)], [str(sharp)], tile="96")
    result = read_image(outcome.items[0].result)
    expected = slot.inference().run(slot.get(), read_image(photo), tile=96)
    np.testing.assert_array_equal(result, expected)
    # the deblurring baseline is the blurred input itself
    assert outcome.rows[0]["baseline"][0] == pytest.approx(metrics.psnr(read_image(photo), read_image(sharp)))


def test_model_failure_is_a_message_and_the_page_goes_on(srgan_slot, tmp_path, monkeypatch):
    photo = _photo(tmp_path / "p.png", 8, 8)

    class Broken:
        @staticmethod
        def run(*args, **kwargs):
            raise MemoryError("out of memory")

    slot = ModelSlot("srgan", srgan_slot.weights, _loaded=srgan_slot._loaded)
    monkeypatch.setattr(slot, "inference", lambda: Broken)
    outcome = restore.restore_photos(slot, FAMILIES["srgan"], [str(photo)])
    assert outcome.items == [] and outcome.messages == [
        "error: p.png: the model failed (MemoryError: out of memory); for a large photo try a smaller tile size"]


# ----------------------------------------------------------------------------- inpainting
def _layer(height, width, box):
    layer = np.zeros((height, width, 4), np.uint8)
    top, left, bottom, right = box
    layer[top:bottom, left:right] = 255
    return layer


def test_painted_mask_from_layers():
    assert painted_mask([np.zeros((6, 8, 4), np.uint8)], (6, 8)) is None
    mask = painted_mask([_layer(6, 8, (1, 2, 3, 5)), _layer(6, 8, (4, 0, 5, 1))], (6, 8))
    expected = np.zeros((6, 8), np.float32)
    expected[1:3, 2:5] = 1
    expected[4, 0] = 1
    np.testing.assert_array_equal(mask, expected)
    # a canvas twice the photo's size is scaled down (nearest)
    scaled = np.zeros((6, 8), np.float32)
    scaled[1:3, 2:5] = 1
    np.testing.assert_array_equal(painted_mask([_layer(12, 16, (2, 4, 6, 10))], (6, 8)), scaled)
    with pytest.raises(UserError, match="no hole"):
        choose_mask([], None, (6, 8))


def test_fill_hole_keeps_known_pixels_and_scores_against_the_photo(runs, tmp_path):
    slot = ModelSlot("glcic_inpaint", str(runs["glcic_inpaint"]))
    photo = _photo(tmp_path / "photo.png", 24, 20)
    image = read_image(photo)
    outcome = restore.fill_hole(slot, FAMILIES["glcic_inpaint"], str(photo), [_layer(24, 20, (4, 4, 12, 14))])
    assert outcome.messages == []
    result = read_image(outcome.items[0].result)
    mask = np.zeros((24, 20), np.float32)
    mask[4:12, 4:14] = 1
    np.testing.assert_array_equal(result, slot.inference().run(slot.get(), image, mask=mask))
    np.testing.assert_array_equal(result[mask == 0], image[mask == 0])
    before, baseline = before_and_baseline(FAMILIES["glcic_inpaint"], image, mask=mask)
    assert (read_image(outcome.items[0].before)[4:12, 4:14] == 255).all()
    assert outcome.rows[0]["result"][0] == pytest.approx(metrics.psnr(result, image))
    assert outcome.rows[0]["baseline"][0] == pytest.approx(metrics.psnr(baseline, image))
    assert "Scores compare with the photo as uploaded" in outcome.report()


def test_fill_hole_mask_file_of_wrong_size_names_the_users_file(runs, tmp_path):
    slot = ModelSlot("glcic_inpaint", str(runs["glcic_inpaint"]))
    photo = _photo(tmp_path / "photo.png", 24, 20)
    mask = tmp_path / "upload" / "hole.png"
    mask.parent.mkdir()
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(mask)
    outcome = restore.fill_hole(slot, FAMILIES["glcic_inpaint"], str(photo), [], str(mask))
    assert outcome.items == [] and outcome.messages == [
        "error: hole.png: mask is 10x10 (WxH) but its image is 20x24; give a mask of the image's size"]
    assert restore.fill_hole(slot, FAMILIES["glcic_inpaint"], None).messages[0].startswith("error: no photo")


# ----------------------------------------------------------------------------- models, table, samples
def test_family_without_a_run_gets_a_message_and_explicit_bad_weights_stop(tmp_path, monkeypatch, runs):
    monkeypatch.chdir(tmp_path)  # no runs/ here
    slots = load_slots(["srgan", "deblur_gan"], {"srgan": str(runs["srgan"])})
    assert slots["srgan"].ready and "x4" in slots["srgan"].describe()
    assert not slots["deblur_gan"].ready and "no trained deblur_gan model" in slots["deblur_gan"].problem
    with pytest.raises(UserError, match="missing.h5"):
        load_slots(["srgan"], {"srgan": str(tmp_path / "missing.h5")})
    outcome = restore.restore_photos(slots["deblur_gan"], FAMILIES["deblur_gan"], ["x.png"])
    assert outcome.messages == [f"error: {slots['deblur_gan'].problem}"]


def test_table_formats_numbers_inf_and_missing_ssim():
    rows = [{"name": "a|b.png", "size": (40, 30), "seconds": 0.1234, "result": (math.inf, None),
             "baseline": (20.0, 0.5)}, {"name": "c.png", "size": (4, 3), "seconds": 2.0}]
    lines = compare.table(rows, "bicubic").splitlines()
    assert lines[0] == "| Photo | Size | Time | PSNR dB | PSNR bicubic | SSIM | SSIM bicubic |"
    assert lines[2] == "| a\\|b.png | 40x30 | 0.12 s | inf | 20.00 | n/a | 0.5000 |"
    assert lines[3] == "| c.png | 4x3 | 2.00 s | n/a | n/a | n/a | n/a |"
    small = np.zeros((4, 4, 3), np.uint8)
    assert compare.scores(small, small + 1)[1] is None  # below SSIM's 7 px window


def test_srgan_sample_is_the_reduced_photo_and_its_original(tmp_path):
    family = FAMILIES["srgan"]
    name = sample_names(family)[0]
    files = sample_files(family, name, tmp_path / "s", scale=4)
    lr, hr = read_image(files.image), read_image(files.reference)
    assert hr.shape[0] == 4 * lr.shape[0] and hr.shape[1] == 4 * lr.shape[1]
    assert files.image.parent == tmp_path / "s" and files.mask is None
    with pytest.raises(UserError, match="not one of the bundled samples"):
        sample_files(family, "nope.png", tmp_path / "s", scale=4)


def test_page_builds_with_a_tab_per_family_and_a_message_for_missing_models(runs, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from webui.app import build_demo

    monkeypatch.chdir(tmp_path)
    slots = load_slots(["srgan", "deblur_gan", "dgf_deblur", "glcic_inpaint"],
                       {"srgan": str(runs["srgan"]), "glcic_inpaint": str(runs["glcic_inpaint"])})
    demo = build_demo(slots)
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"tab-deblur_gan", "tab-srgan", "tab-dgf_deblur", "tab-glcic_inpaint"} <= ids
    assert {"srgan-run", "srgan-slider", "srgan-report", "deblur_gan-missing"} <= ids
    assert "deblur_gan-run" not in ids
    functions = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    model_runs = [f for f in functions if f.concurrency_id == "model"]
    assert sorted(f.name for f in model_runs) == ["on_run", "on_run"]  # SRGAN's and GLCIC's buttons
    assert {f.concurrency_limit for f in model_runs} == {1}  # share one slot: one model run at a time
    missing = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "deblur_gan-missing")
    assert "no trained deblur_gan model" in missing["props"]["value"]


def test_precision_choice_loads_its_own_generator_and_restores_float32(srgan_slot, tmp_path):
    import keras

    photo = _photo(tmp_path / "p.png", 10, 12)
    whole = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(photo)])
    half = restore.restore_photos(srgan_slot, FAMILIES["srgan"], [str(photo)], precision="mixed_bfloat16")
    assert half.messages == [] and keras.config.dtype_policy().name == "float32"
    assert srgan_slot.get("mixed_bfloat16").model.dtype_policy.name == "mixed_bfloat16"
    a, b = read_image(whole.items[0].result), read_image(half.items[0].result)
    assert a.shape == b.shape == (40, 48, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8  # bfloat16 rounding, same network


def test_gallery_pick_and_missing_gradio(monkeypatch):
    from webui.app import _pick
    from webui.__main__ import main

    pairs = [("b0.png", "r0.png"), ("b1.png", "r1.png")]
    assert _pick(pairs, 1) == ("b1.png", "r1.png") and _pick(pairs, 2) is None and _pick([], 0) is None
    monkeypatch.setitem(__import__("sys").modules, "gradio", None)
    with pytest.raises(UserError, match="pip install gradio"):
        main([])


def test_request_folders_are_new_and_old_ones_are_pruned(page_folder):
    import os

    first = uploads.request_folder()
    (first / "a.png").write_bytes(b"x")
    old = page_folder / "results" / "old"
    old.mkdir()
    os.utime(old, (0, 0))  # 1970: older than KEEP_SECONDS
    second = uploads.request_folder()
    assert second != first and first.is_dir() and not old.exists()
    assert second.parent == first.parent == page_folder / "results"
    assert uploads.unique_path(first, "a") == first / "a_2.png"
