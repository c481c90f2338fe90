"""Hyperparameters of GLCIC inpainting (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017).

Two complete recipes:

- ``tadax``: the tutorial's code (github.com/tadax/glcic @824989e): 128x128 faces, 3-channel input with
  the hole zeroed, tanh output, Adam 1e-3, batch 16, no discriminator-only phase.
- ``paper``: the paper and the official inference code (satoshiiizuka/siggraph2017_inpainting):
  256x256 crops, mean-filled input plus the mask channel, sigmoid output, Adadelta, batch 96,
  phases 90k / 10k / 500k iterations.

Sources are cited next to every constant; "notes" means /work/shared/reference/glcic_dgf.md part A.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from common.errors import UserError

_WHERE = "glcic_inpaint/config.py"


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of one GLCIC run. Build with :func:`get_config`, never mutate."""

    preset: str = "paper"

    # ---------------------------------------------------------------- data and masks
    image_size: int = 256  # training crop side (square); divisible by 4 (two stride-2 convs)
    # Training images: short side resized to a random size in [lo, hi] (inclusive), then a random
    # image_size crop. (lo, hi) == (image_size, image_size) is "resize, then crop".
    resize_short_side: tuple[int, int] = (256, 384)
    flip: bool = False  # horizontal flips; neither the paper nor tadax mentions any
    local_size: int = 128  # side of the local discriminator's patch
    hole_min: int = 96  # hole sides are drawn uniformly from [hole_min, hole_max], both inclusive
    hole_max: int = 128
    holes: tuple[int, int] = (1, 1)  # number of holes per image, uniform in [lo, hi] inclusive
    # "centred": the local patch is centred on the (first) hole, clamped to the image (paper);
    # "random": the local patch is placed first and the holes inside it (tadax get_points()).
    local_placement: str = "centred"

    # ---------------------------------------------------------------- network input / output
    value_range: str = "unit"  # "unit": images in [0, 1], sigmoid output; "signed": [-1, 1], tanh
    hole_fill: str = "mean"  # "mean": the training-set mean colour; "zero": 0 in value_range units
    mean_color: tuple[float, float, float] | None = None  # in value_range units; None: computed
    subtract_mean: bool = True  # feed image - mean (official inpaint.lua: I - datamean, hole = 0)
    mask_channel: bool = True  # append the mask (1 = hole) as a 4th input channel

    # ---------------------------------------------------------------- architecture
    filters: int = 64  # width of paper Table 1 (64/128/256 channels); smaller: tests, sample demo
    conv_bias: bool = True  # biases before BN (Torch / otenim have them; tadax's convs do not)
    # "symmetric": stride-2 convs pad (k-1)//2 on every side as Torch does (official weights);
    # "same": TensorFlow SAME padding (asymmetric for stride 2), as tadax.
    padding: str = "symmetric"
    bn_momentum: float = 0.9  # Torch BatchNorm momentum 0.1 -> Keras 0.9
    bn_epsilon: float = 1e-5  # Torch default
    bn_gamma_stddev: float | None = None  # None: gamma = 1; tadax layer.py: truncated_normal(0.1)
    fc_stddev: float | None = None  # None: glorot; tadax layer.py FC: truncated_normal(stddev=0.1)
    global_d_filters: tuple[int, ...] = (64, 128, 256, 512, 512, 512)  # paper: 6 convs on 256
    local_d_filters: tuple[int, ...] = (64, 128, 256, 512, 512)  # paper: 5 convs on 128
    d_kernel: int = 5  # paper: all discriminator convs are 5x5, stride 2
    d_fc_units: int = 1024  # paper: each branch ends in FC-1024, concatenated to 2048 -> FC-1

    # ---------------------------------------------------------------- losses
    alpha: float = 4e-4  # paper's joint objective: weight of the adversarial terms
    mse_weight: float = 1.0  # masked MSE weight (paper's joint objective: 1); 0: adversarial only
    # masked MSE reduction: "mean" over every element of the batch (Torch MSECriterion default,
    # otenim), or "sum" over each image, averaged over the batch (the paper's ||M (C - x)||^2).
    mse_reduction: str = "mean"

    # ---------------------------------------------------------------- optimiser and schedule
    optimizer: str = "adadelta"  # paper, training details: ADADELTA
    lr: float = 1.0  # Adadelta has no learning rate in the paper (Torch optim.adadelta: 1.0)
    rho: float = 0.9  # Torch optim.adadelta / PyTorch default (Keras' default is 0.95)
    beta_1: float = 0.9  # Adam only
    beta_2: float = 0.999  # Adam only
    epsilon: float = 1e-6  # Torch optim.adadelta eps (Keras' default is 1e-7); Adam: 1e-8
    # (Tc, Td, Ttotal): completion network alone until step Tc, discriminator alone until Tc + Td,
    # then both until Ttotal. Paper, training details: Tc = 90,000, Td = 10,000, Ttrain = 500,000.
    phase_steps: tuple[int, int, int] = (90_000, 10_000, 500_000)
    batch_size: int = 96  # paper, training details
    steps_per_epoch: int = 1000  # bookkeeping only (checkpoints, logs); the paper counts iterations
    epochs: int = 500  # = Ttotal / steps_per_epoch (get_config keeps them consistent)
    seed: int = 0
    save_every: int = 10_000  # steps between checkpoints: otenim's snaperiod_1 / snaperiod_3

    def __post_init__(self):
        _validate(self)

    @property
    def output_activation(self) -> str:
        return "sigmoid" if self.value_range == "unit" else "tanh"

    @property
    def input_channels(self) -> int:
        return 4 if self.mask_channel else 3

    @property
    def total_steps(self) -> int:
        return self.phase_steps[2]

    def phase(self, step: int) -> int:
        """Training phase (1, 2 or 3) of the 0-based global ``step``."""
        tc, td, _ = self.phase_steps
        if step < tc:
            return 1
        if step < tc + td:
            return 2
        return 3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(message: str):
    raise UserError(f"{_WHERE}: {message}")


def _validate(c: Config) -> None:
    choices = {
        "value_range": ("unit", "signed"),
        "hole_fill": ("mean", "zero"),
        "local_placement": ("centred", "random"),
        "padding": ("symmetric", "same"),
        "mse_reduction": ("mean", "sum"),
        "optimizer": ("adadelta", "adam"),
    }
    for field, allowed in choices.items():
        if getattr(c, field) not in allowed:
            _fail(f"{field}={getattr(c, field)!r} is not valid; use one of {', '.join(allowed)}")
    if c.image_size <= 0 or c.image_size % 4:
        _fail(f"image_size={c.image_size} must be a positive multiple of 4 (two stride-2 convs)")
    if not 0 < c.local_size <= c.image_size:
        _fail(f"local_size={c.local_size} must lie in [1, image_size={c.image_size}]")
    if not 1 <= c.hole_min <= c.hole_max <= c.local_size:
        _fail(
            f"hole sizes [{c.hole_min}, {c.hole_max}] must satisfy "
            f"1 <= hole_min <= hole_max <= local_size={c.local_size}"
        )
    if not 1 <= c.holes[0] <= c.holes[1]:
        _fail(f"holes={c.holes} must be (lo, hi) with 1 <= lo <= hi")
    lo, hi = c.resize_short_side
    if not c.image_size <= lo <= hi:
        _fail(f"resize_short_side={c.resize_short_side} must satisfy image_size <= lo <= hi")
    for name, size, filters in (
        ("global_d_filters", c.image_size, c.global_d_filters),
        ("local_d_filters", c.local_size, c.local_d_filters),
    ):
        if not filters or size % (2 ** len(filters)):
            _fail(
                f"{name} has {len(filters)} stride-2 convs, so its input side ({size}) must be a "
                f"multiple of {2 ** len(filters)}; change the size or the number of convs"
            )
    if c.hole_fill == "mean" and c.mean_color is not None and len(c.mean_color) != 3:
        _fail(f"mean_color={c.mean_color} must have 3 values (R, G, B)")
    if c.subtract_mean and c.hole_fill != "mean":
        _fail("subtract_mean=True needs hole_fill='mean'")
    tc, td, total = c.phase_steps
    if min(tc, td, total) < 0 or tc + td > total:
        _fail(f"phase_steps={c.phase_steps} must be Tc,Td,Ttotal with 0 <= Tc + Td <= Ttotal")
    if c.steps_per_epoch <= 0 or c.batch_size <= 0 or c.save_every <= 0:
        _fail("steps_per_epoch, batch_size and save_every must be positive")
    if total % c.steps_per_epoch:
        _fail(
            f"phase_steps Ttotal={total} is not a multiple of steps_per_epoch={c.steps_per_epoch}; "
            f"pass a steps per epoch that divides {total}"
        )
    if c.epochs * c.steps_per_epoch != total:
        _fail(
            f"epochs={c.epochs} x steps_per_epoch={c.steps_per_epoch} is not phase_steps "
            f"Ttotal={total}; set only one of epochs and phase_steps"
        )


# The paper and the official code. Only the values that differ from the dataclass defaults would
# be needed; every field is written out so that a preset reads as a complete recipe.
PAPER = Config(
    preset="paper",
    image_size=256,  # paper, training details: random 256x256 crops
    resize_short_side=(256, 384),  # paper, training details: smallest edge random in [256, 384]
    flip=False,
    local_size=128,  # paper, context discriminators: 128x128 patch centred on the hole
    hole_min=96,  # paper, training details: holes with sides in [96, 128]
    hole_max=128,
    holes=(1, 1),
    local_placement="centred",
    value_range="unit",  # official inpaint.lua: output in [0, 1]
    hole_fill="mean",  # paper, training details: holes filled with the training-set mean pixel
    mean_color=None,  # computed from the training set (official .t7 files store their datamean)
    subtract_mean=True,  # official inpaint.lua: input = I - datamean, hole zeroed, plus M
    mask_channel=True,  # official inpaint.lua: cat(I, M)
    filters=64,  # paper Table 1
    conv_bias=True,  # Torch SpatialConvolution has a bias
    padding="symmetric",  # Torch pad = (k - 1) // 2
    bn_momentum=0.9,  # Torch default momentum 0.1
    bn_epsilon=1e-5,  # Torch default
    bn_gamma_stddev=None,
    fc_stddev=None,
    global_d_filters=(64, 128, 256, 512, 512, 512),  # paper, context discriminators: 6 convs
    local_d_filters=(64, 128, 256, 512, 512),  # paper, context discriminators: 5 convs
    d_kernel=5,  # paper, context discriminators
    d_fc_units=1024,  # paper, context discriminators
    alpha=4e-4,  # paper, training details: alpha = 0.0004
    mse_weight=1.0,  # paper's joint objective
    mse_reduction="mean",  # see README: alpha only balances against a per-element mean
    optimizer="adadelta",  # paper, training details
    lr=1.0,  # Torch optim.adadelta has no learning rate (= 1)
    rho=0.9,  # Torch optim.adadelta default
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,  # Torch optim.adadelta default
    phase_steps=(90_000, 10_000, 500_000),  # paper, training details: Tc, Td, Ttrain
    batch_size=96,  # paper, training details
    steps_per_epoch=1000,
    epochs=500,
    seed=0,
    save_every=10_000,  # steps: otenim snaperiod_1 / snaperiod_3
)

# tadax/glcic @824989e (the tutorial): src/train.py, src/network.py, src/layer.py, data/to_npy.py.
# tadax trains on 5,434 faces, 95 % of which (5,162) are training images: 322 steps per epoch.
TADAX_STEPS_PER_EPOCH = 322  # src/train.py: step_num = int(len(x_train) / BATCH_SIZE)
TADAX = Config(
    preset="tadax",
    image_size=128,  # src/train.py IMAGE_SIZE
    resize_short_side=(128, 128),  # data/to_npy.py: cv2.resize to 128x128 (see README)
    flip=False,
    local_size=64,  # src/train.py LOCAL_SIZE
    hole_min=24,  # src/train.py HOLE_MIN
    hole_max=48,  # src/train.py HOLE_MAX (upstream draws 25..49 by an off-by-one; fixed)
    holes=(1, 1),
    local_placement="random",  # src/train.py get_points(): local patch first, hole inside it
    value_range="signed",  # src/train.py: x / 127.5 - 1; network.py: tanh output
    hole_fill="zero",  # network.py: generator(x * (1 - mask))
    mean_color=None,
    subtract_mean=False,
    mask_channel=False,  # network.py: 3-channel input, no mask channel
    filters=64,  # network.py: Table 1 widths
    conv_bias=False,  # layer.py conv_layer / deconv_layer: weights only
    padding="same",  # layer.py: tf.nn.conv2d(..., padding='SAME')
    bn_momentum=0.99,  # layer.py batch_normalize: decay=0.99
    bn_epsilon=1e-3,  # layer.py batch_normalize: epsilon=0.001
    bn_gamma_stddev=0.1,  # layer.py: scale ~ truncated_normal(stddev=0.1)
    fc_stddev=0.1,  # layer.py full_connection_layer: truncated_normal(stddev=0.1), bias 0
    global_d_filters=(64, 128, 256, 512, 512),  # network.py: 5 convs on 128 px
    local_d_filters=(64, 128, 256, 512),  # network.py: 4 convs on 64 px
    d_kernel=5,  # network.py: [5, 5, ...] stride 2
    d_fc_units=1024,  # network.py: full_connection_layer(x, 1024)
    alpha=4e-4,  # network.py calc_d_loss: alpha = 4e-4
    mse_weight=1.0,  # network.py calc_g_loss
    mse_reduction="mean",  # upstream 0.5 * batch sum; see README (the adversarial fix needs a mean)
    optimizer="adam",  # src/train.py: tf.train.AdamOptimizer
    lr=1e-3,  # src/train.py LEARNING_RATE
    rho=0.9,
    beta_1=0.9,  # TF1 AdamOptimizer defaults
    beta_2=0.999,
    epsilon=1e-8,
    # src/train.py: PRETRAIN_EPOCH = 100 epochs of MSE, no discriminator-only phase, then joint
    # training with no stop; README: about 400 epochs in all.
    phase_steps=(100 * TADAX_STEPS_PER_EPOCH, 0, 400 * TADAX_STEPS_PER_EPOCH),
    batch_size=16,  # src/train.py BATCH_SIZE
    steps_per_epoch=TADAX_STEPS_PER_EPOCH,
    epochs=400,
    seed=0,
    save_every=TADAX_STEPS_PER_EPOCH,  # src/train.py saves ./backup/latest every epoch
)

PRESETS: dict[str, Config] = {"paper": PAPER, "tadax": TADAX}
DEFAULT_PRESET = "paper"

# The bundled sample photos (common.sample_data "inpaint", 14 training photos): 64 px crops, a
# quarter of the paper's widths, a short three-phase schedule, a small batch. About 0.15 s per
# step on a 2-core CPU, so `python glcic_inpaint/train.py` finishes in a few minutes. A smoke
# demo: expect blurry, roughly colour-matched fills.
SAMPLE_OVERRIDES: dict = {
    "image_size": 64,
    "resize_short_side": (64, 96),
    "local_size": 32,
    "hole_min": 12,
    "hole_max": 24,
    "filters": 16,
    # a quarter of the widths, and one conv fewer per halving of the input, so that both
    # branches still end on 4x4 maps
    "global_d_filters": (16, 32, 64, 128),
    "local_d_filters": (16, 32, 64),
    "batch_size": 4,
    "phase_steps": (600, 100, 1000),
    "steps_per_epoch": 100,
    "epochs": 10,
    "save_every": 200,
}

_TUPLE_FIELDS = ("resize_short_side", "holes", "mean_color", "global_d_filters",
                 "local_d_filters", "phase_steps")


def get_config(preset_or_config: str | Config | None = None, **overrides) -> Config:
    """A preset (name or Config) with ``overrides`` applied (field name -> value).

    ``epochs`` and ``phase_steps`` describe the same length (Ttotal = epochs x steps_per_epoch):
    overriding ``phase_steps`` or ``steps_per_epoch`` recomputes ``epochs`` (and a Ttotal shorter
    than the preset's epoch becomes one epoch); overriding only ``epochs`` sets Ttotal and keeps
    Tc and Td, or scales them with Ttotal when they do not fit in it.
    """
    if preset_or_config is None:
        preset_or_config = DEFAULT_PRESET
    if isinstance(preset_or_config, Config):
        base = preset_or_config
    elif preset_or_config in PRESETS:
        base = PRESETS[preset_or_config]
    else:
        _fail(f"unknown preset {preset_or_config!r}; choose one of {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        _fail(f"unknown setting(s) {', '.join(unknown)}; valid ones: {', '.join(sorted(fields))}")
    values = dict(overrides)
    for name in _TUPLE_FIELDS:
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    if "phase_steps" in values and "steps_per_epoch" not in values:
        # a schedule shorter than one epoch of the preset is one epoch
        values["steps_per_epoch"] = min(base.steps_per_epoch, max(1, values["phase_steps"][2]))
    steps = values.get("steps_per_epoch", base.steps_per_epoch)
    if "epochs" in values and "phase_steps" not in values:
        tc, td, old_total = base.phase_steps
        total = values["epochs"] * steps
        if tc + td > total:  # too short for the preset's Tc and Td: keep their proportions
            tc = tc * total // old_total
            td = td * total // old_total
        values["phase_steps"] = (tc, td, total)
    elif "epochs" not in values:
        total = values.get("phase_steps", base.phase_steps)[2]
        values["epochs"] = math.ceil(total / steps)
    return dataclasses.replace(base, **values)
