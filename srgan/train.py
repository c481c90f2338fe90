"""Train SRGAN / SRResNet.

    python srgan/train.py                                        # bundled sample photos, minutes on a CPU
    python srgan/train.py --data data/DIV2K_train_HR             # the tutorial's recipe (bubbliiiing)
    python srgan/train.py --data data/DIV2K_train_HR --preset paper --stage srresnet
    python srgan/train.py --data data/DIV2K_train_HR --preset paper --stage srgan \\
        --init-from runs/srgan/paper-srresnet

--data is a folder of HR images (or DIR/train + DIR/test); the LR inputs are made on the fly.
Writes runs/srgan/<preset>-<stage>/ (with -sample appended for the sample demo; or --out):
config.json, checkpoints/, logs/ (TensorBoard), samples/ (Bicubic | SR | HR grids per epoch),
generator.weights.h5 and generator.keras. Rerunning the same command resumes.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from common.cli import RUNS_ROOT, resolve_vgg_choice, run_cli, train_parser
from common.errors import UserError
from srgan.config import (
    DEFAULT_PRESET, LR_RANGE_CHOICES, PRESETS, SAMPLE_OVERRIDES, SCALE_CHOICES, SCHEDULE_CHOICES,
    STAGE_CHOICES, get_config,
)

DESCRIPTION = ("Train SRGAN (Ledig et al. 2017): stage srresnet (pixel MSE) and/or stage srgan "
               "(adversarial) on a folder of HR images.")
GRID_CROP = 192  # HR size of the per-epoch sample crops
ARCHITECTURE_FIELDS = ("scale", "filters", "num_res_blocks", "upsample_filters", "head_kernel",
                       "tail_kernel")


def build_parser():
    p = train_parser("srgan", PRESETS, DEFAULT_PRESET, DESCRIPTION, perceptual=True)
    g = p.add_argument_group("SRGAN")
    g.add_argument("--stage", choices=STAGE_CHOICES,
                   help="srresnet: generator alone on pixel MSE; srgan: adversarial stage "
                        "(default: the preset's; paper starts with srresnet)")
    g.add_argument("--init-from", dest="init_from", metavar="RUN",
                   help="initialise the generator from this run directory or weights file "
                        "(paper stage srgan: the SRResNet run; default runs/srgan/paper-srresnet "
                        "when it exists)")
    g.add_argument("--scale", type=int, choices=SCALE_CHOICES, help="upscaling factor")
    g.add_argument("--res-blocks", dest="num_res_blocks", type=int,
                   help="generator residual blocks (paper B = 16)")
    g.add_argument("--filters", type=int, help="generator feature maps (64)")
    g.add_argument("--hr-crop", dest="hr_crop", type=int, help="HR training crop (LR crop = HR / scale)")
    g.add_argument("--lr-range", dest="lr_range", choices=LR_RANGE_CHOICES,
                   help="generator input range: signed [-1, 1] (tutorial) or unit [0, 1] (paper)")
    g.add_argument("--pixel-weight", dest="pixel_weight", type=float, help="weight of the pixel MSE")
    g.add_argument("--content-weight", dest="content_weight", type=float,
                   help="weight of the VGG54 feature MSE (tutorial 2e-6, paper 1 with /12.75 features)")
    g.add_argument("--adv-weight", dest="adv_weight", type=float, help="weight of -log D(G(x)) (1e-3)")
    g.add_argument("--lr-schedule", dest="lr_schedule", choices=SCHEDULE_CHOICES,
                   help="constant, piecewise (paper: x0.1 after 1e5 steps) or warmup_cosine (tutorial)")
    g.add_argument("--no-flip", dest="flip", action="store_const", const=False,
                   help="no random horizontal flips")
    g.add_argument("--shared-optimizer", dest="shared_optimizer", action="store_const", const=True,
                   help="one Adam for D and G, as bubbliiiing's train.py (default: one each)")
    return p


def _given_overrides(args) -> dict:
    names = {f.name for f in dataclasses.fields(PRESETS[DEFAULT_PRESET])}
    return {k: v for k, v in vars(args).items() if k in names and k != "preset" and v is not None}


def _run_name(cfg, sample_demo: bool) -> str:
    return f"{cfg.preset}-{cfg.stage}" + ("-sample" if sample_demo else "")


def _check_init(cfg, init_from: str):
    """The run to initialise from must have the same generator and input range."""
    from srgan.inference import run_config
    from common.cli import resolve_weights

    run_dir, weights_file = resolve_weights("srgan", init_from)
    if run_dir is not None:
        source = run_config(run_dir, cfg.preset)
        different = [f"{name} {getattr(source, name)} vs {getattr(cfg, name)}"
                     for name in (*ARCHITECTURE_FIELDS, "lr_range")
                     if getattr(source, name) != getattr(cfg, name)]
        if different:
            raise UserError(f"{run_dir}: --init-from run differs from this one ({'; '.join(different)});"
                            " initialise from a run of the same preset / scale")
    return weights_file


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    from common.data import open_images
    from common.losses import PerceptualLoss, l1
    from common.sample_data import sample_dir
    from common.training import TrainJob, train
    from common.image_io import read_image
    from srgan.data import center_crop, training_dataset
    from srgan.gan import SRGAN, make_optimizer
    from srgan.model import build_discriminator, build_generator
    from srgan.samples import sr_sample_grid
    from srgan.schedule import learning_rate

    sample_demo = args.data is None
    overrides = {**(SAMPLE_OVERRIDES if sample_demo else {}), **_given_overrides(args)}
    cfg = get_config(args.preset, **overrides)
    run_dir = Path(args.out) if args.out else RUNS_ROOT / "srgan" / _run_name(cfg, sample_demo)

    warnings = []
    # The paper's GAN stage starts from the trained SRResNet (§3.2).
    if cfg.stage == "srgan" and cfg.init_from is None and cfg.preset == "paper":
        candidate = RUNS_ROOT / "srgan" / _run_name(get_config(cfg, stage="srresnet"), sample_demo)
        if (candidate / "generator.weights.h5").is_file():
            cfg = dataclasses.replace(cfg, init_from=str(candidate))
            print(f"initialising the generator from {candidate} (the SRResNet stage)", file=sys.stderr)
        else:
            warnings.append("the paper initialises the SRGAN generator from a trained SRResNet; none "
                            f"was found in {candidate} and no --init-from was given, so G starts from "
                            "random weights (run --stage srresnet first)")
    init_weights = _check_init(cfg, cfg.init_from) if cfg.init_from else None

    data_path = sample_dir("hr_images") if sample_demo else Path(args.data)
    source = open_images(data_path)
    cfg = cfg.resolved(len(source))  # steps_per_epoch / save_every from the data size if unset
    info = {"data": str(data_path), "images": len(source), "sample_demo": sample_demo}
    if init_weights:
        info["init_weights"] = str(init_weights)

    content = None  # "vgg" | "l1" | None
    vgg_weights = None
    if cfg.stage == "srgan" and cfg.content_weight > 0:
        vgg_weights, use_l1, vgg_warnings = resolve_vgg_choice(args.vgg_weights, "vgg19", sample_demo)
        warnings += vgg_warnings
        content = "l1" if use_l1 else "vgg"
        info["content_loss"] = ("l1 (ImageNet VGG19 unavailable)" if use_l1 else
                                f"vgg19 {cfg.vgg_layer} mse, preprocess {cfg.vgg_preprocess}, "
                                f"x{cfg.vgg_feature_scale:.6g}")

    # A fixed set of crops for the per-epoch grids: the first images of the test split if any.
    grid_source = open_images(data_path, split="test") if (data_path / "test").is_dir() else source
    grid_images = [center_crop(read_image(grid_source.files[i]), GRID_CROP, cfg.scale)
                   for i in range(min(3, len(grid_source)))]
    grid_images = [image for image in grid_images if min(image.shape[:2]) >= 4 * cfg.scale]

    def build_gan():
        generator = build_generator(preset=cfg)
        if init_weights:
            generator.load_weights(init_weights)
        discriminator = build_discriminator(cfg) if cfg.stage == "srgan" else None
        content_loss = None
        if content == "vgg":
            content_loss = PerceptualLoss("vgg19", cfg.vgg_layer, preprocess=cfg.vgg_preprocess,
                                          feature_scale=cfg.vgg_feature_scale, distance="mse",
                                          weights=vgg_weights)
        elif content == "l1":
            content_loss = l1
        gan = SRGAN(generator, discriminator, config=cfg, content_loss=content_loss, seed=cfg.seed)
        gan.compile(make_optimizer(cfg), make_optimizer(cfg) if discriminator is not None else None)
        return gan

    def lr_schedule(step):
        value = learning_rate(cfg, step)
        return {"g_optimizer": value, "d_optimizer": value}

    job = TrainJob(
        family="srgan", config=cfg, run_dir=run_dir,
        build_gan=build_gan,
        build_dataset=lambda start_step: training_dataset(source, cfg, start_step),
        sample_grid=sr_sample_grid(grid_images, cfg) if grid_images else None,
        lr_schedule=lr_schedule,
        precision=args.precision, strategy=args.strategy, progress=not args.no_progress,
        log_every=args.log_every, max_bad_images=args.max_bad_images,
        info=info, warnings=warnings,
    )
    run_dir = train(job)
    if sample_demo:  # where the demo's numbers stand against bicubic (issue 12)
        from common.learning_curves import demo_standing
        from common.metrics import psnr_y
        from srgan.data import bicubic_upscale, downscale_uint8, mod_crop
        from srgan.inference import load, run

        s = cfg.scale
        hrs = [mod_crop(read_image(f), s) for f in open_images(data_path, split="test").files]
        print(demo_standing("srgan", [(downscale_uint8(hr, s), hr) for hr in hrs], lambda: load(run_dir), run,
                            lambda lr: bicubic_upscale(lr, s), lambda image, hr, _: psnr_y(image, hr, border=s),
                            "SR PSNR-Y", "bicubic"), file=sys.stderr)
    hints = [f"python srgan/predict.py --weights {run_dir} --input IMAGES",
             f"python srgan/test.py --weights {run_dir}" + ("" if sample_demo else " --data HR_DIR")]
    if cfg.stage == "srresnet":
        hints.insert(0, f"python srgan/train.py --preset {cfg.preset} --stage srgan --init-from {run_dir}"
                        + ("" if sample_demo else f" --data {args.data}"))
    print("next: " + "\n      ".join(hints), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
