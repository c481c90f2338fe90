"""Hyperparameters of the Deep Generative Filter (DGF) deblurring models, one frozen dataclass.

Two complete recipes are provided as presets:

* ``keras``: the Keras tutorial, leftthomas/ImageDeblurring (``model.py``, ``losses.py``,
  ``main.py``; the CSDN walk-through in the seed is a copy of it), with its patch-slicing bug fixed.
* ``paper``: the authors' official Torch code, sainandan-ramakrishnan/
  Deep-Generative-Filter-for-motion-deblurring (``train.lua``, ``models2.lua``, ``densefield.lua``,
  ``checkpoints/model_name/deshake/opt.txt``), which is what the ICCVW 2017 paper
  (arXiv 1709.03481) trained.

Every field can be overridden by name (``get_config("paper", lr=1e-4)``) and by the matching CLI
flag. The differences between the presets and both upstreams are tabulated in README.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common.errors import UserError

GENERATOR_TAIL_INPUTS = ("last", "all")
GLOBAL_SKIPS = ("concat", "add")
WEIGHT_INITS = ("keras", "normal")
DISCRIMINATORS = ("patch_average", "patchgan")
PERCEPTUAL_DISTANCES = ("mse", "l1")
PERCEPTUAL_PREPROCESS = ("none", "caffe")


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of one DGF training recipe. Defaults are the ``keras`` preset."""

    preset: str = "keras"  # the recipe this config started from (recorded in config.json)

    # ---------------------------------------------------------------- generator (model.py)
    # leftthomas model.py `channel_rate = 64`; train.lua `growthRate = 64`: channels each dense
    # block adds to the stack (output of its 3x3 conv).
    growth_rate: int = 64
    # Bottleneck width, 4 * channel_rate in both upstreams (model.py `filters=4 * channel_rate`,
    # densefield.lua `4 * opt.growthRate`); also the head width and the tail 1x1 width.
    bottleneck_channels: int = 256
    # Ten dense blocks: model.py d_1 .. d_10; train.lua depth 64 with bottleneck -> (64-4)/3/2 = 10.
    n_blocks: int = 10
    # Dilation of each block's 3x3 conv. model.py: blocks 2, 4, 6, 8, 10 use 1, 2, 3, 2, 1 (the
    # paper's "linearly increasing dilation" on even layers), odd blocks are plain convs.
    dilations: tuple[int, ...] = (1, 1, 1, 2, 1, 3, 1, 2, 1, 1)
    # model.py dense_block ends with `Dropout(rate=0.5)` ("add Gaussian noise").
    dense_dropout: float = 0.5
    # model.py tail has no dropout; densefield.lua LastLayer has `Dropout(opt.dropRate)` = 0.5.
    tail_dropout: float = 0.0
    # What the tail 1x1 conv sees. model.py: only d_10 ("last"); models2.lua JoinTable: the head
    # output and every dense output concatenated ("all").
    tail_input: str = "last"
    # model.py `concatenate([h, x])` ("concat", 512 channels into the next conv);
    # models2.lua `CAddTable` ("add", 256 channels).
    global_skip: str = "concat"
    # LeakyReLU(alpha=0.2) everywhere in model.py; LeakyReLU(0.2) in densefield.lua / models2.lua.
    leaky_slope: float = 0.2
    # Conv biases. Keras layers have them. train.lua zeroes every conv bias before each D and G
    # evaluation (`m.bias:zero()` in fDx / fGx), i.e. the trained network has none.
    use_bias: bool = True
    # "keras": glorot_uniform kernels, BN gamma 1 (Keras defaults used by model.py).
    # "normal": train.lua weights_init, conv N(0, 0.02), BN gamma N(1, 0.02), beta 0.
    weight_init: str = "keras"
    # BatchNormalization: Keras defaults (momentum 0.99, epsilon 1e-3) in model.py; Torch
    # SpatialBatchNormalization defaults (momentum 0.1 -> Keras 0.9, eps 1e-5) in the Lua code.
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    # ---------------------------------------------------------------- discriminator (model.py)
    # "patch_average": model.py discriminator_model, the image cut into non-overlapping patches,
    # one shared small classifier per patch, the sigmoid outputs averaged.
    # "patchgan": models2.lua defineD_n_layers ('basic' netD), a pix2pix PatchGAN.
    discriminator: str = "patch_average"
    # train.lua `condition_GAN = 1`: D sees cat(blurred, image). model.py D sees the image only.
    conditional: bool = False
    # model.py `patch_shape = (channel_rate, channel_rate, 3)`: 64 x 64 patches of the 256 x 256
    # image (16 of them). Here the patch size is its own field, not channel_rate (upstream bug).
    patch_size: int = 64
    # model.py PatchGAN widths channel_rate * (1, 2, 4, 4) = 64, 128, 256, 256;
    # train.lua `ndf = 48` for the PatchGAN (48, 96, 192, 384).
    d_channels: int = 64
    # model.py: four stride-2 3x3 convs; train.lua: defineD_n_layers(..., n_layers=3), i.e. three
    # stride-2 4x4 convs after the first one (see model.py for the exact layout).
    d_layers: int = 4

    # ---------------------------------------------------------------- losses (gan.py)
    # G loss = adv_weight * adversarial + perceptual_weight * perceptual + l1_weight * L1.
    # losses.py generator_loss K_1 = 145, K_2 = 170; train.lua lambda = 145, lambda1 = 170.
    adv_weight: float = 1.0
    perceptual_weight: float = 145.0
    l1_weight: float = 170.0
    # losses.py adversarial_loss = -log(D(G(x))) has no epsilon (inf when D says 0): here
    # -log(D + adv_epsilon). Keras 2's binary_crossentropy (the D loss) clips D to
    # [K.epsilon(), 1 - K.epsilon()], K.epsilon() = 1e-7; the D loss here clips with adv_epsilon.
    adv_epsilon: float = 1e-7
    # Both upstreams use VGG16 (losses.py keras.applications.VGG16; train.lua vgg16.t7).
    perceptual_network: str = "vgg16"
    # losses.py perceptual_loss: VGG16 block3_conv3 (after its ReLU), MSE.
    # train.lua content_layers '9' of vgg16.t7 = relu2_2 -> Keras block2_conv2, ContentLoss
    # edited to AbsCriterion (L1).
    perceptual_layer: str = "block3_conv3"
    perceptual_distance: str = "mse"
    # Both upstreams feed the [-1, 1] images to VGG without ImageNet preprocessing ("none").
    # "caffe" converts to the BGR, mean-subtracted 0-255 input VGG was trained on.
    perceptual_preprocess: str = "none"

    # ---------------------------------------------------------------- update schedule (gan.py)
    # main.py trains G twice per batch: d_on_g.train_on_batch (adversarial loss) and then
    # g.train_on_batch (content loss), each with its own Adam ("split"). train.lua takes one G
    # step on the summed loss (False).
    split_generator_updates: bool = True
    # main.py: `d.train_on_batch(concatenate(sharp, generated))`, one batch holding real and fake,
    # so D's BatchNorm statistics mix them (True). train.lua: two separate D forwards (False).
    d_joint_batch: bool = True
    # main.py makes the fakes for the D step with `g.predict` (dropout off, BN moving averages)
    # (True). train.lua uses the training-mode forward that the G step also uses (False).
    fakes_from_inference_mode: bool = True

    # ---------------------------------------------------------------- optimiser
    # main.py compiles g, d and d_on_g with the string 'adam': Keras defaults lr 1e-3, beta_1 0.9,
    # beta_2 0.999, epsilon K.epsilon() = 1e-7. train.lua: lr 3e-4, beta1 0.5 (optim.adam eps 1e-8).
    lr: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    adam_epsilon: float = 1e-7

    # ---------------------------------------------------------------- data
    # data_utils.py build_hdf5(..., 256) resizes each half to 256 x 256 (PIL ANTIALIAS);
    # train.lua loadSize = 256. None keeps the stored size.
    load_size: int | None = 256
    # train.lua fineSize = 256 (a random crop of the loaded image, a no-op at 256); model.py has
    # no crop. This is also the discriminator's input size.
    crop_size: int = 256
    # main.py: no augmentation; train.lua `flip = 1`.
    flip: bool = False
    # main.py walks x_train in file order every epoch; train.lua serial_batches = 0 (random).
    shuffle: bool = False
    # The DGF data (deshake_256, leftthomas data/small): one 512 x 256 JPEG per pair, sharp LEFT,
    # blurred right (data_utils.py format_image; train.lua which_direction=BtoA).
    side_by_side: str = "target_left"

    # ---------------------------------------------------------------- schedule
    # main.py __main__: train(batch_size=2, epoch_num=10).
    batch_size: int = 2
    epochs: int = 10
    # None: one pass over the training set per epoch (main.py: len(x_train) // batch_size).
    steps_per_epoch: int | None = None
    seed: int = 0
    # main.py saves the weights and an interim [sharp | blurred | generated] image every 30 batches.
    save_every: int = 30

    def __post_init__(self):
        _validate(self)

    @property
    def image_size(self) -> int:
        """Training image side (the discriminator's input size)."""
        return self.crop_size

    @property
    def num_patches(self) -> int:
        """Patches per image for the ``patch_average`` discriminator."""
        return (self.crop_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(condition: bool, message: str):
    if not condition:
        raise UserError(f"dgf_deblur/config.py: {message}")


def _choice(cfg: Config, field: str, allowed: tuple[str, ...]):
    value = getattr(cfg, field)
    _check(value in allowed, f"{field}={value!r} is not one of {', '.join(allowed)}; pick one of them")


def _validate(cfg: Config):
    _choice(cfg, "tail_input", GENERATOR_TAIL_INPUTS)
    _choice(cfg, "global_skip", GLOBAL_SKIPS)
    _choice(cfg, "weight_init", WEIGHT_INITS)
    _choice(cfg, "discriminator", DISCRIMINATORS)
    _choice(cfg, "perceptual_distance", PERCEPTUAL_DISTANCES)
    _choice(cfg, "perceptual_preprocess", PERCEPTUAL_PREPROCESS)
    _choice(cfg, "side_by_side", ("target_left", "degraded_left"))
    _choice(cfg, "perceptual_network", ("vgg16", "vgg19"))
    for name in ("growth_rate", "bottleneck_channels", "n_blocks", "d_channels", "d_layers",
                 "patch_size", "crop_size", "batch_size", "epochs", "save_every"):
        _check(int(getattr(cfg, name)) >= 1, f"{name} must be a positive integer")
    _check(len(cfg.dilations) == cfg.n_blocks,
           f"dilations has {len(cfg.dilations)} entries but n_blocks={cfg.n_blocks}; give one "
           "dilation per dense block")
    _check(all(int(d) >= 1 for d in cfg.dilations), "every dilation must be >= 1")
    for name in ("dense_dropout", "tail_dropout"):
        _check(0.0 <= getattr(cfg, name) < 1.0, f"{name} must be in [0, 1)")
    if cfg.discriminator == "patch_average":
        _check(cfg.crop_size % cfg.patch_size == 0,
               f"crop_size={cfg.crop_size} is not a multiple of patch_size={cfg.patch_size}; the "
               "discriminator's patches must tile the image exactly, change one of them")
        _check(cfg.patch_size >= 2 ** cfg.d_layers,
               f"patch_size={cfg.patch_size} is smaller than the {2 ** cfg.d_layers} px the "
               f"{cfg.d_layers} stride-2 convs need; use a larger patch or fewer d_layers")
    else:
        # PatchGAN: d_layers + 1 stride-2 convs, then a 4x4 conv with padding 1 (-1 px).
        _check(cfg.crop_size >= 2 ** (cfg.d_layers + 1) * 2,
               f"crop_size={cfg.crop_size} is too small for a PatchGAN with d_layers="
               f"{cfg.d_layers}; use at least {2 ** (cfg.d_layers + 1) * 2}")
    _check(cfg.load_size is None or cfg.load_size >= cfg.crop_size,
           f"load_size={cfg.load_size} is smaller than crop_size={cfg.crop_size}")
    _check(cfg.lr > 0, "lr must be positive")


# The Keras tutorial (leftthomas/ImageDeblurring @ 107b121, copied by the CSDN seed), patch bug fixed.
KERAS = Config(preset="keras")

# The authors' Torch recipe (train.lua, models2.lua, densefield.lua, opt.txt).
PAPER = Config(
    preset="paper",
    # densefield.lua DenseConnectLayerCustom: k % 2 == 0 -> dilation 2, else 1 (written with pad 2,
    # which does not keep the size; "same" padding here).
    dilations=(1, 2, 1, 2, 1, 2, 1, 2, 1, 2),
    dense_dropout=0.0,        # dropout commented out in DenseConnectLayerCustom
    tail_dropout=0.5,         # LastLayer: Dropout(opt.dropRate = 0.5)
    tail_input="all",         # models2.lua: JoinTable(2) of the head and all dense outputs
    global_skip="add",        # models2.lua: CAddTable(inner_skip, highway)
    use_bias=False,           # train.lua fDx / fGx: m.bias:zero() on every conv, every step
    weight_init="normal",     # train.lua weights_init
    bn_momentum=0.9,          # Torch momentum 0.1
    bn_epsilon=1e-5,          # Torch eps
    discriminator="patchgan",  # train.lua which_model_netD = 'basic'
    conditional=True,         # train.lua condition_GAN = 1
    d_channels=48,            # train.lua ndf = 48
    d_layers=3,               # defineD_n_layers(input_nc, output_nc, ndf, 3)
    perceptual_layer="block2_conv2",  # content_layers '9' = relu2_2 of vgg16.t7
    perceptual_distance="l1",  # ContentLoss with AbsCriterion
    split_generator_updates=False,  # one optim.adam(fGx) step on the summed loss
    d_joint_batch=False,      # fDx: netD:forward(real_AB), then netD:forward(fake_AB)
    fakes_from_inference_mode=False,  # createRealFake: netG:forward in training mode
    lr=3e-4,                  # train.lua lr = 0.0003
    beta_1=0.5,               # train.lua beta1 = 0.5
    adam_epsilon=1e-8,        # optim.adam default epsilon
    flip=True,                # train.lua flip = 1
    shuffle=True,             # train.lua serial_batches = 0
    batch_size=1,             # train.lua batchSize = 1
    # train.lua niter = 1e8 epochs, i.e. "until stopped". A finite stand-in: 300 epochs of the
    # 604-image deshake_256 training set at batch 1 is about 181k iterations.
    epochs=300,
    save_every=2500,          # train.lua save_latest_freq = 2500
)

PRESETS: dict[str, Config] = {"keras": KERAS, "paper": PAPER}
DEFAULT_PRESET = "keras"

# The bundled sample data (common.sample_data "side_by_side": 512 x 256 pairs), so that
# `python dgf_deblur/train.py` finishes in a few minutes on a 2-core CPU: 64 x 64 random crops of
# the 256 x 256 halves (the blur keeps its pixel scale), 16 px patches (still 4 x 4 = 16 per image,
# as upstream), and a quarter-width network (growth 16, bottleneck 64, D width 16; about 16x fewer
# FLOPs), which in 120 steps learns to reproduce the scene. At full width a dozen steps fit in
# the same time and still give colour blobs. A demo of the pipeline, not of the method.
SAMPLE_OVERRIDES: dict = {
    "growth_rate": 16,
    "bottleneck_channels": 64,
    "d_channels": 16,
    "crop_size": 64,
    "patch_size": 16,
    "batch_size": 2,
    "epochs": 2,
    "steps_per_epoch": 60,
    "save_every": 60,
    # The BN moving averages (used by the sample grids, and by the keras preset's fakes for D)
    # must move within the short run; 0.99 would leave them near their initial values.
    "bn_momentum": 0.9,
}


def get_config(preset_or_config: str | Config = DEFAULT_PRESET, **overrides) -> Config:
    """A preset (by name) or a ``Config`` with ``overrides`` applied; unknown names raise UserError."""
    if isinstance(preset_or_config, Config):
        base = preset_or_config
    else:
        if preset_or_config not in PRESETS:
            raise UserError(
                f"dgf_deblur/config.py: unknown preset {preset_or_config!r}; use one of "
                f"{', '.join(PRESETS)}"
            )
        base = PRESETS[preset_or_config]
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(
            f"dgf_deblur/config.py: unknown setting(s) {', '.join(unknown)}; valid names are "
            f"{', '.join(sorted(fields))}"
        )
    if "dilations" in overrides and overrides["dilations"] is not None:
        overrides["dilations"] = tuple(int(d) for d in overrides["dilations"])
    return dataclasses.replace(base, **overrides)
