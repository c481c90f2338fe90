"""Complete your images with a trained GLCIC model, at their own size.

    python glcic_inpaint/predict.py                       # newest run, bundled sample test photos
    python glcic_inpaint/predict.py --input photo.jpg --masks photo_mask.png --output out/
    python glcic_inpaint/predict.py --input photos/ --masks masks/ --blend poisson
    python glcic_inpaint/predict.py --weights completionnet_places2.t7 --input photos/   # official model

Masks: PNG, white = hole, the size of their image. ``--masks`` is one file (used for every input)
or a folder holding ``<image name>.png`` for each input. Without ``--masks`` the bundled sample
photos use their own masks, and other images get 2-4 random holes (official inpaint.lua), saved
next to the result as ``<name>_mask.png``. Writes ``<name>.png`` (the completed image).
The network runs only around the holes (``--tile``: ``glcic_inpaint.regions``).
"""

from __future__ import annotations

from pathlib import Path

from common.cli import predict_parser, run_cli
from common.errors import UserError

FAMILY = "glcic_inpaint"
# official inpaint.lua without a mask: 2 to 4 holes with sides in [32, 128]
RANDOM_HOLES = (2, 4)
RANDOM_HOLE_SIDES = (32, 128)


def build_parser():
    p = predict_parser(FAMILY, __doc__.splitlines()[0])
    p.add_argument("--masks", help="mask PNG (white = hole) or folder of <image name>.png masks")
    p.add_argument("--blend", choices=("none", "poisson"), default="none",
                   help="poisson: the paper's post-processing (fast marching, then Poisson "
                        "blending with OpenCV's seamlessClone)")
    p.add_argument("--mask-seed", type=int, default=0, help="seed of random holes (no --masks)")
    # GLCIC's own meaning of the shared --tile: the network runs only around the holes
    p._option_string_actions["--tile"].help = (
        "the network runs only on the holes plus its receptive field (about 150 px each way), in one "
        "crop when that fits under a 3 GB peak, else in tiles (the default); N: output tiles of N x N "
        "pixels around the holes (same result, less memory); 0 = the whole image at once")
    from glcic_inpaint.inference import add_model_flags

    return add_model_flags(p)


def random_mask(shape, seed: int, index: int):
    """2-4 random holes anywhere, sides in [32, 128] scaled down for small images."""
    import numpy as np

    from glcic_inpaint.masks import HoleSpec, sample_holes

    height, width = shape[:2]
    side = min(height, width)
    high = max(1, min(RANDOM_HOLE_SIDES[1], side // 2))
    low = max(1, min(RANDOM_HOLE_SIDES[0], high))
    spec = HoleSpec((height, width), side, low, high, RANDOM_HOLES, "anywhere")
    return np.asarray(sample_holes(1, spec, (seed, index)).masks[0])


def find_mask(masks: Path, image_path: Path) -> Path:
    if masks.is_file():
        return masks
    for candidate in [masks / f"{image_path.stem}.png", *sorted(masks.glob(f"{image_path.stem}.*"))]:
        if candidate.is_file():
            return candidate
    raise UserError(f"{masks}: no mask for {image_path.name}; add {image_path.stem}.png "
                    "(white = hole, the image's size)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from glcic_inpaint.inference import check_tile, load_from_args, run

    check_tile(args.tile)  # before anything prints
    from common.precision import set_inference_precision

    set_inference_precision(args.precision, "glcic_inpaint")
    from common.inference import collect_inputs, process_files
    from common.sample_data import sample_dir
    from glcic_inpaint.masks import load_mask, save_mask

    loaded = load_from_args(args)
    masks = Path(args.masks).expanduser() if args.masks else None
    if args.input is None:
        test_dir = sample_dir("inpaint") / "test"
        inputs = collect_inputs(test_dir)
        masks = masks or test_dir / "masks"
    else:
        inputs = collect_inputs(args.input)
    if masks is not None and not masks.exists():
        raise UserError(f"{masks}: no such mask file or folder")
    output = Path(args.output) if args.output else Path("outputs") / FAMILY / "predict"
    blend = None if args.blend == "none" else args.blend

    index_of = {path: index for index, path in enumerate(inputs)}

    def transform(image, path):
        if masks is None:
            mask = random_mask(image.shape, args.mask_seed, index_of[path])
            save_mask(output / f"{path.stem}_mask.png", mask)
        else:  # a missing or mismatched mask fails this image only
            mask = load_mask(find_mask(masks, path), image.shape[:2])
        return run(loaded, image, mask=mask, blend=blend, tile=args.tile)

    _, failures = process_files(inputs, output, transform, desc="inpainting", with_path=True)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
