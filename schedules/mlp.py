"""3-layer MLP of the InTAR paper: 256 -> 1024 -> 2048 -> 256, ReLU after each layer, one vector.

Each layer is ``relu(requantize(x @ W.T + b, bits))``: the shift equals the data width (8 for
int8), and :meth:`~intar_hw.graph.Graph.random_parameters` scales the weights to suit it.
"""

import intar_hw as ih
from intar_hw.models import check_scale


#: (batch, input, hidden 1, hidden 2, output) per scale.
SHAPES = {
    "tiny": (1, 8, 16, 16, 8),
    "small": (1, 32, 64, 128, 32),
    "paper": (1, 256, 1024, 2048, 256),
}


def graph(scale="paper", *, fmt="int8"):
    """The MLP at ``scale``, with activations and weights in ``fmt`` (int8 or int16)."""
    check_scale(scale)
    fmt = ih.numerics.as_format(fmt)
    batch, n_in, n_h1, n_h2, n_out = SHAPES[scale]
    g = ih.Graph("mlp")
    x = g.input("x", shape=(batch, n_in), fmt=fmt)
    h1 = g.relu(g.linear(x, n_h1, shift=fmt.bits, weight_format=fmt, name="fc1"), name="relu1")
    h2 = g.relu(g.linear(h1, n_h2, shift=fmt.bits, weight_format=fmt, name="fc2"), name="relu2")
    y = g.relu(g.linear(h2, n_out, shift=fmt.bits, weight_format=fmt, name="fc3"), name="relu3")
    g.output(y)
    return g
