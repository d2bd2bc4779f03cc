"""Gating network (SwiGLU feed-forward) of the InTAR paper: B 32, 4096 -> 11008 -> 4096.

``up = X Wu``, ``gate = X Wg`` (4096 -> 11008, no bias, as LLaMA), ``h = SiLU(up) * gate``
requantised by ``bits - 2`` (a product of two activations has heavy tails, so it keeps some
headroom), ``y = h Wd`` (11008 -> 4096).
"""

import intar_hw as ih
from intar_hw.models import check_scale


#: (batch, model width, hidden width) per scale.
SHAPES = {
    "tiny": (2, 8, 16),
    "small": (4, 32, 64),
    "paper": (32, 4096, 11008),
}


def graph(scale="paper", *, fmt="int8"):
    """The gating network at ``scale``, activations and weights in ``fmt`` (int8 or int16)."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    batch, d, hidden = SHAPES[scale]
    g = ih.Graph("gating_net")
    fc = dict(shift=fmt.bits, bias=False, weight_format=fmt)
    x = g.input("x", shape=(batch, d), fmt=fmt)
    up = g.linear(x, hidden, name="up_proj", **fc)
    gate = g.linear(x, hidden, name="gate_proj", **fc)
    h = g.mul(g.silu(up, name="silu"), gate, shift=fmt.bits - 2, name="gating")
    y = g.linear(h, d, name="down_proj", **fc)
    g.output(y)
    return g
