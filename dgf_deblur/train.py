"""Train the Deep Generative Filter deblurring GAN.

    python dgf_deblur/train.py                                  # bundled sample pairs, a few minutes on a CPU
    python dgf_deblur/train.py --data data/deshake_256          # side-by-side images (sharp left), keras preset
    python dgf_deblur/train.py --data data/data.h5 --preset paper

--data takes a folder of side-by-side images (train/ and test/ inside, sharp LEFT as the DGF data),
the tutorial's HDF5 file (python datasets/build_hdf5.py), or A/B folders (A blurred, B sharp).
Writes runs/dgf_deblur/<preset>/ (or --out): config.json, checkpoints/, logs/ (TensorBoard),
samples/ (a Blurred | Deblurred | Sharp grid per epoch), generator.weights.h5, generator.keras
(and the discriminator). Rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from common.cli import default_run_dir, number_list, override_config, resolve_vgg_choice, run_cli, train_parser
from dgf_deblur.config import DEFAULT_PRESET, PRESETS, SAMPLE_OVERRIDES, get_config

DESCRIPTION = "Train DGF (Ramakrishnan et al. 2017), a densely connected deblurring GAN."


def build_parser() -> argparse.ArgumentParser:
    p = train_parser("dgf_deblur", PRESETS, DEFAULT_PRESET, DESCRIPTION, perceptual=True)
    g = p.add_argument_group("DGF")
    g.add_argument("--crop-size", type=int, help="random square crop (the discriminator's input size)")
    g.add_argument("--load-size", type=int,
                   help="resize each image to this square size before cropping (0: keep the size)")
    g.add_argument("--patch-size", type=int, help="patch size of the patch-average discriminator")
    g.add_argument("--growth-rate", type=int, help="channels added by each dense block (64)")
    g.add_argument("--bottleneck-channels", type=int, help="width of the 1x1 bottlenecks and the head (256)")
    g.add_argument("--n-blocks", type=int, help="dense blocks (10); give --dilations with as many values")
    g.add_argument("--d-channels", type=int, help="discriminator width (keras: 64, paper: ndf 48)")
    g.add_argument("--dilations", type=number_list(int, name="dilations"),
                   help="comma-separated dilation of each dense block, e.g. 1,1,1,2,1,3,1,2,1,1")
    g.add_argument("--adv-weight", type=float, help="weight of the adversarial term (1)")
    g.add_argument("--perceptual-weight", type=float, help="weight of the VGG term (K_1 = 145)")
    g.add_argument("--l1-weight", type=float, help="weight of the L1 term (K_2 = 170)")
    g.add_argument("--perceptual-layer", help="VGG16 layer of the perceptual loss")
    g.add_argument("--flip", dest="flip", action="store_const", const=True, help="random horizontal flips")
    g.add_argument("--no-flip", dest="flip", action="store_const", const=False, help="no flips")
    g.add_argument("--shuffle", dest="shuffle", action="store_const", const=True,
                   help="draw the training files in random order (paper preset, train.lua); the keras "
                        "preset walks them in name order as main.py: shuffle when one scene's files "
                        "sort together")
    g.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                   help="walk the training files in name order (keras preset, main.py)")
    g.add_argument("--side-by-side", choices=("target_left", "degraded_left"),
                   help="for side-by-side images: which half is sharp (DGF data: target_left)")
    return p


def resolve_config(args):
    """The preset, the sample-data overrides when there is no --data, then the flags."""
    cfg = get_config(args.preset)
    if args.data is None:
        cfg = get_config(cfg, **SAMPLE_OVERRIDES)
    extra = {}
    if getattr(args, "vgg_preprocess", None):
        extra["perceptual_preprocess"] = args.vgg_preprocess
    if args.load_size == 0:
        args.load_size = None
        extra["load_size"] = None
    return override_config(cfg, args, extra=extra)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    from common.sample_data import sample_dir
    from common.samples import paired_sample_grid
    from common.training import TrainJob, train
    from dgf_deblur.data import grid_pairs, training_dataset, training_pairs
    from dgf_deblur.gan import build_gan

    sample_demo = args.data is None
    cfg = resolve_config(args)
    data_path = sample_dir("side_by_side") if sample_demo else Path(args.data)
    source = training_pairs(data_path, cfg)

    # main.py: one pass over the training set per epoch.
    steps = cfg.steps_per_epoch or max(1, len(source) // cfg.batch_size)
    cfg = dataclasses.replace(cfg, steps_per_epoch=steps)

    info = {"data": str(data_path), "pairs": len(source), "sample_demo": sample_demo}
    vgg_weights, use_l1, warnings = resolve_vgg_choice(args.vgg_weights, cfg.perceptual_network,
                                                       sample_demo)
    if use_l1:
        vgg_weights = "l1-fallback"
        info["content_loss"] = "l1 in place of the perceptual term (ImageNet VGG unavailable)"

    blurred, sharp = grid_pairs(data_path, source, cfg)

    job = TrainJob(
        family="dgf_deblur", config=cfg, run_dir=default_run_dir("dgf_deblur", args),
        build_gan=lambda: build_gan(cfg, vgg_weights),
        build_dataset=lambda start_step: training_dataset(source, cfg, start_step),
        sample_grid=paired_sample_grid(blurred, sharp, ("Blurred", "Deblurred", "Sharp")),
        exports=lambda gan: {"generator": gan.generator, "discriminator": gan.discriminator},
        precision=args.precision, strategy=args.strategy, progress=not args.no_progress,
        log_every=args.log_every, max_bad_images=args.max_bad_images,
        info=info, warnings=warnings,
    )
    run_dir = train(job)
    if sample_demo:  # where the demo's numbers stand against the blurred input (issue 12)
        from common.data import open_pairs
        from common.learning_curves import demo_standing
        from common.metrics import psnr
        from dgf_deblur.inference import load, run

        test = open_pairs(data_path, split="test", side_by_side=cfg.side_by_side)
        print(demo_standing("dgf_deblur", [test.load(i) for i in range(len(test))], lambda: load(run_dir),
                            run, lambda blurred: blurred, lambda image, sharp, _: psnr(image, sharp),
                            "deblurred PSNR", "blurred input"), file=sys.stderr)
    print(f"next: python dgf_deblur/test.py --weights {run_dir}   "
          f"python dgf_deblur/predict.py --weights {run_dir} --input IMAGES", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
