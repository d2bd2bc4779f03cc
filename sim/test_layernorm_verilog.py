# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`LayerNorm`, bit-exact with :func:`numerics.layernorm`."""

import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.hw.sfu.layernorm import LayerNorm
from intar_hw.numerics import INT4, INT8, INT16
from vectors import bits, run_streams, vector_beats


def reference(dut, x, weight, bias):
    return numerics.layernorm(x, np.array(weight), np.array(bias), dut.format, frac=dut.frac,
                              out_frac=dut.out_frac, weight_frac=dut.weight_frac, eps=dut.eps)


def hard_rows(fmt, d, rng, count=5):
    """Random rows and the hard cases of numerics' own tests."""
    x = rng.integers(fmt.lo, fmt.hi + 1, (count, d))
    x[1] = 17                                           # constant: V = eps_int
    x[2] = np.where(np.arange(d) % 2, fmt.hi, fmt.lo)   # the largest variance
    x[3, :] = 0
    x[3, 0] = 1                                         # one outlier
    x[4] = fmt.lo
    return x


def random_params(rng, d, weight_fmt):
    return (rng.integers(weight_fmt.lo, weight_fmt.hi + 1, d).tolist(),
            rng.integers(-2**20, 2**20, d).tolist())


def row_phase(dut, x, want):
    lasts = [int(b == dut.beats - 1) for _ in range(len(x)) for b in range(dut.beats)]
    layout = dut.o.payload.shape()
    return {"inputs": {"i": vector_beats(layout, x.reshape(-1), [0] * len(lasts))},
            "outputs": {"o": vector_beats(layout, want.reshape(-1), lasts)},
            "quiet": dut.latency + 2}


@pytest.mark.parametrize("d,lanes,fmt,weight_fmt,eps,out_frac,weight_frac", [
    (8, 2, INT8, INT8, 1e-5, None, None),
    (6, 3, INT8, INT4, 0.0, 7, 2),
    (16, 4, INT16, INT16, 1e-5, 15, 14),
    (64, 8, INT16, INT8, 1e-5, None, None),      # V above 2**32: the right-shift normalisation
])
def test_rows_with_stalls(tmp_path, d, lanes, fmt, weight_fmt, eps, out_frac, weight_frac):
    seed = d * 10 + lanes + fmt.bits
    rng = np.random.default_rng(seed)
    weight, bias = random_params(rng, d, weight_fmt)
    dut = LayerNorm(d, lanes, weight=weight, bias=bias, format=fmt, eps=eps,
                    weight_format=weight_fmt, out_frac=out_frac, weight_frac=weight_frac)
    x = hard_rows(fmt, d, rng)
    run_streams(dut, "layernorm", tmp_path, [row_phase(dut, x, reference(dut, x, weight, bias))],
                seed=seed)


def test_parameters_loaded_through_the_stream(tmp_path):
    rng = np.random.default_rng(11)
    d, lanes = 8, 2
    weight, bias = random_params(rng, d, INT8)
    dut = LayerNorm(d, lanes, weight=[0] * d, bias=[0] * d, loadable=True)
    layout = dut.params.payload.shape()
    params = [bits(layout, {"addr": b, "weight": weight[b * lanes:(b + 1) * lanes],
                            "bias": bias[b * lanes:(b + 1) * lanes]})
              for b in reversed(range(d // lanes))]
    x = hard_rows(INT8, d, rng, count=5)
    run_streams(dut, "layernorm", tmp_path,
                [{"inputs": {"params": params}},
                 row_phase(dut, x, reference(dut, x, weight, bias))], seed=11)


@pytest.mark.parametrize("idle,backpressure", [(0.1, 0.7), (0.7, 0.1)])
def test_many_rows_through_the_ring(tmp_path, idle, backpressure):
    rng = np.random.default_rng(5)
    weight, bias = random_params(rng, 32, INT8)
    dut = LayerNorm(32, 4, weight=weight, bias=bias)
    x = rng.integers(-128, 128, (12, 32))
    run_streams(dut, "layernorm", tmp_path, [row_phase(dut, x, reference(dut, x, weight, bias))],
                seed=5, idle=idle, backpressure=backpressure)
