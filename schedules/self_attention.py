"""Single-head self-attention of the InTAR paper: seq 256, d 1024.

``Q = X Wq``, ``K = X Wk``, ``V = X Wv`` (1024 x 1024 projections), ``S = Q K^T``,
``P = softmax(S)``, ``O = P V``. The shift of ``Q K^T`` folds in the ``1/sqrt(d)`` scaling
(:func:`intar_hw.models.matmul_shift`); ``P`` holds probabilities with ``bits - 1`` fractional
bits, so ``P V`` shifts by ``bits - 1``.
"""

import intar_hw as ih
from intar_hw.models import check_scale, matmul_shift


#: (sequence length, model width) per scale.
SHAPES = {
    "tiny": (4, 8),
    "small": (16, 32),
    "paper": (256, 1024),
}


def graph(scale="paper", *, fmt="int8"):
    """Self-attention at ``scale``, with activations and weights in ``fmt`` (int8 or int16)."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    seq, d = SHAPES[scale]
    g = ih.Graph("self_attention")
    x = g.input("x", shape=(seq, d), fmt=fmt)
    q = g.linear(x, d, shift=fmt.bits, weight_format=fmt, name="q_proj")
    k = g.linear(x, d, shift=fmt.bits, weight_format=fmt, name="k_proj")
    v = g.linear(x, d, shift=fmt.bits, weight_format=fmt, name="v_proj")
    s = g.matmul(q, k, transpose_b=True, shift=matmul_shift(d, fmt), name="scores")
    p = g.softmax(s, name="softmax")
    o = g.matmul(p, v, shift=fmt.bits - 1, name="attn")
    g.output(o)
    return g
