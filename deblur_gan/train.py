"""Train DeblurGAN.

    python deblur_gan/train.py                                   # bundled sample pairs, a few minutes on a CPU
    python deblur_gan/train.py --data data/gopro                 # the paper recipe on GoPro
    python deblur_gan/train.py --data data/gopro --preset keras-port

Writes runs/deblur_gan/<preset>/ (or --out): config.json, checkpoints/, logs/ (TensorBoard),
samples/ (a Blurred | Deblurred | Sharp grid per epoch), generator.weights.h5, generator.keras.
Rerunning the same command resumes.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from common.cli import default_run_dir, override_config, resolve_vgg_choice, run_cli, train_parser
from deblur_gan.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, get_config

DESCRIPTION = "Train DeblurGAN (Kupyn et al. 2018) on blurred/sharp pairs."


def build_parser():
    p = train_parser("deblur_gan", PRESETS, DEFAULT_PRESET, DESCRIPTION, perceptual=True)
    g = p.add_argument_group("DeblurGAN")
    g.add_argument("--ngf", type=int, help="generator width (64)")
    g.add_argument("--ndf", type=int, help="critic width (64)")
    g.add_argument("--n-blocks", type=int, help="residual blocks (9)")
    g.add_argument("--upsampling", choices=("transpose", "nearest"),
                   help="generator upsampling: transposed conv (paper, tutorial) or nearest + conv")
    g.add_argument("--content-loss", choices=("perceptual", "l1", "l2"),
                   help="perceptual (VGG, needs ImageNet weights) or a pixel loss")
    g.add_argument("--content-weight", type=float, help="weight of the content term (paper: 100)")
    g.add_argument("--gp-variant", choices=("standard", "official"),
                   help="gradient penalty: standard WGAN-GP or the official code's per-batch / per-pixel form")
    g.add_argument("--gp-weight", type=float, help="gradient penalty weight (paper: 10; 0 = none)")
    g.add_argument("--critic-updates", type=int, help="critic updates per generator update (5)")
    g.add_argument("--decay-epochs", type=int, help="last epochs with the learning rate decayed linearly to 0")
    g.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="random crop size")
    g.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"), help="resize each pair to H x W first")
    g.add_argument("--no-crop", dest="no_crop", action="store_true", help="train on whole (resized) images")
    g.add_argument("--no-resize", dest="no_resize", action="store_true", help="crop from the images as they are")
    g.add_argument("--no-flip", dest="flip", action="store_const", const=False, help="no horizontal flips")
    g.add_argument("--side-by-side", default="degraded_left", choices=("degraded_left", "target_left"),
                   help="for a folder of side-by-side images: which half is blurred (official combine "
                        "script: left)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    from common.sample_data import sample_dir
    from common.samples import paired_sample_grid
    from common.training import TrainJob, train
    from deblur_gan.data import grid_pairs, training_dataset, training_pairs
    from deblur_gan.gan import DeblurGAN, learning_rate, make_content_loss, make_optimizer
    from deblur_gan.model import build_discriminator, build_generator

    sample_demo = args.data is None
    cfg = get_config(args.preset)
    if sample_demo:
        cfg = get_config(cfg, **SAMPLE_OVERRIDES)
    extra = {}
    if args.no_crop:
        extra["crop"] = None
    if args.no_resize:
        extra["resize"] = None
    if args.epochs is not None and args.decay_epochs is None and cfg.decay_epochs:
        # a shorter (or longer) run keeps the recipe's proportion of constant and decaying epochs
        extra["decay_epochs"] = round(args.epochs * cfg.decay_epochs / cfg.epochs)
    cfg = override_config(cfg, args, extra=extra)

    data_path = sample_dir("blurred_pairs") if sample_demo else Path(args.data)
    source = training_pairs(data_path, cfg, args.side_by_side)

    # Resolve the per-dataset defaults so config.json records what ran.
    steps = cfg.steps_per_epoch or max(1, len(source) // cfg.batch_size)
    cfg = dataclasses.replace(cfg, steps_per_epoch=steps, save_every=cfg.save_every or steps)

    warnings, info = [], {"data": str(data_path), "pairs": len(source), "sample_demo": sample_demo}
    vgg_weights = None
    if cfg.content_loss == "perceptual":
        vgg_weights, use_l1, warnings = resolve_vgg_choice(args.vgg_weights, cfg.vgg_network, sample_demo)
        if use_l1:
            cfg = dataclasses.replace(cfg, content_loss="l1")
            info["content_loss"] = "l1 (ImageNet VGG unavailable)"

    blurred, sharp = grid_pairs(data_path, source, cfg, args.side_by_side)

    def build_gan():
        generator = build_generator(cfg)
        discriminator = build_discriminator(cfg)
        gan = DeblurGAN(generator, discriminator, cfg, make_content_loss(cfg, vgg_weights), seed=cfg.seed)
        gan.compile(make_optimizer(cfg, "g_adam"), make_optimizer(cfg, "d_adam"))
        return gan

    def lr_schedule(step):
        lr = learning_rate(cfg, step, cfg.steps_per_epoch)
        return {"g_optimizer": lr, "d_optimizer": lr}

    job = TrainJob(
        family="deblur_gan", config=cfg, run_dir=default_run_dir("deblur_gan", args),
        build_gan=build_gan,
        build_dataset=lambda start_step: training_dataset(source, cfg, start_step),
        sample_grid=paired_sample_grid(blurred, sharp, ("Blurred", "Deblurred", "Sharp")),
        lr_schedule=lr_schedule if cfg.decay_epochs > 0 else None,
        precision=args.precision, strategy=args.strategy, progress=not args.no_progress,
        log_every=args.log_every, max_bad_images=args.max_bad_images,
        info=info, warnings=warnings,
    )
    run_dir = train(job)
    if sample_demo:  # where the demo's numbers stand against the blurred input (issue 12)
        from common.data import open_pairs
        from common.learning_curves import demo_standing
        from common.metrics import psnr
        from deblur_gan.inference import load, run

        test = open_pairs(data_path, split="test")
        print(demo_standing("deblur_gan", [test.load(i) for i in range(len(test))], lambda: load(run_dir),
                            run, lambda blurred: blurred, lambda image, sharp, _: psnr(image, sharp),
                            "deblurred PSNR", "blurred input"), file=sys.stderr)
    print(f"next: python deblur_gan/test.py --weights {run_dir}   "
          f"python deblur_gan/predict.py --weights {run_dir} --input IMAGES", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
