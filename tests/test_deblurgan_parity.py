"""The `paper` training step against the official DeblurGAN step, gradient for gradient.

Below is our own PyTorch statement of what the official code (KupynOrest/DeblurGAN before PR
#134: models/networks.py ResnetGenerator and NLayerDiscriminator, models/losses.py DiscLossWGANGP
and PerceptualLoss, models/conditional_gan_model.py optimize_parameters) computes, in float64, with
tiny widths, 32 x 32 images and, in place of torchvision's VGG19, a small random network with the
same layer pattern up to conv3_3 before its ReLU (no download). Both sides start from the same
weights (converted with deblur_gan.model.load_pytorch_weights), dropout off, and the same
gradient-penalty mixing factors.

Our step runs as written (DeblurGAN.train_step, eager, float32, TorchAdam). Adam's first steps
amplify float rounding (an update is about lr * sign(g), and the conv biases in front of an
InstanceNorm have zero true gradient), so what is compared is the gradient of every update at the
same state: before each of our critic updates and before the generator update, the PyTorch side is
given the weights our step holds at that moment and computes the official gradient there.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity test needs PyTorch (pip install -r requirements-dev.txt)")
nn = torch.nn

from common.losses import PerceptualLoss  # noqa: E402
from recording_gan import RecordingDeblurGAN  # noqa: E402
from deblur_gan.config import get_config  # noqa: E402
from deblur_gan.gan import make_optimizer  # noqa: E402
from deblur_gan.model import build_discriminator, build_generator, load_pytorch_weights, pytorch_weight_map  # noqa: E402

SIZE, BATCH, NGF, NDF, BLOCKS = 32, 2, 4, 4, 1
CFG = get_config("paper", ngf=NGF, ndf=NDF, n_blocks=BLOCKS, dropout=0.0, crop=(SIZE, SIZE), batch_size=BATCH)
LAMBDA_GP = 10  # DiscLossWGANGP.LAMBDA
LAMBDA_A = 100  # --lambda_A
VGG_GAIN = 0.7  # He-init gain of the feature net: 100 * content = 0.055 next to g_adv = -0.19


# ----------------------------------------------------------------------------- PyTorch statement
def _norm(channels):
    return nn.InstanceNorm2d(channels, affine=False, eps=1e-5)  # --norm instance


class ResnetGenerator(nn.Module):
    """ResnetGenerator(3, 3, ngf, InstanceNorm, use_dropout=False, n_blocks, learn_residual=True)."""

    def __init__(self, ngf=NGF, n_blocks=BLOCKS):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, padding=0, bias=True), _norm(ngf), nn.ReLU()]
        for i in range(2):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       _norm(ngf * mult * 2), nn.ReLU()]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=True),
                       _norm(ngf * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return torch.clamp(x + self.model(x), min=-1, max=1)  # learn_residual


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class NLayerDiscriminator(nn.Module):
    """NLayerDiscriminator(3, ndf, n_layers=3, InstanceNorm, use_sigmoid=False): kw 4, padw 2."""

    def __init__(self, ndf=NDF, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(3, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=2, bias=True),
                       _norm(ndf * mult), nn.LeakyReLU(0.2)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=2, bias=True),
                   _norm(ndf * mult), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=2)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def tiny_vgg():
    """VGG19 features[:15] with 4/8/8 channels: conv1_1 .. conv3_3, the last before its ReLU."""
    c = (4, 8, 8)
    return nn.Sequential(
        nn.Conv2d(3, c[0], 3, padding=1), nn.ReLU(), nn.Conv2d(c[0], c[0], 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(c[0], c[1], 3, padding=1), nn.ReLU(), nn.Conv2d(c[1], c[1], 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(), nn.Conv2d(c[2], c[2], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c[2], c[2], 3, padding=1))


def critic_loss(net_d, real_b, fake_b, alpha):
    """DiscLossWGANGP.get_loss with calc_gradient_penalty's alpha given: (loss_D, penalty / LAMBDA)."""
    d_fake = net_d(fake_b.detach()).mean()
    d_real = net_d(real_b).mean()
    interpolates = (alpha * real_b + (1 - alpha) * fake_b).detach().requires_grad_(True)
    scores = net_d(interpolates)
    gradients = torch.autograd.grad(scores, interpolates, grad_outputs=torch.ones_like(scores),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean()
    return d_fake - d_real + LAMBDA_GP * penalty, penalty


def generator_loss(net_d, vgg, fake_b, real_b):
    """backward_G: -mean(D(fake_B)) + lambda_A * MSE(vgg(fake_B), vgg(real_B).detach())."""
    g_gan = -net_d(fake_b).mean()
    content = nn.functional.mse_loss(vgg(fake_b), vgg(real_b).detach())
    return g_gan + LAMBDA_A * content, g_gan, content


# ----------------------------------------------------------------------------- conversions
def _to_nchw(x):
    return torch.tensor(np.asarray(x, np.float64).transpose(0, 3, 1, 2))


def _state(module):
    return {k: v.detach().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def _keras_to_torch(model, module, which, arrays=None):
    """Copy our kernels / biases (or ``arrays``: variable path -> value) into the PyTorch module."""
    params = dict(module.named_parameters())
    arrays = arrays or {v.path: np.array(v) for v in model.weights}
    with torch.no_grad():
        for layer_name, prefix in pytorch_weight_map(CFG, which).items():
            layer = model.get_layer(layer_name)
            kernel = np.asarray(arrays[layer.kernel.path], np.float64)
            params[f"{prefix}.weight"].copy_(torch.tensor(kernel.transpose(3, 2, 0, 1)))
            params[f"{prefix}.bias"].copy_(torch.tensor(np.asarray(arrays[layer.bias.path], np.float64)))


def _torch_grads_as_keras(model, module, which):
    """PyTorch parameter gradients in our variables' layout, keyed by variable path."""
    params = dict(module.named_parameters())
    out = {}
    for layer_name, prefix in pytorch_weight_map(CFG, which).items():
        layer = model.get_layer(layer_name)
        out[layer.kernel.path] = params[f"{prefix}.weight"].grad.numpy().transpose(2, 3, 1, 0)
        out[layer.bias.path] = params[f"{prefix}.bias"].grad.numpy()
    return out


def _relative_error(ours: dict, reference: dict, keys) -> float:
    diff = np.sqrt(sum(np.sum((ours[k] - reference[k]) ** 2) for k in keys))
    return float(diff / np.sqrt(sum(np.sum(reference[k] ** 2) for k in keys)))


# ----------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def step():
    torch.manual_seed(0)
    net_g, net_d, vgg = ResnetGenerator().double(), NLayerDiscriminator().double(), tiny_vgg().double()
    for module in (net_g, net_d):  # weights_init: conv weights N(0, 0.02); biases nonzero to check them too
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.uniform_(m.bias, -0.05, 0.05)
    for m in vgg.modules():  # He init, scaled so that lambda_A * content and the adversarial term are
        if isinstance(m, nn.Conv2d):  # of one order (with PyTorch's default init the content is ~1e-6)
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            m.weight.data *= VGG_GAIN
            nn.init.uniform_(m.bias, -0.1, 0.1)

    generator, discriminator = build_generator(CFG), build_discriminator(CFG)
    load_pytorch_weights(generator, _state(net_g), CFG, "generator")
    load_pytorch_weights(discriminator, _state(net_d), CFG, "discriminator")
    for module, model, which in ((net_g, generator, "generator"), (net_d, discriminator, "discriminator")):
        _keras_to_torch(model, module, which)  # both sides start from the same float32-exact weights

    # the same feature network in Keras: conv 'same' = PyTorch padding 1 for 3x3
    inputs = keras.Input((None, None, 3))
    x, convs = inputs, [m for m in vgg if isinstance(m, nn.Conv2d)]
    pattern = ["c", "c", "p", "c", "c", "p", "c", "c", "c"]
    k = 0
    for i, item in enumerate(pattern):
        if item == "p":
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
            continue
        last = k == len(convs) - 1
        layer = keras.layers.Conv2D(convs[k].out_channels, 3, padding="same", name=f"conv{i}",
                                    activation=None if last else "relu")
        x = layer(x)
        layer.set_weights([convs[k].weight.detach().numpy().transpose(2, 3, 1, 0), convs[k].bias.detach().numpy()])
        k += 1
    extractor = keras.Model(inputs, x, name="tiny_vgg")
    content = PerceptualLoss(preprocess=CFG.vgg_preprocess, distance="mse", extractor=extractor)

    rng = np.random.default_rng(0)
    sharp = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype("float32")
    blurred = (0.5 * sharp + 0.25 * np.roll(sharp, 1, axis=2) + 0.25 * np.roll(sharp, -1, axis=1)).astype("float32")

    gan = RecordingDeblurGAN(generator, discriminator, CFG, content, seed=3)
    gan.compile(make_optimizer(CFG, "g_adam"), make_optimizer(CFG, "d_adam"), run_eagerly=True)
    # the mixing factors our penalty draws, in order (a fresh generator with the same seed)
    seeds = keras.random.SeedGenerator(3)
    ours_alpha = [float(keras.random.uniform((1, 1, 1, 1), 0.0, 1.0, seed=seeds).numpy().ravel()[0])
                  for _ in range(CFG.critic_updates)]
    logs = gan.train_on_batch(blurred, sharp, return_dict=True)

    # optimize_parameters(): forward() once, criticUpdates x backward_D, then backward_G
    real_a, real_b = _to_nchw(blurred), _to_nchw(sharp)
    fake_b = net_g(real_a)
    critic = []
    for i in range(CFG.critic_updates):
        name, grads, state = gan.records[i]
        assert name == "d_adam"
        # the state our update started from
        _keras_to_torch(discriminator, net_d, "discriminator", state[discriminator.name])
        net_d.zero_grad()
        # ours: real + a (fake - real); official: alpha real + (1 - alpha) fake, so alpha = 1 - a
        loss_d, penalty = critic_loss(net_d, real_b, fake_b, torch.tensor(1.0 - ours_alpha[i], dtype=torch.float64))
        loss_d.backward(retain_graph=True)
        critic.append((grads, _torch_grads_as_keras(discriminator, net_d, "discriminator")))
    # backward_G through the critic as our last critic update left it (the weights it holds now)
    name, g_grads, _ = gan.records[-1]
    assert name == "g_adam" and len(gan.records) == CFG.critic_updates + 1
    _keras_to_torch(discriminator, net_d, "discriminator")
    net_g.zero_grad()
    net_d.zero_grad()
    loss_g, g_gan, g_content = generator_loss(net_d, vgg, fake_b, real_b)
    loss_g.backward()
    generator_ref = _torch_grads_as_keras(generator, net_g, "generator")
    reference_logs = {"d_loss": loss_d.item(), "gp": penalty.item(), "g_adv": g_gan.item(),
                      "g_content": g_content.item(), "g_total": loss_g.item()}
    return dict(critic=critic, generator=(g_grads, generator_ref), logs=logs, reference_logs=reference_logs,
                generator_model=generator, discriminator_model=discriminator)


def test_critic_gradients_equal_official(step):
    errors, worst_kernels = [], []
    for ours, reference in step["critic"]:
        assert set(ours) == set(reference)
        errors.append(_relative_error(ours, reference, reference))
        kernels = [k for k in reference if k.endswith("kernel")]
        worst_kernels.append(max(_relative_error(ours, reference, [k]) for k in kernels))
    print("critic updates, relative gradient error:", ", ".join(f"{e:.1e}" for e in errors),
          f"(worst kernel {max(worst_kernels):.1e})")
    assert max(errors) <= 1e-4 and max(worst_kernels) <= 1e-4


def test_generator_gradient_equals_official(step):
    ours, reference = step["generator"]
    assert set(ours) == set(reference)
    error = _relative_error(ours, reference, reference)
    kernels = [k for k in reference if k.endswith("kernel")]
    worst_kernel = max(_relative_error(ours, reference, [k]) for k in kernels)
    print(f"generator update, relative gradient error: {error:.1e} (worst kernel {worst_kernel:.1e})")
    assert error <= 1e-4 and worst_kernel <= 1e-4


def test_logged_losses_equal_official(step):
    for name, expected in step["reference_logs"].items():
        got = float(step["logs"][name])
        print(f"{name}: ours {got:.7g}, official {expected:.7g}")
        assert got == pytest.approx(expected, rel=1e-5), name


def test_compared_config_is_the_paper_preset():
    """Only sizes and dropout differ from `paper`: the penalty, VGG input, weights, Adam are its own."""
    import dataclasses

    from deblur_gan.config import PRESETS

    paper = PRESETS["paper"]
    changed = {f.name for f in dataclasses.fields(CFG) if getattr(CFG, f.name) != getattr(paper, f.name)}
    assert changed == {"ngf", "ndf", "n_blocks", "dropout", "crop", "batch_size"}
    assert (CFG.critic_updates, CFG.gp_weight, CFG.content_weight) == (5, LAMBDA_GP, LAMBDA_A)


def test_torchvision_vgg19_converted_gives_official_conv3_3(tmp_path):
    """vgg_weights_from_torchvision + vgg_preprocess "none" = the official PerceptualLoss features."""
    from common.losses import build_feature_extractor, vgg_weights_from_torchvision

    torch.manual_seed(1)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    modules, channels = [], 3
    for item in cfg:  # torchvision vgg19().features, random weights (no download)
        if item == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            modules += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    features = nn.Sequential(*modules)
    state = {f"features.{k}": v.numpy() for k, v in features.state_dict().items()}
    path = vgg_weights_from_torchvision(state, "vgg19", tmp_path / "vgg19_torchvision.weights.h5")
    extractor = build_feature_extractor("vgg19", "block3_conv3", weights=str(path), pre_activation=True)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        expected = features[:15](torch.tensor(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(extractor(x))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
