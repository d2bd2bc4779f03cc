# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`Softmax`, bit-exact with :func:`numerics.softmax`."""

import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.hw.sfu.softmax import Softmax
from intar_hw.numerics import INT8, INT16
from vectors import run_stream_phase, vector_beats


def row_beats(dut, x):
    """Beats of ``(rows, row_length)``, ``last`` on each row's final beat."""
    lasts = [int(b == dut.beats - 1) for _ in range(len(x)) for b in range(dut.beats)]
    return vector_beats(dut.o.payload.shape(), np.asarray(x).reshape(-1), lasts)


def hard_rows(fmt, row_length, rng):
    """Random rows and the hard cases: equal maxima, all equal, extremes, one certain event."""
    x = rng.integers(fmt.lo, fmt.hi + 1, (6, row_length))
    x[1] = fmt.lo
    x[2, ::2] = fmt.hi
    x[3] = np.where(np.arange(row_length) % 3, fmt.lo, fmt.hi)
    x[4, :] = fmt.lo
    x[4, -1] = fmt.hi
    return x


def check(tmp_path, dut, x, want, seed, **kwargs):
    # The input's own last bits are ignored (rows are counted): send them all clear.
    beats = vector_beats(dut.i.payload.shape(), np.asarray(x).reshape(-1),
                         [0] * (x.size // dut.lanes))
    run_stream_phase(dut, "softmax", tmp_path, {"i": beats}, {"o": row_beats(dut, want)},
                     seed=seed, quiet=dut.latency + 2, **kwargs)


@pytest.mark.parametrize("row_length,lanes,fmt,frac", [
    (4, 2, INT8, 4),
    (6, 3, INT8, 7),
    (4, 4, INT16, 3),
])
def test_rows_with_stalls(tmp_path, row_length, lanes, fmt, frac):
    seed = row_length * 10 + lanes + fmt.bits
    dut = Softmax(row_length, lanes, format=fmt, frac=frac)
    x = hard_rows(fmt, row_length, np.random.default_rng(seed))
    check(tmp_path, dut, x, numerics.softmax(x, fmt, frac), seed)


def test_causal_two_matrices(tmp_path):
    row_length, lanes, rows = 4, 2, 4
    dut = Softmax(row_length, lanes, causal=True, rows=rows)
    x = np.random.default_rng(3).integers(-128, 128, (2 * rows, row_length))
    x[1] = 127                           # masked entries above the row's maximum
    want = numerics.softmax(x.reshape(2, rows, row_length), INT8, dut.frac, True)
    check(tmp_path, dut, x, want.reshape(x.shape), 3)


@pytest.mark.parametrize("fmt,idle,backpressure", [(INT8, 0.1, 0.8), (INT16, 0.7, 0.1)])
def test_many_rows_through_the_ring(tmp_path, fmt, idle, backpressure):
    # Heavy backpressure fills every bank (the other stages must wait, not overwrite); a slow
    # source starves the stages in turn.
    dut = Softmax(8, 4, format=fmt)
    x = np.random.default_rng(fmt.bits).integers(fmt.lo, fmt.hi + 1, (10, 8))
    check(tmp_path, dut, x, numerics.softmax(x, fmt, dut.frac), fmt.bits, idle=idle,
          backpressure=backpressure)
