"""One GPT-2 medium decoder layer, W4A8, causal prefill.

d_model 1024, 16 heads of 64, FFN 4096; the paper-scale prompt length is 64 (``prompt=`` picks
another, 64 to 1024 in the paper). int4 weights, int8 activations; every projection requantises
with shift 8: ``clamp((acc + 128) >> 8, -128, 127)`` (the paper truncates, ``acc >> 8``; our one
rule rounds). Pre-LayerNorm block::

    a = x + proj(attention(ln1(x)))       attention: per head softmax(Q K^T / 8, causal) V
    y = a + fc2(gelu(fc1(ln2(a))))        GELU with the tanh approximation, as GPT-2

The ``1/sqrt(64)`` of the scores is folded into the shift of ``Q K^T``.
"""

import intar_hw as ih
from intar_hw.models import check_scale, matmul_shift


#: (prompt length, model width, heads, FFN width) per scale.
SHAPES = {
    "tiny": (4, 8, 2, 16),
    "small": (8, 32, 2, 64),
    "paper": (64, 1024, 16, 4096),
}


def graph(scale="paper", *, prompt=None, fmt="int8", weight_format="int4"):
    """One decoder layer at ``scale``; ``prompt`` overrides the prompt length."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    seq, d, heads, ffn = SHAPES[scale]
    if prompt is not None:
        seq = prompt
    g = ih.Graph("gpt2_medium")
    fc = dict(shift=8, weight_format=weight_format)
    x = g.input("x", shape=(seq, d), fmt=fmt)
    h = g.layernorm(x, name="ln1")
    q = g.linear(h, d, name="q_proj", **fc)
    k = g.linear(h, d, name="k_proj", **fc)
    v = g.linear(h, d, name="v_proj", **fc)
    s = g.matmul(q, k, transpose_b=True, heads=heads, shift=matmul_shift(d // heads, fmt),
                 name="scores")
    p = g.softmax(s, causal=True, name="softmax")
    o = g.matmul(p, v, heads=heads, merge_heads=True, shift=fmt.bits - 1, name="attn")
    a = g.add(x, g.linear(o, d, name="out_proj", **fc), name="residual1")
    h = g.layernorm(a, name="ln2")
    h = g.gelu(g.linear(h, ffn, name="fc1", **fc), approximate="tanh", name="gelu")
    y = g.add(a, g.linear(h, d, name="fc2", **fc), name="residual2")
    g.output(y)
    return g
