"""Random small graphs and budgets, and the check every schedule must pass on them.

The property behind "only buildable schedules are offered": for any graph and budget, each policy
either refuses with a :class:`ValueError` (saying what the generator lacks) or returns a schedule
that builds, simulates bit-exact against the golden model and takes the predicted cycles (within
1%). :func:`check_case` tries one seeded case under the three policies; ``make test`` runs a
few dozen (``tests/test_random_graphs.py``) and ``make bench`` many more (``-m slow``).

Graphs are drawn from the shapes the paper's kernels are made of: chains of linear layers with
activation functions, gated and residual joins (with the second tensor computed or a graph
input), attention (``Q K^T``, softmax, ``P V``) and convolution chains with upsampling and
pooling. Sizes stay at tiny scale so that one case simulates in seconds.
"""

from dataclasses import dataclass

import numpy as np

from .graph import Graph
from .schedule import POLICIES, Resources, schedule


__all__ = ["FAMILIES", "Outcome", "check_case", "random_budget", "random_graph"]


def _dim(rng, lo=2, hi=20):
    return int(rng.integers(lo, hi + 1))


def _activation(rng, g, x, name):
    kind = rng.choice(["none", "relu", "gelu", "silu"])
    return x if kind == "none" else getattr(g, str(kind))(x, name=f"{name}_{kind}")


def _chain(rng, g):
    rows = _dim(rng, 1, 3)
    h = g.input("x", (rows, _dim(rng)))
    for n in range(_dim(rng, 1, 3)):
        h = g.linear(h, _dim(rng), shift=7, bias=bool(rng.integers(2)), name=f"fc{n}")
        h = _activation(rng, g, h, f"fc{n}")
    g.output(h)


def _gated(rng, g):
    rows, d, hidden = _dim(rng, 1, 3), _dim(rng), _dim(rng)
    x = g.input("x", (rows, d))
    up = g.linear(x, hidden, shift=7, name="up")
    gate = g.linear(x, hidden, shift=7, name="gate")
    if rng.integers(2):
        h = g.mul(g.silu(up, name="up_silu"), gate, shift=6, name="join")
    else:
        h = g.add(up, gate, name="join")
    g.output(g.linear(h, d, shift=7, name="down"))


def _residual(rng, g):
    rows, d = _dim(rng, 1, 3), _dim(rng)
    x = g.input("x", (rows, d))
    side = g.input("side", (rows, d))
    h = _activation(rng, g, g.linear(x, d, shift=7, name="fc"), "fc")
    g.output(g.add(h, side, name="residual"))


def _attention(rng, g):
    seq, d = _dim(rng, 2, 6), _dim(rng, 4, 12)
    x = g.input("x", (seq, d))
    q = g.linear(x, d, shift=8, name="q_proj")
    k = g.linear(x, d, shift=8, name="k_proj")
    v = g.linear(x, d, shift=8, name="v_proj")
    s = g.matmul(q, k, transpose_b=True, shift=6, name="scores")
    g.output(g.matmul(g.softmax(s, name="softmax"), v, shift=7, name="attn"))


def _convolutions(rng, g):
    channels, side = _dim(rng, 1, 2), int(rng.choice([4, 6, 8]))
    h = g.input("x", (1, channels, side, side))
    for n in range(_dim(rng, 1, 3)):
        out = _dim(rng, 1, 2)
        h = g.conv2d(h, out, 3, padding=1, shift=6, name=f"conv{n}")
        h = _activation(rng, g, h, f"conv{n}")
        step = rng.choice(["none", "upsample", "maxpool"])
        if step == "upsample" and h.shape[-1] <= 8:
            h = g.upsample(h, 2, name=f"up{n}")
        elif step == "maxpool" and h.shape[-1] >= 4 and h.shape[-1] % 2 == 0:
            h = g.maxpool(h, 2, name=f"pool{n}")
    g.output(h)


#: The graph families :func:`random_graph` draws from, by name.
FAMILIES = {"chain": _chain, "gated": _gated, "residual": _residual, "attention": _attention,
            "convolutions": _convolutions}


def random_graph(seed, family=None):
    """A small random graph (``family`` one of :data:`FAMILIES`, or drawn by ``seed``)."""
    rng = np.random.default_rng(seed)
    family = family or str(rng.choice(list(FAMILIES)))
    if family not in FAMILIES:
        raise ValueError(f"Graph family must be one of {', '.join(FAMILIES)}, not {family!r}")
    g = Graph(f"random_{family}_{seed}")
    FAMILIES[family](rng, g)
    return g


#: PE array shapes a random budget picks from (rows x columns x depth).
PE_SHAPES = ((1, 8, 1), (1, 16, 1), (2, 4, 1), (4, 4, 1), (2, 8, 1), (1, 4, 4), (1, 1, 8),
             (1, 8, 2))


def random_budget(seed):
    """A random budget of 1-3 cores of one of :data:`PE_SHAPES`, on-chip memory to spare and an
    off-chip rate of 1-8 bytes a cycle."""
    rng = np.random.default_rng(seed + 1_000_003)
    return Resources(ccs=int(rng.integers(1, 4)), pea=PE_SHAPES[rng.integers(len(PE_SHAPES))],
                     scratchpad_kib=64, offchip_bytes_per_cycle=int(rng.choice([1, 2, 4, 8])),
                     offchip_latency=int(rng.choice([2, 10, 20])))


@dataclass(frozen=True)
class Outcome:
    """What one policy did with one case: ``status`` is ``"refused"`` (the policy raised a
    ValueError: ``detail``), ``"ok"`` (built, bit-exact, cycles within 1%) or ``"failed"``
    (``detail`` says how)."""

    seed: int
    policy: str
    status: str
    detail: str = ""
    cycles: int = 0
    predicted: int = 0


def check_case(seed, policies=POLICIES, family=None):
    """Schedule, build and simulate case ``seed`` under each policy; a list of :class:`Outcome`."""
    import intar_hw as ih

    graph, budget = random_graph(seed, family), random_budget(seed)
    inputs, params = graph.random_inputs(seed), graph.random_parameters(seed)
    golden = ih.reference(graph, inputs, params)
    outcomes = []
    for policy in policies:
        try:
            s = schedule(graph, budget, policy)
        except ValueError as error:
            outcomes.append(Outcome(seed, policy, "refused", str(error)))
            continue
        try:
            result = ih.simulate(ih.build(s), inputs, params)
        except (ValueError, TimeoutError) as error:
            outcomes.append(Outcome(seed, policy, "failed",
                                    f"{type(error).__name__}: {error}", predicted=s.cycles))
            continue
        wrong = [name for name, value in result.outputs.items()
                 if not np.array_equal(value, golden[name])]
        off = abs(result.cycles - result.predicted_cycles) > 0.01 * result.predicted_cycles
        detail = ("outputs differ: " + ", ".join(wrong) if wrong else
                  f"cycles {result.cycles} against {result.predicted_cycles} predicted"
                  if off else "")
        outcomes.append(Outcome(seed, policy, "failed" if detail else "ok", detail,
                                result.cycles, result.predicted_cycles))
    return outcomes
