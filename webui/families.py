"""What differs between the tabs: labels, options, bundled samples, and each family's baseline.

The baseline is what the result is compared with: the blurred input itself for deblurring, the
bicubic enlargement for super-resolution, a mean-colour fill for inpainting. The slider's left side
("before") is the same picture except for GLCIC, where it shows the hole painted white.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Family:
    key: str                    # the package name (deblur_gan, srgan, ...)
    title: str                  # the tab's name
    summary: str                # one line under the tab's title
    action: str                 # the Run button's text
    input_label: str
    reference_label: str | None  # None: the photo itself is the reference (GLCIC)
    before_label: str           # the slider's left side
    baseline_label: str         # the comparison row next to the result's
    tile: bool = True           # the generator is fully convolutional: tiles are allowed
    blend: bool = False         # GLCIC's Poisson post-processing
    mode_option: tuple[str, str] | None = None  # (inference.run keyword, checkbox label)

    @property
    def train_command(self) -> str:
        return f"python {self.key}/train.py"


FAMILIES = {
    "deblur_gan": Family(
        "deblur_gan", "DeblurGAN", "Removes motion blur (Kupyn et al., CVPR 2018). Add the sharp "
        "originals to get PSNR / SSIM.", "Deblur",
        "Blurred photo(s)", "Sharp originals (optional)", "Blurred", "Blurred input",
        mode_option=("stochastic", "Dropout on at test time (the official PyTorch inference)")),
    "srgan": Family(
        "srgan", "SRGAN", "Enlarges photos 4x with realistic detail (Ledig et al., CVPR 2017). Add "
        "the high-resolution originals to get PSNR / SSIM.",
        "Upscale", "Low-resolution photo(s)",
        "High-res originals (optional)", "Bicubic", "Bicubic"),
    "dgf_deblur": Family(
        "dgf_deblur", "DGF deblur", "Deep Generative Filter for motion deblurring "
        "(Ramakrishnan et al., ICCV 2017 workshops). Add the sharp originals to get PSNR / SSIM.", "Deblur", "Blurred photo(s)",
        "Sharp originals (optional)", "Blurred", "Blurred input",
        mode_option=("train_mode", "Per-image BatchNorm statistics (as the official test.lua)")),
    "glcic_inpaint": Family(
        "glcic_inpaint", "GLCIC inpainting", "Fills holes in photos (Iizuka et al., SIGGRAPH 2017). "
        "Paint the hole with the brush, or upload a mask (white = hole).", "Fill the hole",
        "Photo (paint the hole on it)", None, "With hole", "Mean-colour fill",
        tile=False, blend=True),
}


# ----------------------------------------------------------------------------- pictures
def before_and_baseline(family: Family, image: np.ndarray, scale: int = 1, mask=None):
    """``(before, baseline)``: the slider's left picture and the picture scored next to the result,
    both of the result's size."""
    if family.key == "srgan":
        from srgan.data import bicubic_upscale

        bicubic = bicubic_upscale(image, scale)
        return bicubic, bicubic
    if family.key == "glcic_inpaint":
        from glcic_inpaint.inference import masked_display, mean_fill

        return masked_display(image, mask), mean_fill(image, mask)
    return image, image


# ----------------------------------------------------------------------------- samples
_SAMPLE_SETS = {"deblur_gan": "blurred_pairs", "dgf_deblur": "blurred_pairs",
                "srgan": "hr_images", "glcic_inpaint": "inpaint"}


def _sample_folder(family: Family) -> Path:
    from common.sample_data import sample_dir

    folder = sample_dir(_SAMPLE_SETS[family.key]) / "test"
    return folder / "A" if _SAMPLE_SETS[family.key] == "blurred_pairs" else folder


def sample_names(family: Family) -> list[str]:
    """File names of the bundled test photos this tab offers (the set is built on first use)."""
    from common.image_io import list_images

    return [p.name for p in list_images(_sample_folder(family))]


@dataclass(frozen=True)
class Sample:
    image: Path
    reference: Path | None = None
    mask: Path | None = None


def sample_files(family: Family, name: str, folder: Path, scale: int = 1) -> Sample:
    """The files of bundled sample ``name``, copied (SRGAN: made) into ``folder``, the page's
    temporary folder, from where the page may serve them.

    Deblurring: the blurred photo and its sharp original. SRGAN: the photo, cropped to a multiple
    of ``scale``, as the reference and its bicubic reduction (as in training) as the input. GLCIC:
    the photo and its mask.
    """
    import shutil

    from common.errors import UserError
    from common.image_io import read_image, write_image

    source = _sample_folder(family) / name
    if name not in sample_names(family):
        raise UserError(f"{name}: not one of the bundled samples ({', '.join(sample_names(family))})")
    folder.mkdir(parents=True, exist_ok=True)
    if family.key == "srgan":
        from srgan.data import downscale_uint8, mod_crop

        hr = mod_crop(read_image(source), scale)
        stem = Path(name).stem
        return Sample(write_image(folder / f"{stem}.png", downscale_uint8(hr, scale)),
                      reference=write_image(folder / f"{stem}_hr.png", hr))
    image = Path(shutil.copy(source, folder / name))
    if family.key == "glcic_inpaint":
        mask = source.parent / "masks" / f"{source.stem}.png"
        return Sample(image, mask=Path(shutil.copy(mask, folder / f"{source.stem}_mask.png")))
    reference = source.parent.parent / "B" / name
    return Sample(image, reference=Path(shutil.copy(reference, folder / f"{source.stem}_sharp{source.suffix}")))
