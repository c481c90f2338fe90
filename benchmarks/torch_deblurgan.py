"""PyTorch CPU baseline: the DeblurGAN ``paper`` generator, critic and training step.

Written for benchmarks/run.py from the official code's structure (KupynOrest/DeblurGAN before PR
#134: models/networks.py ResnetGenerator(ngf 64, 9 blocks, InstanceNorm, dropout 0.5,
learn_residual), NLayerDiscriminator(ndf 64, n_layers 3, kernel 4, padding 2), models/losses.py
DiscLossWGANGP (lambda 10) and PerceptualLoss on VGG19 ``features[:15]`` (conv3_3 before its ReLU),
models/conditional_gan_model.py optimize_parameters: forward once, 5 critic updates, one generator
update with lambda_A = 100). VGG19 is randomly initialised (speed does not depend on its weights).

Only timing matters here; tests/test_deblurgan_parity.py checks our step's numbers against a
float64 statement of the same step.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, eps=1e-5)


class _Block(nn.Module):
    def __init__(self, dim: int, dropout: float):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class Generator(nn.Module):
    """ResnetGenerator(3, 3, ngf, InstanceNorm, use_dropout, n_blocks, learn_residual=True)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, dropout: float = 0.5):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [_Block(ngf * 4, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return torch.clamp(x + self.model(x), -1, 1)


class Critic(nn.Module):
    """NLayerDiscriminator(3, ndf, n_layers=3, InstanceNorm, use_sigmoid=False)."""

    def __init__(self, ndf: int = 64):
        super().__init__()
        layers = [nn.Conv2d(3, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
        for i, stride in ((1, 2), (2, 2), (3, 1)):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 2), _norm(widths[i]), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 2))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def vgg19_conv3_3() -> nn.Module:
    """torchvision vgg19().features[:15]: conv1_1 .. conv3_3 (no ReLU after the last)."""
    layers, channels = [], 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256):
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(True)]
            channels = item
    return nn.Sequential(*layers[:-1])


class PaperStep:
    """optimize_parameters() of the official conditional GAN model with WGAN-GP (batch of any size)."""

    def __init__(self, channels_last: bool = False, bf16: bool = False, critic_updates: int = 5):
        self.generator, self.critic, self.vgg = Generator(), Critic(), vgg19_conv3_3()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        for module in (self.generator, self.critic, self.vgg):
            module.to(memory_format=self.format)
        self.bf16 = bf16
        self.critic_updates = critic_updates
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(self.critic.parameters(), lr=1e-4, betas=(0.5, 0.999))

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def _penalty(self, real, fake):
        alpha = torch.rand(1, 1)  # calc_gradient_penalty: one factor per batch
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        with self._autocast():
            scores = self.critic(mixed)
        grads = torch.autograd.grad(scores, mixed, torch.ones_like(scores), create_graph=True)[0]
        return ((grads.norm(2, dim=1) - 1) ** 2).mean()

    def __call__(self, blurred, sharp):
        blurred = blurred.contiguous(memory_format=self.format)
        sharp = sharp.contiguous(memory_format=self.format)
        with self._autocast():
            fake = self.generator(blurred)
        for _ in range(self.critic_updates):
            self.d_opt.zero_grad()
            with self._autocast():
                loss_d = self.critic(fake.detach()).float().mean() - self.critic(sharp).float().mean()
            loss_d = loss_d + 10 * self._penalty(sharp, fake.detach())
            loss_d.backward()
            self.d_opt.step()
        self.g_opt.zero_grad()
        with self._autocast():
            g_adv = -self.critic(fake).float().mean()
            content = nn.functional.mse_loss(self.vgg(fake).float(), self.vgg(sharp).float().detach())
        loss_g = g_adv + 100 * content
        loss_g.backward()
        self.g_opt.step()
        return float(loss_g)


def inference(channels_last: bool = False, bf16: bool = False, generator: nn.Module | None = None):
    """A function ``(N, 3, H, W) float32 -> output`` running the generator (default: the paper
    generator; benchmarks/torch_generators.py passes the other families') in eval mode, no grad."""
    generator = (Generator() if generator is None else generator).eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(memory_format=memory_format)

    def run(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return generator(x.contiguous(memory_format=memory_format)).float()

    return run
