"""DeblurGAN hyperparameters: one frozen dataclass and the two named recipes.

Sources (see ``deblur_gan/README.md`` and ``shared/reference/deblurgan.md``):

* ``paper``: Kupyn et al., "DeblurGAN: Blind Motion Deblurring Using Conditional Adversarial
  Networks", CVPR 2018 (arXiv 1711.07064), and the official code KupynOrest/DeblurGAN as it was
  before PR #134 (March 2019): ``models/networks.py``, ``models/losses.py``, ``options/*.py``,
  ``data/aligned_dataset.py``.
* ``paper-corrected``: the paper recipe with the textbook WGAN-GP penalty (Gulrajani et al.) and
  the VGG input the ImageNet weights expect, its content weight recalibrated so that the
  content / adversarial balance at the start of training is the official one (README, "Presets").
* ``keras-port``: RaphaelMeudec/deblur-gan (the Keras tutorial): ``deblurgan/model.py``,
  ``deblurgan/layer_utils.py``, ``deblurgan/losses.py``, ``scripts/train.py``.

Every field can be overridden (``get_config("paper", lr=2e-4)``); every CLI flag maps to one field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common.errors import UserError

_CHOICES = {
    "norm": ("instance", "batch"),
    "upsampling": ("transpose", "nearest"),
    "conv_padding": ("pytorch", "same"),
    "global_residual": ("clamp", "average", "none"),
    "d_head": ("patch", "dense"),
    "gp_variant": ("standard", "official"),
    "content_loss": ("perceptual", "l1", "l2"),
    "vgg_network": ("vgg19", "vgg16"),
    "vgg_preprocess": ("caffe", "none"),
    "update_style": ("official", "keras-port"),
    "adam_epsilon_placement": ("pytorch", "keras"),
}


@dataclass(frozen=True)
class Config:
    """Every DeblurGAN hyperparameter. Defaults are the ``paper`` recipe.

    Images are float RGB in [-1, 1] everywhere (official ``get_transform``: Normalize(0.5, 0.5)).
    Sizes are ``(height, width)``.
    """

    preset: str = "paper"  # name of the recipe this config started from (recorded in config.json)

    # --- generator (official ResnetGenerator, resnet_9blocks) ---
    ngf: int = 64  # official options: --ngf 64
    n_blocks: int = 9  # resnet_9blocks
    n_downsampling: int = 2  # ResnetGenerator: n_downsampling = 2 (so sides must be multiples of 4)
    norm: str = "instance"  # --norm instance: InstanceNorm2d(affine=False, eps 1e-5), for G and D
    conv_bias: bool = True  # use_bias = (norm is InstanceNorm); the Keras port keeps Keras' default
    dropout: float = 0.5  # ResnetBlock Dropout(0.5), on unless --no_dropout; 0 removes it
    # "transpose": ConvTranspose2d(k3, s2) (official; the tutorial's Conv2DTranspose);
    # "nearest": UpSampling2D + Conv2D(k3) (Keras port after cccba77, the released generator.h5)
    upsampling: str = "transpose"
    # "pytorch": padding placed exactly as PyTorch does (Conv2d p1, ConvTranspose2d p1 + output_padding
    # 1, D convs p2); "same": Keras/TF 'same' padding, as the Keras port (pads (0, 1) on even sizes)
    conv_padding: str = "pytorch"
    # "clamp": clamp(x + tanh, -1, 1) (official --learn_residual, needed by the released weights);
    # "average": (x + tanh) / 2 (Keras port); "none": tanh output only (official default w/o the flag)
    global_residual: str = "clamp"
    init_std: float | None = 0.02  # weights_init: conv weights N(0, 0.02), bias 0; None = Glorot

    # --- discriminator (official NLayerDiscriminator, which_model_netD basic) ---
    ndf: int = 64  # --ndf 64
    d_layers: int = 3  # basic = n_layers 3 (kernel 4; padding 2 = ceil(3 / 2) under "pytorch")
    # Keras port loops range(n_layers) instead of range(1, n_layers): one more stride-2 conv (64 filters)
    d_extra_layer: bool = False
    d_head: str = "patch"  # "patch": 1-channel score map; "dense": Keras port Flatten->Dense(1024, tanh)->Dense(1)
    d_dense_units: int = 1024  # Keras port deblurgan/model.py: Dense(1024, activation='tanh')
    d_sigmoid: bool = False  # official: sigmoid only for gan_type 'gan' (none under WGAN-GP); Keras port: sigmoid

    # --- losses ---
    critic_updates: int = 5  # official criticUpdates = 5 for wgan-gp; Keras port --critic_updates 5
    gp_weight: float = 10.0  # official DiscLossWGANGP LAMBDA = 10; 0 disables the penalty (Keras port)
    # "official": models/losses.py DiscLossWGANGP.calc_gradient_penalty (alpha = rand(1, 1): one
    # factor per batch; gradients.norm(2, dim=1): the norm over channels at each pixel, then mean);
    # "standard": Gulrajani et al. (one factor per sample, norm over all of C, H, W)
    gp_variant: str = "official"
    # "official" (models/conditional_gan_model.py optimize_parameters): one G forward (dropout on)
    # feeds all critic updates, each on E[D(fake)] - E[D(real)] (+ GP), then the G step on that same
    # output through the updated critic.
    # "keras-port" (scripts/train.py): fakes from g.predict (inference mode); each critic update is
    # two Adam steps, train_on_batch(sharp, +1) then train_on_batch(fake, -1), on mean(label * D(x));
    # the G step recomputes G(blurred) in training mode and minimises mean(+1 * D(G(x))).
    update_style: str = "official"
    adv_weight: float = 1.0  # G loss = adv_weight * adversarial + content_weight * content
    content_loss: str = "perceptual"  # perceptual (paper Sec. 3.1) | l1 | l2 (no ImageNet weights needed)
    content_weight: float = 100.0  # official lambda_A 100 (paper Eq. 1: lambda = 100); Keras port [100, 1]
    vgg_network: str = "vgg19"  # official models/losses.py: vgg19(pretrained=True).features
    vgg_layer: str = "block3_conv3"  # official features[:15] = conv3_3
    vgg_pre_activation: bool = True  # official: index 14 is conv3_3 before its ReLU; Keras: after ReLU
    # "none": both upstreams (official PerceptualLoss.get_loss, the Keras port's perceptual_loss)
    # feed the [-1, 1] images straight into VGG; "caffe": Keras' VGG preprocessing (RGB->BGR, 0..255
    # minus the ImageNet mean), what Keras' ImageNet weights expect
    vgg_preprocess: str = "none"

    # --- optimiser (Adam for G and D) ---
    lr: float = 1e-4  # official --lr 0.0001 (paper Sec. 4); Keras port Adam(lr=1e-4)
    beta_1: float = 0.5  # official --beta1 0.5; Keras port 0.9
    beta_2: float = 0.999  # both
    adam_epsilon: float = 1e-8  # PyTorch default; Keras port epsilon=1e-08 (Keras 3 default is 1e-7)
    # where epsilon enters (common/optimizers.py): "pytorch" after the bias correction (torch.optim.Adam,
    # the official code), "keras" before it (Keras 2's Adam, the port)
    adam_epsilon_placement: str = "pytorch"

    # --- schedule ---
    batch_size: int = 1  # official --batchSize 1 (paper Sec. 4)
    epochs: int = 300  # official niter 150 + niter_decay 150 (paper: 300 epochs)
    decay_epochs: int = 150  # last epochs with the lr decayed linearly to 0 (official niter_decay 150)
    steps_per_epoch: int | None = None  # None: one pass over the training pairs (official epoch)
    save_every: int | None = 5000  # steps between checkpoints (official save_latest_freq 5000); None: every epoch
    seed: int = 0

    # --- data ---
    # official AlignedDataset: each GoPro half resized (bicubic) to 640x360 (loadSizeX/Y), then a
    # 256 crop (fineSize) at the same place in A and B, horizontal flip p=0.5 (unless --no_flip)
    resize: tuple[int, int] | None = (360, 640)
    crop: tuple[int, int] | None = (256, 256)
    flip: bool = True

    def __post_init__(self):
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise UserError(
                    f"deblur_gan/config.py: {name}={value!r} is not valid; use one of {', '.join(allowed)}"
                )
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if value is not None:
                try:
                    value = tuple(int(v) for v in value)
                except (TypeError, ValueError):
                    value = ()
                if len(value) != 2 or min(value) <= 0:
                    raise UserError(
                        f"deblur_gan/config.py: {name}={getattr(self, name)!r} is not a size; "
                        "give (height, width) with positive integers, or None"
                    )
                object.__setattr__(self, name, value)
        positive = ("ngf", "n_blocks", "ndf", "d_layers", "d_dense_units", "critic_updates",
                    "batch_size", "epochs")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise UserError(f"deblur_gan/config.py: {name} must be at least 1 (got {getattr(self, name)})")
        if self.n_downsampling < 0:
            raise UserError("deblur_gan/config.py: n_downsampling must be >= 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise UserError("deblur_gan/config.py: steps_per_epoch must be at least 1, or None for one pass")
        if self.save_every is not None and self.save_every < 1:
            raise UserError("deblur_gan/config.py: save_every must be at least 1 step, or None for every epoch")
        if not 0 <= self.decay_epochs <= self.epochs:
            raise UserError(
                f"deblur_gan/config.py: decay_epochs={self.decay_epochs} must be between 0 and epochs={self.epochs}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"deblur_gan/config.py: dropout={self.dropout} must be in [0, 1)")
        if self.lr <= 0 or self.gp_weight < 0 or self.content_weight < 0 or self.adv_weight < 0:
            raise UserError("deblur_gan/config.py: lr must be > 0 and the loss weights >= 0")
        if self.crop is not None and any(side % self.multiple for side in self.crop):
            raise UserError(
                f"deblur_gan/config.py: crop={self.crop} must have sides divisible by {self.multiple} "
                f"(the generator downsamples {self.n_downsampling} times)"
            )

    @property
    def multiple(self) -> int:
        """Image sides must be divisible by this (2 ** n_downsampling), or the global skip fails."""
        return 2 ** self.n_downsampling

    @property
    def train_size(self) -> tuple[int, int] | None:
        """(height, width) of the training images: the crop, else the resize, else None (any)."""
        return self.crop if self.crop is not None else self.resize

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, Config] = {
    # Kupyn et al. 2018 + official code before PR #134 (all defaults above).
    "paper": Config(preset="paper"),
    # RaphaelMeudec/deblur-gan, the Keras tutorial (seed 002), with its original Conv2DTranspose
    # upsampling; upsampling="nearest" gives the repository's later UpSampling2D + conv (cccba77),
    # the architecture of its released generator.h5.
    # The paper recipe with two corrections: the Gulrajani et al. penalty and the VGG input Keras'
    # ImageNet weights were trained on. Caffe preprocessing scales the conv3_3 features up, so the
    # content weight is scaled down to keep the official start-of-training balance of the two terms
    # (issue 14's step-1 content values on one 64x64 GoPro pair, same VGG19 weights: 0.0089 with
    # [-1, 1] input, 96.8 with caffe preprocessing; 100 * 0.0089 / 96.8 = 0.0092; README "Presets").
    "paper-corrected": Config(
        preset="paper-corrected",
        gp_variant="standard",
        vgg_preprocess="caffe",
        content_weight=100.0 * 0.0089 / 96.8,
    ),
    "keras-port": Config(
        preset="keras-port",
        norm="batch",  # deblurgan/model.py: BatchNormalization() after every conv (eps 1e-3, momentum 0.99)
        conv_bias=True,  # Conv2D keeps use_bias=True before BN
        dropout=0.5,  # res_block(..., use_dropout=True): Dropout(0.5)
        upsampling="transpose",  # tutorial: Conv2DTranspose(k3, strides 2, padding 'same')
        conv_padding="same",  # Conv2D(..., strides=2, padding='same'), D convs padding='same'
        global_residual="average",  # Add([x, inputs]) then Lambda(z / 2)
        init_std=None,  # Keras defaults: Glorot uniform kernels, zero biases
        d_layers=3,  # discriminator_model: n_layers = 3
        d_extra_layer=True,  # for n in range(n_layers): one more stride-2 conv than the official D
        d_head="dense",  # Flatten -> Dense(1024, tanh) -> Dense(1, sigmoid)
        d_sigmoid=True,
        critic_updates=5,  # scripts/train.py --critic_updates 5
        gp_weight=0.0,  # gradient_penalty_loss is defined but never used: no penalty, no clipping
        update_style="keras-port",  # g.predict, then d.train_on_batch(sharp, +1), (fake, -1); d_on_g
        content_weight=100.0,  # loss_weights=[100, 1]
        vgg_network="vgg16",  # deblurgan/losses.py: VGG16(include_top=False, weights='imagenet')
        vgg_layer="block3_conv3",
        vgg_pre_activation=False,  # Keras conv layers include the ReLU
        lr=1e-4,  # Adam(lr=1E-4, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
        beta_1=0.9,
        beta_2=0.999,
        adam_epsilon=1e-8,
        adam_epsilon_placement="keras",  # Keras 2.1 Adam: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), eps on sqrt(v)
        batch_size=16,  # scripts/train.py --batch_size 16
        epochs=4,  # --epoch_num 4
        decay_epochs=0,  # constant lr
        steps_per_epoch=None,  # n_images // batch_size (README: --n_images=512, i.e. 32 steps)
        save_every=None,  # saves generator_{epoch}_{loss}.h5 every epoch
        resize=(256, 256),  # utils.load_image: whole 1280x720 frame resized to 256x256
        crop=None,  # no crop
        flip=False,  # no augmentation
    ),
}

DEFAULT_PRESET = "paper"

# `python deblur_gan/train.py` with no --data: the bundled blurred sample pairs, small crops and a
# schedule short enough for a 2-core CPU (a few minutes) that still writes a checkpoint and a grid.
SAMPLE_OVERRIDES: dict = {
    "batch_size": 2,
    "epochs": 3,
    "decay_epochs": 1,
    "steps_per_epoch": 10,
    "save_every": None,  # every epoch
    "resize": None,
    "crop": (64, 64),
}


def get_config(preset_or_config: str | Config | None = None, **overrides) -> Config:
    """A Config from a preset name (or a Config), with fields replaced by ``overrides``.

    Every override replaces its field, None included (``get_config("paper", crop=None)`` trains on
    the resized frames without cropping). Lists become tuples. Unknown names raise UserError.
    """
    if preset_or_config is None:
        preset_or_config = DEFAULT_PRESET
    if isinstance(preset_or_config, Config):
        base = preset_or_config
    elif isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise UserError(
                f"deblur_gan/config.py: unknown preset {preset_or_config!r}; use one of {', '.join(PRESETS)}"
            )
        base = PRESETS[preset_or_config]
    else:
        raise UserError(
            f"deblur_gan/config.py: expected a preset name or a Config, got {type(preset_or_config).__name__}"
        )
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(
            f"deblur_gan/config.py: unknown setting(s) {', '.join(unknown)}; valid names are the fields of "
            "deblur_gan.config.Config"
        )
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(base, **overrides)
