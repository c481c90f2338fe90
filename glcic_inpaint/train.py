"""Train GLCIC inpainting: completion network, then discriminator, then both (three phases).

    python glcic_inpaint/train.py                         # bundled sample photos, a few minutes
    python glcic_inpaint/train.py --data DIR --preset paper --out runs/glcic_inpaint/places2
    python glcic_inpaint/train.py --data DIR --preset tadax --phase-steps 20000,0,60000

Rerun the same command to resume (across phases). See glcic_inpaint/README.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from common.cli import default_run_dir, number_list, run_cli, train_parser
from common.errors import UserError
from glcic_inpaint.config import (
    DEFAULT_PRESET,
    PRESETS,
    SAMPLE_OVERRIDES,
    Config,
    get_config,
)

FAMILY = "glcic_inpaint"
GRID_EXAMPLES = 3
GRID_SEED = 123_457  # masks of the per-epoch grids (fixed: the same holes every epoch)


def build_parser():
    p = train_parser(FAMILY, PRESETS, DEFAULT_PRESET, __doc__.splitlines()[0], perceptual=False)
    g = p.add_argument_group("GLCIC")
    g.add_argument("--phase-steps", dest="phase_steps", type=number_list(int, 3, "Tc,Td,Ttotal"),
                   help="Tc,Td,Ttotal: completion network alone until Tc, discriminator alone "
                        "until Tc+Td, both until Ttotal (paper 90000,10000,500000)")
    g.add_argument("--alpha", type=float, help="weight of the adversarial terms (paper 0.0004)")
    g.add_argument("--mse-weight", dest="mse_weight", type=float,
                   help="weight of the masked MSE (1; 0 leaves only the adversarial term)")
    g.add_argument("--image-size", dest="image_size", type=int, help="training crop side")
    g.add_argument("--resize-short-side", dest="resize_short_side", type=number_list(int, 2, "lo,hi"),
                   help="lo,hi: short side resized to a random size in [lo, hi] before cropping")
    g.add_argument("--local-size", dest="local_size", type=int, help="local discriminator patch")
    g.add_argument("--hole-min", dest="hole_min", type=int, help="smallest hole side (inclusive)")
    g.add_argument("--hole-max", dest="hole_max", type=int, help="largest hole side (inclusive)")
    g.add_argument("--holes", type=number_list(int, 2, "lo,hi"), help="lo,hi holes per training image")
    g.add_argument("--mean-color", dest="mean_color", type=number_list(float, 3, "r,g,b"),
                   help="hole fill colour in the preset's value range (default: training-set mean)")
    g.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any config field (repeatable), e.g. --set filters=32 "
                        "--set global_d_filters=64,128,256,512; fields: glcic_inpaint/config.py")
    return p


def parse_settings(items: list[str]) -> dict:
    """``["filters=32", "local_d_filters=64,128"]`` -> typed values, by the fields' defaults."""
    defaults = {f.name: getattr(PRESETS[DEFAULT_PRESET], f.name) for f in dataclasses.fields(Config)}
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in defaults:
            raise UserError(f"--set {item}: expected FIELD=VALUE with FIELD one of "
                            f"{', '.join(sorted(defaults))}")
        default, text = defaults[name], text.strip()
        try:
            if text.lower() == "none":
                value = None
            elif isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1", "yes")
            elif isinstance(default, tuple) or (default is None and "," in text):
                kind = float if name == "mean_color" else int
                value = tuple(kind(v) for v in text.split(",") if v.strip())
            elif isinstance(default, int):
                value = int(text)
            elif isinstance(default, float):
                value = float(text)
            else:
                value = text
        except ValueError:
            raise UserError(f"--set {item}: {text!r} is not a valid value for {name} "
                            f"(default {default!r})") from None
        values[name] = value
    return values


def config_from_args(args) -> Config:
    """Preset, then the sample-data schedule when no --data is given, then every flag given."""
    config = get_config(args.preset)
    if args.data is None:
        config = get_config(config, **SAMPLE_OVERRIDES)
    fields = {f.name for f in dataclasses.fields(Config)}
    overrides = parse_settings(args.settings)
    overrides.update({k: v for k, v in vars(args).items()
                      if k in fields and k != "preset" and v is not None})
    return get_config(config, **overrides)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)

    from common.sample_data import sample_dir
    from glcic_inpaint.data import dataset_mean_color, grid_images, training_images

    data = Path(args.data).expanduser() if args.data else sample_dir("inpaint")
    source = training_images(data)
    warnings = []
    if config.hole_fill == "mean" and config.mean_color is None:
        config = get_config(config, mean_color=dataset_mean_color(source, config))
    grid_source = grid_images(data, source)
    return run(config, source, grid_source, default_run_dir(FAMILY, args), args, warnings, data)


def _grid_examples(grid_source, config: Config):
    import numpy as np

    from glcic_inpaint.inference import fit_square
    from glcic_inpaint.masks import hole_spec, sample_holes

    count = min(GRID_EXAMPLES, len(grid_source))
    images = np.stack([fit_square(grid_source.load(i), config.image_size) for i in range(count)])
    masks = sample_holes(count, hole_spec(config), (config.seed, GRID_SEED)).masks.numpy()
    return images, masks


def sample_grid(grid_source, config: Config):
    """The per-epoch grid: Input (holes white) | Completed | Ground truth, PSNR / SSIM in the hole."""
    import numpy as np

    from common.grids import save_grid
    from glcic_inpaint.inference import complete, hole_psnr, hole_ssim, masked_display

    images, masks = _grid_examples(grid_source, config)

    def write(gan, path: Path) -> None:
        rows, captions = [], []
        for image, mask in zip(images, masks):
            result = complete(gan.generator, image, mask, config)
            rows.append([masked_display(image, mask), result, image])
            caption = (f"hole PSNR {hole_psnr(result, image, mask):.2f} dB / "
                       f"SSIM {hole_ssim(result, image, mask):.3f}")
            captions.append([None, caption, None])
        step = int(np.asarray(gan.global_step))
        stage = f"phase {config.phase(step - 1)}" if step else "untrained"
        save_grid(path, rows, ["Input", "Completed", "Ground truth"], captions=captions,
                  title=f"{Path(path).stem.replace('_', ' ')}: step {step}, {stage}")

    return write


def run(config: Config, source, grid_source, run_dir: Path, args, warnings, data) -> int:
    from common.training import TrainJob, train
    from glcic_inpaint.data import training_dataset
    from glcic_inpaint.gan import build_gan

    def build_dataset(start_step: int):
        return training_dataset(source, config, start_step)

    def exports(gan):
        models = {"generator": gan.generator}
        if gan.phase1_generator is not None:
            models["generator_phase1"] = gan.phase1_generator
        return models

    tc, td, total = config.phase_steps
    print(f"GLCIC {config.preset}: phase 1 steps 0-{tc}, phase 2 to {tc + td}, phase 3 to "
          f"{total}; {len(source)} training images in {data}")
    job = TrainJob(
        family=FAMILY,
        config=config,
        run_dir=Path(run_dir),
        build_gan=lambda: build_gan(config, config.mean_color),
        build_dataset=build_dataset,
        sample_grid=sample_grid(grid_source, config),
        exports=exports,
        precision=args.precision,
        strategy=args.strategy,
        progress=not args.no_progress,
        log_every=args.log_every, max_bad_images=args.max_bad_images,
        info={"data": str(data), "sample_demo": args.data is None,
              "mean_color": config.mean_color},
        warnings=warnings,
    )
    train(job)
    if args.data is None:  # where the demo's numbers stand against mean fill (issue 12)
        import numpy as np

        from common.data import open_images
        from common.learning_curves import demo_standing
        from glcic_inpaint.inference import fit_square, hole_psnr, load, mean_fill, run as complete
        from glcic_inpaint.masks import hole_spec, sample_holes

        test = open_images(data, split="test")  # test.py's images and its default holes (seed 0)
        images = [fit_square(test.load(i), config.image_size) for i in range(len(test))]
        items = [((image, np.asarray(sample_holes(1, hole_spec(config), (0, i)).masks[0])), image)
                 for i, image in enumerate(images)]
        print(demo_standing(FAMILY, items, lambda: load(run_dir), lambda m, x: complete(m, x[0], mask=x[1]),
                            lambda x: mean_fill(*x), lambda image, target, x: hole_psnr(image, target, x[1]),
                            "completion hole PSNR", "mean fill"))
    return 0


if __name__ == "__main__":
    run_cli(main)
