"""The logic behind the scripts in ``datasets/`` (organise GoPro, side-by-side images, HDF5, downloads).

The scripts only parse flags and call these functions, which raise UserError for user mistakes.
Inputs are never modified (except archives the download script extracted itself); outputs are
written to new files, and a finished output is never overwritten unless asked (``overwrite``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from common.data import ORDERS, _by_stem, _check_order, _preview
from common.errors import UserError
from common.image_io import IMAGE_EXTENSIONS, list_images, write_image

SPLITS = ("train", "test")


def _require_dir(path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"{path}: no such folder; give {what}")
    return path


def _check_output(output: Path, overwrite: bool, inputs=()) -> None:
    output = output.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if output == source or source in output.parents or output in source.parents:
            raise UserError(f"{output}: the output must be outside the input {source}; choose "
                            "another --output")
    if output.exists() and not output.is_dir():
        raise UserError(f"{output}: exists and is not a folder; choose another --output")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(f"{output}: folder is not empty; choose a new --output or pass --overwrite")


def _transfer(source: Path, target: Path, mode: str) -> None:
    """copy / hard link (falls back to copy) / move a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    if mode == "move":
        shutil.move(str(source), str(target))
        return
    if mode == "link":
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copyfile(source, target)


# ----------------------------------------------------------------------------- GoPro

def organize_gopro(input_dir, output_dir, gamma: bool = False, mode: str = "copy",
                   overwrite: bool = False) -> dict[str, int]:
    """GOPRO_Large -> ``output/{train,test}/{A,B}/{sequence}_{frame}.png`` (A blurred, B sharp).

    ``GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/<frame>.png`` (DeblurGAN
    section 5; the Keras port's ``organize_gopro_dataset.py`` uses ``blur``; ``gamma=True`` takes
    ``blur_gamma``). Every blurred frame must have its sharp frame and vice versa.
    ``mode``: "copy", "link" (hard links where possible) or "move". Returns {split: pairs}.
    """
    input_dir = _require_dir(input_dir, "the extracted GOPRO_Large folder (holding train/ and test/)")
    output_dir = Path(output_dir).expanduser()
    splits = [s for s in SPLITS if (input_dir / s).is_dir()]
    if not splits:
        raise UserError(f"{input_dir}: no train/ or test/ folder; give the extracted GOPRO_Large "
                        "folder (GOPRO_Large/{train,test}/<sequence>/{blur,sharp}/)")
    _check_output(output_dir, overwrite, inputs=[input_dir])
    blur_name = "blur_gamma" if gamma else "blur"
    plan = []  # (blur file, sharp file, output name, split)
    for split in splits:
        sequences = sorted(p for p in (input_dir / split).iterdir() if p.is_dir())
        if not sequences:
            raise UserError(f"{input_dir / split}: no sequence folders; expected "
                            f"{split}/<sequence>/{{{blur_name},sharp}}/")
        for sequence in sequences:
            blur_dir, sharp_dir = sequence / blur_name, sequence / "sharp"
            for folder in (blur_dir, sharp_dir):
                if not folder.is_dir():
                    raise UserError(f"{folder}: missing; each GoPro sequence needs {blur_name}/ and "
                                    "sharp/ folders (is the archive fully extracted?)")
            blurred = _by_stem(list_images(blur_dir), blur_dir)
            sharp = _by_stem(list_images(sharp_dir), sharp_dir)
            unpaired = sorted(set(blurred) ^ set(sharp))
            if unpaired:
                raise UserError(f"{sequence}: {len(unpaired)} frames are in only one of "
                                f"{blur_name}/ and sharp/: {_preview(unpaired)}; re-extract the "
                                "sequence or remove those frames")
            for frame in sorted(blurred):
                out_name = f"{sequence.name}_{frame}{blurred[frame].suffix.lower()}"
                plan.append((blurred[frame], sharp[frame], out_name, split))
    counts = {split: 0 for split in splits}
    for blur_file, sharp_file, out_name, split in plan:
        _transfer(blur_file, output_dir / split / "A" / out_name, mode)
        _transfer(sharp_file, output_dir / split / "B" / out_name, mode)
        counts[split] += 1
    return counts


# ----------------------------------------------------------------------------- side by side

def _split_folders(a_dir: Path, b_dir: Path | None = None) -> list[str]:
    """Sub-folders to process one by one ([""] when the folder holds images itself)."""
    if list_images(a_dir):
        return [""]
    subs = sorted(p.name for p in a_dir.iterdir() if p.is_dir() and list_images(p))
    if b_dir is not None:
        subs = [s for s in subs if (b_dir / s).is_dir()]
    return subs


def combine_side_by_side(a_dir, b_dir, output_dir, order: str = "degraded_left",
                         overwrite: bool = False) -> int:
    """Put each A image (degraded) and the B image of the same name side by side.

    Like DeblurGAN's ``datasets/combine_A_and_B.py``; ``order="degraded_left"`` gives its layout,
    ``"target_left"`` the DGF tutorial's. If A and B hold split folders (train/, test/...) instead
    of images, each is combined into the same split folder of the output. Written as PNG.
    Returns the number of images written.
    """
    _check_order(order)
    a_dir = _require_dir(a_dir, "the folder of degraded images (--a)")
    b_dir = _require_dir(b_dir, "the folder of target images (--b)")
    output_dir = Path(output_dir).expanduser()
    subs = _split_folders(a_dir, b_dir)
    if not subs:
        raise UserError(f"{a_dir}: no images (or split folders of images matching {b_dir}); "
                        f"expected {', '.join(IMAGE_EXTENSIONS)} files")
    _check_output(output_dir, overwrite, inputs=[a_dir, b_dir])
    from common.data import FolderPairSource

    sources = [(sub, FolderPairSource(a_dir / sub, b_dir / sub)) for sub in subs]
    written = 0
    for sub, source in sources:
        for index, name in enumerate(source.names):
            degraded, target = source.load(index)
            halves = [degraded, target] if order == "degraded_left" else [target, degraded]
            write_image(output_dir / sub / f"{name}.png", np.concatenate(halves, axis=1))
            written += 1
    return written


def split_side_by_side(input_dir, output_dir, order: str = "degraded_left",
                       overwrite: bool = False) -> int:
    """Cut side-by-side images into ``output/A`` (degraded) and ``output/B`` (target).

    Split folders (train/, test/...) of the input become ``output/<split>/{A,B}``. Each half is
    written as ``<input name>.png`` (lossless).
    Returns the number of pairs written.
    """
    _check_order(order)
    input_dir = _require_dir(input_dir, "a folder of side-by-side images (--input)")
    output_dir = Path(output_dir).expanduser()
    subs = _split_folders(input_dir)
    if not subs:
        raise UserError(f"{input_dir}: no side-by-side images or split folders of them; expected "
                        f"{', '.join(IMAGE_EXTENSIONS)} files")
    _check_output(output_dir, overwrite, inputs=[input_dir])
    from common.data import SideBySidePairSource

    sources = [(sub, SideBySidePairSource(input_dir / sub, order)) for sub in subs]
    written = 0
    for sub, source in sources:
        stems = [path.stem for path in source.files]
        clash = len(set(stems)) != len(stems)
        for index, path in enumerate(source.files):
            degraded, target = source.load(index)
            name = f"{path.stem}_{path.suffix[1:].lower()}" if clash else path.stem
            write_image(output_dir / sub / "A" / f"{name}.png", degraded)
            write_image(output_dir / sub / "B" / f"{name}.png", target)
            written += 1
    return written


# ----------------------------------------------------------------------------- HDF5

def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    # leftthomas data_utils.build_hdf5: PIL resize with ANTIALIAS (= LANCZOS) to size x size.
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))


def build_hdf5(input_dir, output_path, size: int = 256, order: str = "target_left",
               overwrite: bool = False, log=None) -> dict[str, int]:
    """Side-by-side images in ``input/{train,test}/`` -> the DGF tutorial's HDF5 file.

    Datasets ``{split}_data_full`` (sharp) and ``{split}_data_blur``, uint8 ``(N, size, size, 3)``,
    chunked one image per chunk, plus ``{split}_names`` (file names). Each half is resized to
    ``size`` x ``size`` (Lanczos, as leftthomas ``data_utils.build_hdf5`` with ANTIALIAS). Images
    are written one at a time, so memory use does not grow with the data; the file is written under
    a temporary name and renamed when complete. ``order``: which half is sharp (the DGF data has
    it on the left: ``"target_left"``). Returns {split: images}.
    """
    import h5py

    from common.data import SideBySidePairSource

    _check_order(order)
    input_dir = _require_dir(input_dir, "a folder with train/ and test/ of side-by-side images")
    output_path = Path(output_path).expanduser()
    if size < 1:
        raise UserError(f"--size {size}: must be a positive number of pixels")
    if output_path.suffix.lower() not in (".h5", ".hdf5"):
        raise UserError(f"{output_path}: the output needs an .h5 suffix")
    if output_path.exists() and not overwrite:
        raise UserError(f"{output_path}: exists; choose another --output or pass --overwrite")
    splits = [s for s in SPLITS if (input_dir / s).is_dir()]
    if splits:
        sources = {s: SideBySidePairSource(input_dir / s, order) for s in splits}
    elif list_images(input_dir):
        sources = {"train": SideBySidePairSource(input_dir, order)}
    else:
        raise UserError(f"{input_dir}: no train/ or test/ folders of side-by-side images")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".part",
                                         dir=output_path.parent)
    os.close(handle)
    temp = Path(temp_name)
    counts = {}
    try:
        with h5py.File(temp, "w") as h5:
            h5.attrs["layout"] = "DGF tutorial: {split}_data_full = sharp, {split}_data_blur = blurred"
            h5.attrs["size"] = size
            for split, source in sources.items():
                count = len(source)
                shape = (count, size, size, 3)
                full = h5.create_dataset(f"{split}_data_full", shape, np.uint8,
                                         chunks=(1, size, size, 3))
                blur = h5.create_dataset(f"{split}_data_blur", shape, np.uint8,
                                         chunks=(1, size, size, 3))
                h5.create_dataset(f"{split}_names", data=np.array(source.names, dtype=object),
                                  dtype=h5py.string_dtype())
                for index in range(count):
                    degraded, target = source.load(index)
                    blur[index] = _resize(degraded, size)
                    full[index] = _resize(target, size)
                    if log and (index + 1) % 500 == 0:
                        log(f"{split}: {index + 1}/{count}")
                counts[split] = count
        mask = os.umask(0o022)
        os.umask(mask)
        temp.chmod(0o666 & ~mask)  # mkstemp makes it private (0600)
        os.replace(temp, output_path)
    finally:
        if temp.exists():
            temp.unlink()
    return counts


# ----------------------------------------------------------------------------- downloads

DIV2K_BASE_URL = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
DIV2K_FILES = {"train": "DIV2K_train_HR.zip", "test": "DIV2K_valid_HR.zip"}
DIV2K_PAGE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
GOPRO_PAGE = "https://seungjunnah.github.io/Datasets/gopro"
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
# CelebA's official list_eval_partition.txt: images 000001-162770 train, 162771-182637
# validation, 182638-202599 test.
CELEBA_LAST_TRAIN, CELEBA_LAST_VAL = 162770, 182637


def download_file(url: str, folder: Path, page: str, timeout: float = 60.0) -> Path:
    """Download ``url`` into ``folder`` with keras.utils.get_file; one-line UserError on failure."""
    import socket

    import keras

    folder.mkdir(parents=True, exist_ok=True)
    name = url.rsplit("/", 1)[-1]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        path = keras.utils.get_file(name, origin=url, cache_dir=str(folder), cache_subdir=".")
    except Exception as error:  # noqa: BLE001 - urllib/keras raise many types; all mean "no file"
        partial = folder / name
        if partial.exists() and partial.stat().st_size == 0:
            partial.unlink()
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UserError(f"{url}: download failed ({reason[:200]}); check the connection, or "
                        f"download it by hand from {page} and pass it with --archive") from None
    finally:
        socket.setdefaulttimeout(previous)
    return Path(path)


def extract_zip(archive: Path, folder: Path) -> Path:
    """Extract ``archive`` into ``folder`` (refusing paths that leave it); returns ``folder``."""
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise UserError(f"{archive}: no such archive; check the --archive path")
    try:
        with zipfile.ZipFile(archive) as zipped:
            root = folder.resolve()
            for member in zipped.namelist():
                target = (folder / member).resolve()
                if target != root and root not in target.parents:
                    raise UserError(f"{archive}: member {member!r} would be written outside "
                                    f"{folder}; refusing to extract")
            zipped.extractall(folder)
    except zipfile.BadZipFile as error:
        raise UserError(f"{archive}: not a valid zip archive ({error}); download it again") from error
    return folder


def _find_dir(root: Path, name: str) -> Path | None:
    """The shallowest folder called ``name`` under ``root`` (``root`` itself included)."""
    if root.name == name:
        return root
    matches = sorted(root.rglob(name), key=lambda p: len(p.parts))
    return next((m for m in matches if m.is_dir()), None)


def organize_div2k(extracted: Path, output_dir: Path) -> dict[str, int]:
    """``DIV2K_train_HR/`` -> ``output/train/``, ``DIV2K_valid_HR/`` -> ``output/test/`` (moved)."""
    counts = {}
    for split, archive_name in DIV2K_FILES.items():
        source = _find_dir(extracted, archive_name[: -len(".zip")])
        if source is None:
            continue
        images = list_images(source)
        for image in images:
            _transfer(image, output_dir / split / image.name, "move")
        counts[split] = len(images)
    if not counts:
        raise UserError(f"{extracted}: no DIV2K_train_HR/ or DIV2K_valid_HR/ folder in the archive; "
                        f"use the HR archives from {DIV2K_PAGE}")
    return counts


def organize_celeba(extracted: Path, output_dir: Path) -> dict[str, int]:
    """``img_align_celeba/NNNNNN.jpg`` -> ``output/{train,val,test}/`` by the official partition."""
    source = _find_dir(extracted, "img_align_celeba")
    if source is None:
        raise UserError(f"{extracted}: no img_align_celeba/ folder in the archive; use "
                        f"img_align_celeba.zip from {CELEBA_PAGE}")
    counts = {"train": 0, "val": 0, "test": 0}
    for image in list_images(source):
        try:
            number = int(image.stem)
        except ValueError:
            split = "train"
        else:
            split = ("train" if number <= CELEBA_LAST_TRAIN else
                     "val" if number <= CELEBA_LAST_VAL else "test")
        _transfer(image, output_dir / split / image.name, "move")
        counts[split] += 1
    return counts


def extraction_folder(output_dir: Path) -> Path:
    """A fresh temporary folder next to ``output_dir`` (same disk, so moving files is cheap)."""
    output_dir = Path(output_dir).expanduser().resolve()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.extract-", dir=output_dir.parent))


def extract_and_organize(archives, output_dir: Path, organize):
    """Unzip ``archives`` into a temporary folder beside ``output_dir``, run
    ``organize(extracted_folder)`` and return its result; the temporary folder is always removed."""
    extracted = extraction_folder(output_dir)
    try:
        for archive in archives:
            print(f"extracting {archive}")
            extract_zip(Path(archive), extracted)
        return organize(extracted)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)


__all__ = [
    "ORDERS", "extract_and_organize", "organize_gopro", "combine_side_by_side", "split_side_by_side", "build_hdf5",
    "download_file", "extract_zip", "organize_div2k", "organize_celeba", "extraction_folder",
]
