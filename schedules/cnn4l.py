"""4-layer CNN of the InTAR paper: one channel, 3x3 kernels, same padding.

224^2 conv1, ReLU, 2x upsample, conv2 (448^2), ReLU, 2x upsample, conv3 (896^2), 2x2 max-pool,
ReLU, conv4 (448^2). Convolutions shift by ``bits - 2`` (a 9-tap reduction needs little).
"""

import intar_hw as ih
from intar_hw.models import check_scale


#: Input image side per scale.
SIDES = {
    "tiny": 2,
    "small": 8,
    "paper": 224,
}


def graph(scale="paper", *, fmt="int8"):
    """The CNN at ``scale``, with activations and weights in ``fmt`` (int8 or int16)."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    side = SIDES[scale]
    g = ih.Graph("cnn4l")
    conv = dict(kernel_size=3, padding=1, shift=fmt.bits - 2, weight_format=fmt)
    x = g.input("x", shape=(1, 1, side, side), fmt=fmt)
    h = g.relu(g.conv2d(x, 1, name="conv1", **conv), name="relu1")
    h = g.upsample(h, 2, name="up1")
    h = g.relu(g.conv2d(h, 1, name="conv2", **conv), name="relu2")
    h = g.upsample(h, 2, name="up2")
    h = g.conv2d(h, 1, name="conv3", **conv)
    h = g.relu(g.maxpool(h, 2, name="pool"), name="relu3")
    y = g.conv2d(h, 1, name="conv4", **conv)
    g.output(y)
    return g
