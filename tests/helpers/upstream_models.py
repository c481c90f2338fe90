"""The upstream generators rebuilt in their own frameworks (tf-keras for the Keras 2 repositories,
PyTorch for the Torch ones), tiny, with random weights and BatchNorm statistics far from (0, 1).
Tests save them in the upstream format and compare our converted models with their outputs."""

from __future__ import annotations

import numpy as np


def randomize_keras2(model, seed: int) -> None:
    """Random kernels and biases; BatchNorm gamma, beta, moving mean / variance that matter."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        name = w.name
        if "moving_variance" in name:
            values.append(rng.uniform(0.5, 2.0, w.shape))
        elif "moving_mean" in name or "beta" in name:
            values.append(rng.normal(0, 0.3, w.shape))
        elif "gamma" in name:
            values.append(rng.uniform(0.5, 1.5, w.shape))
        elif "alpha" in name:  # PReLU slopes
            values.append(rng.uniform(0.0, 0.4, w.shape))
        else:
            fan_in = int(np.prod(w.shape[:-1])) or 1
            values.append(rng.normal(0, 1.0 / np.sqrt(fan_in), w.shape))
    model.set_weights([v.astype("float32") for v in values])


def keras_port_generator(tk, upsampling: str, ngf: int, blocks: int):
    """RaphaelMeudec/deblur-gan deblurgan/model.py generator_model (+ layer_utils.res_block)."""
    import tensorflow as tf

    L = tk.layers

    def reflect(p):
        return L.Lambda(lambda t: tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT"))

    inputs = L.Input((None, None, 3))
    x = L.Conv2D(ngf, 7, padding="valid")(reflect(3)(inputs))
    x = L.Activation("relu")(L.BatchNormalization()(x))
    for i in range(2):
        x = L.Conv2D(ngf * 2 ** i * 2, 3, strides=2, padding="same")(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
    for _ in range(blocks):
        y = L.Conv2D(ngf * 4, 3)(reflect(1)(x))
        y = L.Dropout(0.5)(L.Activation("relu")(L.BatchNormalization()(y)))
        y = L.BatchNormalization()(L.Conv2D(ngf * 4, 3)(reflect(1)(y)))
        x = L.Add()([x, y])
    for i in range(2):
        filters = ngf * 2 ** (2 - i) // 2
        if upsampling == "nearest":
            x = L.Conv2D(filters, 3, padding="same")(L.UpSampling2D()(x))
        else:
            x = L.Conv2DTranspose(filters, 3, strides=2, padding="same")(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
    x = L.Activation("tanh")(L.Conv2D(3, 7, padding="valid")(reflect(3)(x)))
    outputs = L.Lambda(lambda z: z / 2)(L.Add()([x, inputs]))
    return tk.Model(inputs, outputs)


def srresnet_generator(tk, layout: str, filters: int, blocks: int):
    """bubbliiiing/srgan-keras nets/srgan.py build_generator (``layout="bubbliiiing"``: LR in [-1, 1])
    or krasserm/super-resolution model/srgan.py sr_resnet (``"krasserm"``: pixels in [0, 255] in
    and out, normalised by Lambda layers). Both x4 with ``tf.nn.depth_to_space`` pixel shuffles."""
    import tensorflow as tf

    L = tk.layers
    krasserm = layout == "krasserm"
    momentum = 0.8 if krasserm else 0.99
    inputs = L.Input((None, None, 3))
    x = L.Lambda(lambda t: t / 255.0)(inputs) if krasserm else inputs
    x = L.Conv2D(filters, 9, padding="same")(x)
    x = skip = L.PReLU(shared_axes=[1, 2])(x)
    for _ in range(blocks):
        y = L.Conv2D(filters, 3, padding="same")(x)
        y = L.PReLU(shared_axes=[1, 2])(L.BatchNormalization(momentum=momentum)(y))
        y = L.BatchNormalization(momentum=momentum)(L.Conv2D(filters, 3, padding="same")(y))
        x = L.Add()([x, y])
    x = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(x))
    x = L.Add()([skip, x])
    for _ in range(2):
        x = L.Conv2D(filters * 4, 3, padding="same")(x)
        x = L.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(x)
        x = L.PReLU(shared_axes=[1, 2])(x)
    x = L.Conv2D(3, 9, padding="same", activation="tanh")(x)
    if krasserm:
        x = L.Lambda(lambda t: (t + 1) * 127.5)(x)
    return tk.Model(inputs, x)


def leftthomas_generator(tk, channel_rate: int):
    """leftthomas/ImageDeblurring model.py generator_model (the (None, None, 3) LeakyReLU version)."""
    L = tk.layers

    def dense_block(x, dilation=None):
        x = L.LeakyReLU(0.2)(x)
        x = L.BatchNormalization()(L.Conv2D(4 * channel_rate, 1, padding="same")(x))
        x = L.LeakyReLU(0.2)(x)
        x = L.Conv2D(channel_rate, 3, padding="same", dilation_rate=dilation or 1)(x)
        return L.Dropout(0.5)(L.BatchNormalization()(x))

    inputs = L.Input((None, None, 3))
    h = L.Conv2D(4 * channel_rate, 3, padding="same")(inputs)
    x = h
    for k, dilation in enumerate((None, 1, None, 2, None, 3, None, 2, None, 1), start=1):
        d = dense_block(x, dilation)
        x = L.concatenate([x, d]) if k < 10 else d
    x = L.BatchNormalization()(L.Conv2D(4 * channel_rate, 1, padding="same")(L.LeakyReLU(0.2)(x)))
    x = L.concatenate([h, x])
    x = L.LeakyReLU(0.2)(L.Conv2D(channel_rate, 3, padding="same")(x))
    outputs = L.Conv2D(3, 3, padding="same", activation="tanh")(x)
    return tk.Model(inputs, outputs)


# (kind, kernel, dilation, stride, channels at 64 filters): paper Table 1, as glcic_inpaint.model
GLCIC_TABLE = (("conv", 5, 1, 1, 64), ("conv", 3, 1, 2, 128), ("conv", 3, 1, 1, 128), ("conv", 3, 1, 2, 256),
               ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 2, 1, 256), ("conv", 3, 4, 1, 256),
               ("conv", 3, 8, 1, 256), ("conv", 3, 16, 1, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256),
               ("deconv", 4, 1, 2, 128), ("conv", 3, 1, 1, 128), ("deconv", 4, 1, 2, 64), ("conv", 3, 1, 1, 32),
               ("conv", 3, 1, 1, 3))


def glcic_torch_and_t7(torch, filters: int, seed: int):
    """The official completion network as PyTorch modules (the reference forward pass) and the
    same weights as the Torch7 ``nn`` modules of completionnet_places2.t7 (for tests/helpers/t7_writer)."""
    from t7_writer import Module, sequential

    nn = torch.nn
    torch.manual_seed(seed)
    layers, t7, channels = [], [], 4
    for index, (kind, k, dil, stride, out) in enumerate(GLCIC_TABLE):
        last = index == len(GLCIC_TABLE) - 1
        out = out if last else max(1, out * filters // 64)
        pad = (k - 1) // 2 * dil if kind == "conv" else 1
        if kind == "conv":
            conv = nn.Conv2d(channels, out, k, stride=stride, padding=pad, dilation=dil)
            name = "nn.SpatialDilatedConvolution" if dil > 1 else "nn.SpatialConvolution"
        else:
            conv = nn.ConvTranspose2d(channels, out, k, stride=stride, padding=pad)
            name = "nn.SpatialFullConvolution"
        with torch.no_grad():
            conv.weight.normal_(0, 1.0 / np.sqrt(channels * k * k))
            conv.bias.normal_(0, 0.1)
        layers.append(conv)
        t7.append(Module(name, {"weight": conv.weight.detach().numpy().copy(),
                                "bias": conv.bias.detach().numpy().copy(), "nInputPlane": channels,
                                "nOutputPlane": out, "kW": k, "kH": k, "dW": stride, "dH": stride,
                                "padW": pad, "padH": pad, "dilationW": dil, "dilationH": dil}))
        if last:
            layers.append(nn.Sigmoid())
            t7.append(Module("nn.Sigmoid", {}))
            break
        bn = nn.BatchNorm2d(out, eps=1e-5)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.3)
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
        layers += [bn, nn.ReLU()]
        t7 += [Module("nn.SpatialBatchNormalization",
                      {name: getattr(bn, name).detach().numpy().copy()
                       for name in ("weight", "bias", "running_mean", "running_var")} | {"eps": 1e-5}),
               Module("nn.ReLU", {})]
        channels = out
    return nn.Sequential(*layers).eval(), sequential(*t7)
