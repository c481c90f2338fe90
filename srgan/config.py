"""SRGAN hyperparameters: one frozen dataclass, one named preset per recipe.

Presets
-------
``bubbliiiing``
    The tutorial repository (bubbliiiing/srgan-keras, train.py / nets/srgan.py / utils/): a single
    adversarial stage trained from scratch, ``MSE + 1e-3 BCE + 2e-6 VGG54-MSE`` on [-1, 1] images,
    96 -> 384 crops, batch 4, Adam 2e-4 with the warm-up cosine schedule, global-average-pooling
    discriminator.
``paper``
    Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a GAN" (arXiv 1609.04802v5,
    §2, §3.2). Two stages chosen with the ``stage`` field: ``srresnet`` (pixel MSE, Adam 1e-4,
    10^6 steps; the preset's default) and ``srgan`` (VGG54 / 12.75 + 1e-3 -log D, initialised from
    the SRResNet, 10^5 steps at 1e-4 then 10^5 at 1e-5), 24 -> 96 crops, batch 16.

``get_config("paper", stage="srgan")`` first applies the paper's ``srgan`` stage (its losses, step
counts and schedule, :data:`STAGES`), then the other overrides, so the command line
``--preset paper --stage srgan`` needs nothing else. The architecture fields mentioned as
"Lasagne default" are not in the paper; they are the defaults of the framework the authors used
(§3.2: Theano / Lasagne), the closest thing to their code, which was never released.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from common.errors import UserError

STAGE_CHOICES = ("srresnet", "srgan")
SCALE_CHOICES = (2, 4, 8)
LR_RANGE_CHOICES = ("signed", "unit")  # generator input: [-1, 1] or [0, 1]
VGG_PREPROCESS_CHOICES = ("caffe", "none")
D_HEAD_CHOICES = ("gap", "flatten")
SCHEDULE_CHOICES = ("constant", "piecewise", "warmup_cosine")

# Discriminator conv-BN-LeakyReLU blocks after the first conv, as (filters, stride): nets/srgan.py
# build_discriminator; paper Fig. 4 (k3n64s2, k3n128s1, k3n128s2, ..., k3n512s2).
DISCRIMINATOR_BLOCKS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))


@dataclass(frozen=True)
class Config:
    """Every SRGAN hyperparameter. Build with :func:`get_config`; it validates the values."""

    # ---- which recipe ------------------------------------------------------------------------
    preset: str = "bubbliiiing"  # the preset this config started from (recorded in config.json)
    stage: str = "srgan"  # "srresnet": G alone on pixel MSE; "srgan": G + D adversarial stage
    init_from: str | None = None  # run directory / weights whose generator initialises this run

    # ---- generator (nets/srgan.py: build_generator; paper Fig. 4) ----------------------------
    scale: int = 4  # train.py scale_factor = 4; paper r = 4
    filters: int = 64  # k9n64 / k3n64 convs
    num_res_blocks: int = 16  # num_residual=16; paper B = 16
    upsample_filters: int = 256  # k3n256 before each x2 pixel shuffle
    head_kernel: int = 9  # first conv k9
    tail_kernel: int = 9  # last conv k9n3 (+ tanh in every implementation; not in Fig. 4)
    bn_momentum: float = 0.99  # Keras BatchNormalization default, used at 201bfe3
    bn_epsilon: float = 1e-3  # Keras BatchNormalization default
    init_stddev: float | None = 0.02  # random_normal(stddev=0.02) on every conv but the last;
    #                                   None = Glorot uniform everywhere
    prelu_init: float = 0.0  # Keras PReLU alpha_initializer="zeros"

    # ---- discriminator (nets/srgan.py: build_discriminator; paper Fig. 4) --------------------
    d_blocks: tuple[tuple[int, int], ...] = DISCRIMINATOR_BLOCKS
    d_first_filters: int = 64  # conv k3n64s1 + LeakyReLU, no BN
    d_head: str = "gap"  # GlobalAveragePooling2D (any input size); "flatten" = paper, fixed size
    d_dense_units: int = 1024  # Dense(1024)
    leaky_slope: float = 0.2  # LeakyReLU(alpha=0.2); paper alpha = 0.2

    # ---- data --------------------------------------------------------------------------------
    hr_crop: int = 384  # train.py hr_shape = lr_shape * 4 = [384, 384]; LR crop = hr_crop / scale
    lr_range: str = "signed"  # utils.preprocess_input (x/255-0.5)/0.5 on LR too; paper: LR [0, 1]
    flip: bool = True  # horizontal flip (the flip of get_random_data; its padding/jitter dropped)

    # ---- losses ------------------------------------------------------------------------------
    pixel_weight: float = 1.0  # Combine_model loss_weights[0] on 'mse' (images in [-1, 1])
    content_weight: float = 2e-6  # loss_weights[2] on 'mse' of VGG features
    adv_weight: float = 1e-3  # loss_weights[1] on 'binary_crossentropy' (= -log D(G(x)))
    vgg_layer: str = "block5_conv4"  # build_vgg: vgg.layers[-2] = block5_conv4 (VGG54)
    vgg_preprocess: str = "none"  # build_vgg feeds [-1, 1] RGB straight into VGG19
    vgg_feature_scale: float = 1.0  # features used as they are
    d_split_update: bool = True  # fit_one_epoch: D.train_on_batch(real), then (fake): 2 updates
    d_fakes_inference_bn: bool = True  # fit_one_epoch makes D's fakes with G.predict: the
    #                                    generator's BatchNorm in inference mode

    # ---- optimiser (train.py) ----------------------------------------------------------------
    lr: float = 2e-4  # Init_lr = 2e-4 (G and D)
    beta_1: float = 0.9  # Adam(beta_1=momentum=0.9)
    beta_2: float = 0.999  # Keras Adam default
    adam_epsilon: float = 1e-7  # Keras Adam default (K.epsilon())
    shared_optimizer: bool = False  # True: ONE Adam for D and G, as train.py (D_model and
    #   Combine_model compile with the same `optimizer`): its step counter advances at every D and G
    #   update, so G's first update runs at t = 3. False: two Adams (documented in the README).

    # ---- schedule ----------------------------------------------------------------------------
    lr_schedule: str = "warmup_cosine"  # lr_decay_type = "cos" (utils.get_lr_scheduler)
    lr_boundaries: tuple[int, ...] = ()  # "piecewise": global steps where the factor changes
    lr_factors: tuple[float, ...] = ()  # "piecewise": lr multipliers, len(boundaries) + 1
    min_lr_ratio: float = 0.01  # Min_lr = Init_lr * 0.01
    warmup_ratio: float = 0.05  # get_lr_scheduler warmup_iters_ratio (of the epochs) ...
    warmup_max_epochs: int = 3  # ... capped: min(max(0.05 * Epoch, 1), 3)
    warmup_lr_ratio: float = 0.1  # warm-up starts at max(0.1 * Init_lr, 1e-6)
    final_ratio: float = 0.05  # no_aug_iter_ratio: the last min(max(0.05 * Epoch, 1), 15) ...
    final_max_epochs: int = 15  # ... epochs stay at Min_lr

    # ---- training length and bookkeeping -----------------------------------------------------
    batch_size: int = 4  # train.py batch_size = 4
    epochs: int = 200  # Epoch = 200
    steps_per_epoch: int | None = None  # None: min(images // batch_size, max_steps_per_epoch),
    #                                     train.py: epoch_step = min(num_train // batch_size, 2000)
    max_steps_per_epoch: int = 2000  # the cap of that rule
    seed: int = 10101  # train.py shuffles its file list with np.random.seed(10101)
    save_every: int | None = None  # steps between checkpoints; None: one epoch, as fit_one_epoch
    #                                saves G_model_last_epoch_weights.h5 every epoch
    #                                (save_period=10 is for the kept G_Epoch*.h5 copies)

    # ------------------------------------------------------------------------------------------
    def __post_init__(self):
        _validate(self)

    @property
    def lr_crop(self) -> int:
        """LR training crop size (``hr_crop // scale``)."""
        return self.hr_crop // self.scale

    @property
    def total_steps(self) -> int:
        """Training length; needs a resolved ``steps_per_epoch`` (see :meth:`resolved`)."""
        return self.epochs * self.steps_per_epoch

    def resolved(self, num_images: int) -> "Config":
        """Fill the data-dependent fields: ``steps_per_epoch`` and ``save_every`` when None."""
        steps = self.steps_per_epoch or max(
            1, min(num_images // self.batch_size, self.max_steps_per_epoch))
        return dataclasses.replace(self, steps_per_epoch=steps, save_every=self.save_every or steps)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict` (e.g. a run's ``config.json``); unknown keys are an error."""
        return get_config(cls(), **dict(values))


def _fail(message: str):
    raise UserError(f"srgan/config.py: {message}")


def _validate(c: Config) -> None:
    choices = {
        "stage": STAGE_CHOICES,
        "scale": SCALE_CHOICES,
        "lr_range": LR_RANGE_CHOICES,
        "vgg_preprocess": VGG_PREPROCESS_CHOICES,
        "d_head": D_HEAD_CHOICES,
        "lr_schedule": SCHEDULE_CHOICES,
    }
    for name, allowed in choices.items():
        value = getattr(c, name)
        if value not in allowed:
            _fail(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    for name in ("filters", "upsample_filters", "head_kernel", "tail_kernel", "d_first_filters",
                 "d_dense_units", "hr_crop", "batch_size", "epochs", "max_steps_per_epoch"):
        if int(getattr(c, name)) < 1:
            _fail(f"{name} must be a positive integer, got {getattr(c, name)!r}")
    for name in ("steps_per_epoch", "save_every"):  # None = resolved from the data size
        if getattr(c, name) is not None and int(getattr(c, name)) < 1:
            _fail(f"{name} must be a positive integer, got {getattr(c, name)!r}")
    if c.num_res_blocks < 0:
        _fail(f"num_res_blocks must be >= 0, got {c.num_res_blocks}")
    if c.upsample_filters % 4:
        _fail(f"upsample_filters must be a multiple of 4 (x2 pixel shuffle), got {c.upsample_filters}")
    if c.hr_crop % c.scale:
        _fail(f"hr_crop ({c.hr_crop}) must be a multiple of scale ({c.scale}); pick e.g. "
              f"{c.hr_crop - c.hr_crop % c.scale}")
    downsampling = 2 ** sum(1 for _, stride in c.d_blocks if stride == 2)
    if c.d_head == "flatten" and c.hr_crop % downsampling:
        _fail(f"the flatten discriminator needs hr_crop divisible by {downsampling}, got {c.hr_crop}")
    if c.lr <= 0:
        _fail(f"lr must be > 0, got {c.lr}")
    for name in ("pixel_weight", "content_weight", "adv_weight"):
        if getattr(c, name) < 0:
            _fail(f"{name} must be >= 0, got {getattr(c, name)}")
    if c.stage == "srresnet" and (c.adv_weight or c.content_weight):
        _fail("stage srresnet trains the generator alone on pixel MSE: adv_weight and "
              "content_weight must be 0 (use stage srgan for the adversarial stage)")
    if c.stage == "srresnet" and not c.pixel_weight:
        _fail("stage srresnet needs pixel_weight > 0")
    if c.lr_schedule == "piecewise":
        if len(c.lr_factors) != len(c.lr_boundaries) + 1:
            _fail(f"piecewise schedule needs len(lr_factors) == len(lr_boundaries) + 1, got "
                  f"{len(c.lr_factors)} factors for {len(c.lr_boundaries)} boundaries")
        if list(c.lr_boundaries) != sorted(c.lr_boundaries):
            _fail(f"lr_boundaries must be increasing, got {c.lr_boundaries}")


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------

BUBBLIIIING = Config()  # the field defaults above are the tutorial repository's recipe

# Paper stages (§3.2): "SRResNet ... learning rate of 10^-4 and 10^6 update iterations"; "SRGAN
# ... 10^5 update iterations at a learning rate of 10^-4 and another 10^5 iterations at 10^-5".
# An "epoch" here is just 10^4 steps (ImageNet 350k images, batch 16: no natural epoch).
STAGES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "srresnet": dict(
            stage="srresnet", pixel_weight=1.0, content_weight=0.0, adv_weight=0.0,
            lr=1e-4, lr_schedule="constant", lr_boundaries=(), lr_factors=(),
            epochs=100, steps_per_epoch=10_000,
        ),
        "srgan": dict(
            stage="srgan", pixel_weight=0.0, content_weight=1.0, adv_weight=1e-3,
            lr=1e-4, lr_schedule="piecewise", lr_boundaries=(100_000,), lr_factors=(1.0, 0.1),
            epochs=20, steps_per_epoch=10_000,
        ),
    },
    # The tutorial has no pretraining stage; "srresnet" is offered for symmetry: its optimiser and
    # data with the adversarial and VGG terms switched off.
    "bubbliiiing": {
        "srresnet": dict(stage="srresnet", pixel_weight=1.0, content_weight=0.0, adv_weight=0.0),
        "srgan": dict(stage="srgan", pixel_weight=1.0, content_weight=2e-6, adv_weight=1e-3),
    },
}

PAPER = dataclasses.replace(
    BUBBLIIIING,
    preset="paper",
    **STAGES["paper"]["srresnet"],
    bn_momentum=0.9,  # Lasagne BatchNormLayer alpha=0.1 (moving = 0.9 old + 0.1 new)
    bn_epsilon=1e-4,  # Lasagne BatchNormLayer epsilon=1e-4
    init_stddev=None,  # Lasagne Conv2DLayer / DenseLayer W=GlorotUniform()
    prelu_init=0.25,  # Lasagne ParametricRectifierLayer alpha=Constant(0.25)
    d_head="flatten",  # Fig. 4: dense layers on the flattened 6x6x512 map of a 96x96 input
    hr_crop=96,  # §3.2: "16 random 96 x 96 HR sub images"
    lr_range="unit",  # §3.2: LR input in [0, 1], HR (and G output) in [-1, 1]
    flip=False,  # §3.2 mentions random crops only
    vgg_preprocess="caffe",  # VGG19 as released: BGR, ImageNet mean subtracted, [0, 255]
    vgg_feature_scale=1 / 12.75,  # §3.2: "rescaled the VGG feature maps by a factor of 1/12.75"
    d_split_update=False,  # one discriminator update on real + fake per step (k = 1, §2)
    d_fakes_inference_bn=False,  # D sees the same training-mode G(x) that G is updated through
    beta_1=0.9,  # §3.2: Adam with beta_1 = 0.9
    beta_2=0.999,  # Lasagne adam default
    adam_epsilon=1e-8,  # Lasagne adam default
    batch_size=16,  # §3.2: mini-batch of 16
    seed=0,
    save_every=10_000,  # steps
)

PRESETS: dict[str, Config] = {"bubbliiiing": BUBBLIIIING, "paper": PAPER}
DEFAULT_PRESET = "bubbliiiing"

# `python srgan/train.py` with no --data: the bundled sample photos, small crops and a schedule
# that finishes in a few minutes on a 2-core CPU. The architecture stays full size so the weights
# load into the standard model.
SAMPLE_OVERRIDES: dict[str, Any] = dict(
    bn_momentum=0.9,  # the BN moving averages (used by the sample grids) must settle within the ~100 steps
    hr_crop=64,
    batch_size=4,
    epochs=4,
    steps_per_epoch=25,
    save_every=25,
)

_TUPLE_FIELDS = {"d_blocks", "lr_boundaries", "lr_factors"}
_FIELDS = {f.name for f in dataclasses.fields(Config)}


def _normalise(name: str, value: Any) -> Any:
    if name == "d_blocks":
        return tuple((int(f), int(s)) for f, s in value)
    if name in _TUPLE_FIELDS:
        return tuple(value)
    return value


def get_config(preset_or_config: str | Config = DEFAULT_PRESET, **overrides) -> Config:
    """Return a preset (by name) or a given :class:`Config` with ``overrides`` applied.

    A ``stage`` override first applies that stage's fields from :data:`STAGES` for the config's
    preset (losses, step counts, schedule), then the remaining overrides. Unknown names or invalid
    values raise :class:`common.errors.UserError`.
    """
    if isinstance(preset_or_config, Config):
        base = preset_or_config
    elif preset_or_config in PRESETS:
        base = PRESETS[preset_or_config]
    else:
        _fail(f"unknown preset {preset_or_config!r}; choose one of {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        _fail(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    overrides = {k: _normalise(k, v) for k, v in overrides.items()}
    stage = overrides.get("stage")
    if stage is not None and stage != base.stage:
        preset = overrides.get("preset", base.preset)
        stage_fields = STAGES.get(preset, {}).get(stage)
        if stage_fields is None and stage not in STAGE_CHOICES:
            _fail(f"stage must be one of {', '.join(STAGE_CHOICES)}, got {stage!r}")
        base = dataclasses.replace(base, **(stage_fields or {"stage": stage}))
    return dataclasses.replace(base, **overrides)


__all__ = [
    "Config", "PRESETS", "DEFAULT_PRESET", "SAMPLE_OVERRIDES", "STAGES", "get_config",
    "DISCRIMINATOR_BLOCKS",
]
