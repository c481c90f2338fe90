"""Evaluate a GLCIC run on masked test images: mean fill vs phase-1 model vs GLCIC (phase 3).

    python glcic_inpaint/test.py                          # newest run, bundled sample test photos
    python glcic_inpaint/test.py --weights runs/glcic_inpaint/paper --data DIR --masks DIR

Each test image is resized (short side = the run's training crop, --size) and centre-cropped,
then masked with random holes of the run's preset (fixed --mask-seed) or with --masks DIR/<name>.png
(white = hole, the size of the original image). Writes grids
Input | Mean fill | Completion (phase 1) | GLCIC (phase 3) | Ground truth with PSNR / SSIM in the
hole and on the whole image, and metrics.csv (one row per image and the means).
"""

from __future__ import annotations

import csv
from pathlib import Path

from common.cli import run_cli, test_parser
from common.errors import UserError

FAMILY = "glcic_inpaint"
METHODS = ("mean_fill", "phase1", "glcic")
TITLES = {"mean_fill": "Mean fill", "phase1": "Completion (phase 1)", "glcic": "GLCIC (phase 3)"}
ROWS_PER_GRID = 6


def build_parser():
    p = test_parser(FAMILY, __doc__.splitlines()[0])
    p.add_argument("--masks", help="folder of masks named like the test images (PNG, white = hole); "
                                   "default: random holes of the run's preset")
    p.add_argument("--mask-seed", type=int, default=0, help="seed of the random test holes")
    p.add_argument("--size", type=int,
                   help="short side the test images are resized to, then centre-cropped square "
                        "(default: the run's training crop; 0 keeps every image at its own size)")
    p.add_argument("--blend", choices=("none", "poisson"), default="none",
                   help="poisson: the paper's post-processing on both models' completions")
    from glcic_inpaint.inference import add_model_flags

    return add_model_flags(p)


def _mask_for(name: str, path: Path, masks_dir: Path | None, shape, index: int, config, seed: int):
    import numpy as np

    from glcic_inpaint.masks import HoleSpec, load_mask, sample_holes

    if masks_dir is not None:
        candidates = [masks_dir / f"{name}{suffix}" for suffix in (".png", ".PNG")]
        candidates += sorted(masks_dir.glob(f"{Path(path).stem}.*"))
        for candidate in candidates:
            if candidate.is_file():
                return load_mask(candidate, shape[:2])
        raise UserError(f"{masks_dir}: no mask for {path.name}; add {name}.png (white = hole)")
    height, width = shape[:2]
    local = min(config.local_size, height, width)
    spec = HoleSpec((height, width), local, min(config.hole_min, local),
                    min(config.hole_max, local), tuple(config.holes), config.local_placement)
    return np.asarray(sample_holes(1, spec, (seed, index)).masks[0])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from common.precision import set_inference_precision

    set_inference_precision(args.precision, "glcic_inpaint")
    from glcic_inpaint.inference import load, load_from_args

    final = load_from_args(args)
    config, run_dir = final.config, final.run_dir
    phase1 = None
    phase1_file = run_dir / "generator_phase1.weights.h5" if run_dir is not None else None
    if phase1_file is not None and phase1_file.is_file():
        phase1 = load(phase1_file)
    else:
        print(f"note: no generator_phase1.weights.h5 next to {args.weights or 'the run'} (Tc = 0, or not "
              "a run of ours); the phase-1 column stays empty")

    from common.data import open_images
    from common.sample_data import sample_dir

    data = Path(args.data).expanduser() if args.data else sample_dir("inpaint")
    split = "test" if (data / "test").is_dir() else None
    source = open_images(data, split=split)
    masks_dir = Path(args.masks).expanduser() if args.masks else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise UserError(f"{masks_dir}: no such folder; --masks takes a folder of PNG masks")
    size = config.image_size if args.size is None else args.size
    output = Path(args.output) if args.output else Path("outputs") / FAMILY / "test"
    count = len(source) if args.limit is None else max(0, min(args.limit, len(source)))
    from common.inference import Batch

    batch = Batch()  # one failing image is one line; the others go on
    records, rows, captions = evaluate(source, count, final, phase1, config, masks_dir, size,
                                       args.mask_seed, args.blend, batch)
    if records:
        write_outputs(output, records, rows, captions, config, final.description)
    return batch.finish()


def evaluate(source, count, final, phase1, config, masks_dir, size, seed, blend, batch=None):
    """Score every image; one that fails is one line (``batch``: common.inference.Batch)."""
    import numpy as np

    from common.inference import Batch
    from common.metrics import psnr, ssim
    from glcic_inpaint.inference import fit_square, hole_psnr, hole_ssim, masked_display, mean_fill, run

    blend = None if blend == "none" else blend
    batch = Batch() if batch is None else batch
    records, rows, captions = [], [], []
    for index in range(count):
        name, path = source.names[index], source.files[index]
        with batch.item(path):
            image = source.load(index)
            batch.shape = image.shape
            if masks_dir is not None:  # a user mask has the original image's size
                mask = _mask_for(name, path, masks_dir, image.shape, index, config, seed)
                if size:
                    image, mask = fit_square(image, size), fit_square(mask, size, nearest=True)
            else:
                if size:
                    image = fit_square(image, size)
                mask = _mask_for(name, path, None, image.shape, index, config, seed)
            results = {"mean_fill": mean_fill(image, mask),
                       "glcic": run(final, image, mask=mask, blend=blend)}
            if phase1 is not None:
                results["phase1"] = run(phase1, image, mask=mask, blend=blend)
            record = {"image": name, "hole_fraction": round(float(np.mean(mask)), 4)}
            row, caption = [masked_display(image, mask)], [None]
            for method in METHODS:
                result = results.get(method)
                if result is None:
                    row.append(None)
                    caption.append(None)
                    continue
                values = {"psnr_hole": hole_psnr(result, image, mask),
                          "ssim_hole": hole_ssim(result, image, mask),
                          "psnr": psnr(result, image), "ssim": ssim(result, image)}
                record.update({f"{method}_{k}": round(v, 4) for k, v in values.items()})
                row.append(result)
                caption.append(f"hole {values['psnr_hole']:.2f} dB / {values['ssim_hole']:.3f}\n"
                               f"all {values['psnr']:.2f} dB / {values['ssim']:.3f}")
            row.append(image)
            caption.append(None)
            records.append(record)
            rows.append(row)
            captions.append(caption)
    return records, rows, captions


def write_outputs(output: Path, records, rows, captions, config, weights: str) -> None:
    from common.grids import save_grid
    from common.metrics import mean_metrics

    output.mkdir(parents=True, exist_ok=True)
    columns = ["Input", *(TITLES[m] for m in METHODS), "Ground truth"]
    for start in range(0, len(rows), ROWS_PER_GRID):
        save_grid(output / f"grid_{start // ROWS_PER_GRID:03d}.png",
                  rows[start:start + ROWS_PER_GRID], columns,
                  captions=captions[start:start + ROWS_PER_GRID],
                  title=f"GLCIC ({config.preset}): PSNR dB / SSIM in the hole and on the whole image")
    means = mean_metrics(records)
    fields = ["image", "hole_fraction"] + [f"{m}_{k}" for m in METHODS
                                           for k in ("psnr_hole", "ssim_hole", "psnr", "ssim")]
    with open(output / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(records)
        writer.writerow({"image": "mean", **{k: round(v, 4) for k, v in means.items()}})
    print(f"{len(records)} test images, {weights}")
    print(f"{'method':<22}{'PSNR hole':>10}{'SSIM hole':>10}{'PSNR':>8}{'SSIM':>8}")
    for method in METHODS:
        if f"{method}_psnr" not in means:
            continue
        print(f"{TITLES[method]:<22}{means[f'{method}_psnr_hole']:>10.2f}"
              f"{means[f'{method}_ssim_hole']:>10.3f}{means[f'{method}_psnr']:>8.2f}"
              f"{means[f'{method}_ssim']:>8.3f}")
    print(f"grids and metrics.csv in {output}")


if __name__ == "__main__":
    run_cli(main)
