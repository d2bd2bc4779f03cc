"""Convolutional VAE of the InTAR paper: input 2x28x28.

Encoder: conv 8x8 2->2 (21^2), ReLU, conv 4x4 2->2 (18^2), ReLU. Reparameterisation: the
authors' design adds a noise term computed from the encoder output to it elementwise
(``z = h + sigma(h) * eps``); here it is ``z = h + requantize(h * eps, bits - 1)`` with the
noise ``eps`` a second graph input (drawn by the host, as ``torch.randn_like``), which keeps the
same data flow (one elementwise SFU between encoder and decoder) with the ops the SFUs provide.
Decoder: transposed conv 8x8 2->2 (25^2), ReLU, transposed conv 4x4 2->2 (28^2), ReLU.
"""

import intar_hw as ih
from intar_hw.models import check_scale


#: (input side, first kernel, second kernel) per scale.
SHAPES = {
    "tiny": (6, 3, 2),
    "small": (14, 4, 2),
    "paper": (28, 8, 4),
}


def graph(scale="paper", *, fmt="int8"):
    """The VAE at ``scale``, with activations and weights in ``fmt`` (int8 or int16)."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    side, k1, k2 = SHAPES[scale]
    latent = side - k1 - k2 + 2
    g = ih.Graph("vae")
    conv = dict(shift=fmt.bits, weight_format=fmt)
    x = g.input("x", shape=(1, 2, side, side), fmt=fmt)
    eps = g.input("eps", shape=(1, 2, latent, latent), fmt=fmt)
    h = g.relu(g.conv2d(x, 2, k1, name="enc1", **conv), name="enc1_relu")
    h = g.relu(g.conv2d(h, 2, k2, name="enc2", **conv), name="enc2_relu")
    noise = g.mul(h, eps, shift=fmt.bits - 1, name="noise")
    z = g.add(h, noise, name="z")
    h = g.relu(g.conv_transpose2d(z, 2, k1, name="dec1", **conv), name="dec1_relu")
    y = g.relu(g.conv_transpose2d(h, 2, k2, name="dec2", **conv), name="dec2_relu")
    g.output(y)
    return g
