"""The functions behind the Run buttons, free of Gradio so they can be tested without a browser.

Each photo is read with ``common.image_io.read_image`` (what predict.py uses), run through the
family's ``inference.run``, written as a full-resolution PNG into a fresh folder under the page's
temporary folder, and scored against its reference when one was uploaded. A bad photo adds the same
``error: ...`` line predict.py prints and the other photos go on.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError
from webui import compare
from webui.families import Family, before_and_baseline
from webui.uploads import request_folder, shown_name, unique_path, user_message

# Whole images up to this many result pixels; larger ones are tiled, so that a phone photo does not
# exhaust memory: the full DGF generator needs about 10 GB for a whole 768x1024 image but 1.4 GB in
# 256-pixel tiles (README, Performance).
AUTO_TILE_PIXELS = 512 * 512
AUTO_TILE = 256  # result pixels a side; divided by the scale for super-resolution


@dataclass
class Item:
    name: str
    before: Path   # the slider's left picture (PNG)
    result: Path   # the full-resolution result (PNG)


@dataclass
class Outcome:
    items: list[Item] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    baseline_label: str = "baseline"
    note: str = ""

    def report(self) -> str:
        """Markdown for the page: the error lines first, then the table, then the note."""
        parts = [compare.code_line(m) for m in self.messages]
        if self.rows:
            parts.append(compare.table(self.rows, self.baseline_label))
        if self.note and self.rows:
            parts.append(self.note)
        return "\n\n".join(parts)


# ----------------------------------------------------------------------------- settings
def parse_tile(text) -> str | int | None:
    """The tile choice: ``"auto"``, None (whole image) or a number of input pixels."""
    value = str(text if text is not None else "auto").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("whole", "whole image", "0", "none"):
        return None
    try:
        tile = int(value)
    except ValueError:
        tile = -1
    if tile < 8:
        raise UserError(f"tile size {text!r}: give 'auto', 'whole image' or a number of input "
                        "pixels of at least 8 (e.g. 256)")
    return tile


def tile_for(choice, shape, scale: int = 1) -> int | None:
    """The tile size for one photo: ``"auto"`` tiles photos whose result exceeds 512 x 512 pixels."""
    if choice != "auto":
        return choice
    height, width = shape[:2]
    if height * width * scale * scale <= AUTO_TILE_PIXELS:
        return None
    return max(8, AUTO_TILE // scale)


def pair_references(inputs: list, references: list) -> list:
    """The reference of each input (None where it has none): the one with the same file stem,
    else, when there are as many references as inputs, the unused one in the same position."""
    inputs, references = list(inputs or []), list(references or [])
    if not references:
        return [None] * len(inputs)
    by_stem = {Path(shown_name(r)).stem: r for r in references}
    paired = [by_stem.get(Path(shown_name(p)).stem) for p in inputs]
    if any(r is None for r in paired) and len(references) == len(inputs):
        used = {id(r) for r in paired if r is not None}
        spare = iter(r for r in references if id(r) not in used)
        paired = [r if r is not None else next(spare, None) for r in paired]
    return paired


def no_reference(name: str) -> str:
    return (f"error: {name}: no reference with the same name; upload it as {Path(name).stem}.png "
            "(or as many references as photos, in the same order)")


# ----------------------------------------------------------------------------- running
def _notify(progress, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, desc=text)


def _run_model(slot, loaded, image, **options):
    start = time.perf_counter()
    result = slot.inference().run(loaded, image, **options)
    return np.asarray(result), time.perf_counter() - start


def _score(outcome: Outcome, row: dict, name: str, result, baseline, reference_path, reference=None):
    """Add PSNR / SSIM of the result and the baseline to ``row`` when a usable reference exists."""
    from common.image_io import read_image

    if reference is None:
        if reference_path is None:
            return
        try:
            reference = read_image(reference_path)
        except UserError as error:
            outcome.messages.append(user_message(error, reference_path))
            return
    problem = compare.size_problem(name, shown_name(reference_path or name), reference.shape, result.shape)
    if problem:
        outcome.messages.append(problem)
        return
    row["result"] = compare.scores(result, reference)
    row["baseline"] = compare.scores(baseline, reference)


def _keep(outcome: Outcome, folder: Path, name: str, before, result, seconds: float) -> dict:
    from common.image_io import write_image

    stem = Path(name).stem
    result_path = write_image(unique_path(folder, stem), result)
    before_path = write_image(unique_path(folder / "before", stem), before)
    outcome.items.append(Item(name, before_path, result_path))
    row = {"name": name, "size": (result.shape[1], result.shape[0]), "seconds": seconds}
    outcome.rows.append(row)
    return row


def _failed(outcome: Outcome, name: str, error: Exception) -> None:
    """A model failure on one photo: the line on the page, the traceback in the server's log."""
    if isinstance(error, UserError):
        outcome.messages.append(user_message(error))
        return
    traceback.print_exc(file=sys.stderr)
    outcome.messages.append(f"error: {name}: the model failed ({type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''}); for a large photo "
                            "try a smaller tile size")


def restore_photos(slot, family: Family, inputs, references=None, *, tile="auto",
                   precision: str = "float32", mode: bool = False, progress=None) -> Outcome:
    """Deblur or upscale each uploaded photo (file paths). ``mode``: the family's test-time option
    (DeblurGAN's dropout, DGF's BatchNorm statistics)."""
    from common.image_io import read_image

    outcome = Outcome(baseline_label=family.baseline_label.lower())
    inputs = [p for p in (inputs or []) if p]
    if not inputs:
        outcome.messages.append("error: no photo: upload one or more, or pick a bundled sample")
        return outcome
    try:
        choice = parse_tile(tile) if family.tile else None
        _notify(progress, 0.0, "loading the model")
        loaded = slot.get(precision)
        scale = slot.scale()
    except UserError as error:
        outcome.messages.append(user_message(error))
        return outcome
    paired = pair_references(inputs, references)
    options = {family.mode_option[0]: True} if family.mode_option and mode else {}
    folder = request_folder()
    for index, (path, reference_path) in enumerate(zip(inputs, paired)):
        name = shown_name(path)
        _notify(progress, index / len(inputs), f"{family.action.lower()} {name} ({index + 1}/{len(inputs)})")
        try:
            image = read_image(path)
        except UserError as error:
            outcome.messages.append(user_message(error, path))
            continue
        try:
            result, seconds = _run_model(slot, loaded, image, tile=tile_for(choice, image.shape, scale),
                                         **options)
        except Exception as error:  # noqa: BLE001 (one photo's failure must not stop the page)
            _failed(outcome, name, error)
            continue
        before, baseline = before_and_baseline(family, image, scale)
        row = _keep(outcome, folder, name, before, result, seconds)
        if references and reference_path is None:
            outcome.messages.append(no_reference(name))
        _score(outcome, row, name, result, baseline, reference_path)
    _notify(progress, 1.0, "done")
    return outcome


def fill_hole(slot, family: Family, photo, layers=None, mask_file=None, *, blend: bool = False,
              precision: str = "float32", name: str | None = None, progress=None) -> Outcome:
    """Complete one photo (file path) where the painted ``layers`` or ``mask_file`` mark the hole.
    ``name``: what to call it on the page (default: the file's name).

    The photo as uploaded is the reference: PSNR / SSIM compare the completion and the mean-colour
    fill with the pixels the hole covered.
    """
    from common.image_io import read_image
    from webui.masks import choose_mask

    outcome = Outcome(baseline_label=family.baseline_label.lower(),
                      note="Scores compare with the photo as uploaded (the pixels under the hole).")
    if not photo:
        outcome.messages.append("error: no photo: upload one in the editor, or pick a bundled sample")
        return outcome
    name = name or shown_name(photo)
    try:
        image = read_image(photo)
        mask = choose_mask(layers, mask_file, image.shape)
        _notify(progress, 0.0, "loading the model")
        loaded = slot.get(precision)
    except UserError as error:
        outcome.messages.append(user_message(error, photo, mask_file))
        return outcome
    _notify(progress, 0.1, f"filling the hole of {name}")
    try:
        result, seconds = _run_model(slot, loaded, image, mask=mask, blend="poisson" if blend else None)
    except Exception as error:  # noqa: BLE001
        _failed(outcome, name, error)
        return outcome
    before, baseline = before_and_baseline(family, image, mask=mask)
    row = _keep(outcome, request_folder(), name, before, result, seconds)
    _score(outcome, row, name, result, baseline, None, reference=image)
    _notify(progress, 1.0, "done")
    return outcome
