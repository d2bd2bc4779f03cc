"""A tiled GEMM on one :class:`~intar_hw.hw.mac_array.MACArray` in Amaranth's simulator.

:func:`gemm` computes ``A . B`` on the array (A's rows tile by tile against B's columns), checked
operand ranges in, the int64 product and the run's cycles out; :func:`pysim_speed` measures how
many cycles a second the simulator runs. Used by ``intar demo`` and ``intar bench hw``.
"""

import time
from dataclasses import dataclass

import numpy as np

from intar_hw.hw.mac_array import MACArray, MACBeatLayout
from intar_hw.testbench import get, put, run


__all__ = ["GemmRun", "gemm", "pysim_speed"]


@dataclass(frozen=True)
class GemmRun:
    """Result and cost of one :func:`gemm`.

    Attributes
    ----------
    c : numpy.ndarray
        The int64 product computed by the simulated array.
    cycles : int
        Clock cycles simulated, from the first beat offered to the last tile taken.
    seconds : float
        Wall-clock time of the simulation itself (elaboration and payload packing excluded).
    macs : int
        Multiply-accumulates the product needs, ``M * N * K`` (padding not counted).
    mac_units : int
        Multipliers in the array, ``rows * cols * depth``.
    """

    c: np.ndarray
    cycles: int
    seconds: float
    macs: int
    mac_units: int

    @property
    def utilisation(self):
        """Useful MACs per multiplier per cycle: ``macs / (mac_units * cycles)``."""
        return self.macs / (self.mac_units * self.cycles)

    @property
    def cycles_per_second(self):
        """Simulation speed in simulated cycles per wall-clock second."""
        return self.cycles / self.seconds


def _check_matrices(a, b):
    for name, x in (("A", a), ("B", b)):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"GEMM operand {name} must be an integer numpy array, not {x!r}")
        if x.ndim != 2 or 0 in x.shape:
            raise ValueError(f"GEMM operand {name} must be a non-empty matrix, not of shape "
                             f"{x.shape!r}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"GEMM inner dimensions must agree, not {a.shape!r} and {b.shape!r}")


def _check_range(a, b, operand_width):
    lo, hi = -(1 << (operand_width - 1)), (1 << (operand_width - 1)) - 1
    for name, x in (("A", a), ("B", b)):
        if x.min() < lo or x.max() > hi:
            raise ValueError(f"GEMM operand {name} must lie in [{lo}, {hi}] for "
                             f"{operand_width}-bit operands, not [{x.min()}, {x.max()}]")


def _pad(x, rows, cols):
    return np.pad(x, ((0, -x.shape[0] % rows), (0, -x.shape[1] % cols)))


def _pack_beat(layout, a, b, last):
    # Packing bits directly is ~20x faster than layout.const() on nested dicts and lists.
    mask = (1 << layout.width) - 1
    bits = int(last) << layout["last"].offset
    for name, operands in (("a", a), ("b", b)):
        offset = layout[name].offset
        for n, operand in enumerate(operands.flat):  # row-major, as ArrayLayout places elements
            bits |= (int(operand) & mask) << (offset + n * layout.width)
    return layout.from_bits(bits)


def gemm(a, b, *, rows=4, cols=4, depth=1, operand_width=8):
    """Compute ``a @ b`` on a simulated ``rows`` x ``cols`` :class:`MACArray`.

    ``C`` is split into ``rows`` x ``cols`` output tiles, in row-major order; for each tile the
    ``K`` dimension streams through the array ``depth`` products per beat, ``last`` set on the final
    beat, and the tile is collected from ``o``. ``M``, ``N`` and ``K`` are zero-padded up to
    multiples of ``rows``, ``cols`` and ``depth``. The source is always valid and the sink always
    ready, so the run shows the array's full-throughput behaviour.

    Parameters
    ----------
    a : numpy.ndarray
        Integer matrix of shape ``(M, K)``, values within ``operand_width`` signed bits.
    b : numpy.ndarray
        Integer matrix of shape ``(K, N)``, values within ``operand_width`` signed bits.
    rows, cols, depth, operand_width : int
        Parameters of the :class:`MACArray`.

    Returns
    -------
    GemmRun

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not an integer numpy array, or an array parameter is of the wrong type.
    ValueError
        If the matrices are empty, their inner dimensions disagree, a value does not fit in
        ``operand_width`` signed bits, or an array parameter is out of range.
    """
    _check_matrices(a, b)
    # Validates the array's parameters without building an elaboratable that might go unused.
    layout = MACBeatLayout(rows, cols, depth, operand_width)
    _check_range(a, b, operand_width)
    dut = MACArray(rows, cols, depth=depth, operand_width=operand_width,
                   max_reduction=a.shape[1])
    (m, k), n = a.shape, b.shape[1]
    a_tiles = _pad(a.astype(np.int64), rows, depth)      # (M', K'), rows of A feed rows of PEs
    b_tiles = _pad(b.astype(np.int64).T, cols, depth)    # (N', K'), columns of B feed columns
    beats_per_tile = a_tiles.shape[1] // depth
    tiles = [(i, j) for i in range(0, a_tiles.shape[0], rows)
             for j in range(0, b_tiles.shape[0], cols)]
    beats = []
    for i, j in tiles:
        for t in range(beats_per_tile):
            window = slice(t * depth, (t + 1) * depth)
            beats.append(_pack_beat(layout, a_tiles[i:i + rows, window],
                                    b_tiles[j:j + cols, window], t == beats_per_tile - 1))
    received = []
    clock = {}

    async def source(ctx):
        clock["start"] = time.perf_counter()
        await put(ctx, dut.i, beats)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(tiles)))
        clock["stop"] = time.perf_counter()

    cycles = run(dut, source, sink, deadline=2 * len(beats) + 100, vcd="demo_gemm.vcd")
    c = np.zeros((a_tiles.shape[0], b_tiles.shape[0]), dtype=np.int64)
    for (i, j), payload in zip(tiles, received):
        c[i:i + rows, j:j + cols] = [[payload[r][s] for s in range(cols)] for r in range(rows)]
    return GemmRun(c=c[:m, :n], cycles=cycles, seconds=clock["stop"] - clock["start"],
                   macs=m * n * k, mac_units=rows * cols * depth)


def pysim_speed(*, rows=4, cols=4, operand_width=8, beats=2048, reduction=32, seed=0):
    """Simulated cycles per wall-clock second of a MACArray streaming ``beats`` random beats.

    The array takes one beat per cycle in reductions of ``reduction`` beats, through the shared
    :mod:`intar_hw.testbench` stream helpers (their per-cycle Python cost is included).
    """
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (operand_width - 1)), (1 << (operand_width - 1))
    a = rng.integers(lo, hi, (rows, reduction), dtype=np.int64)
    # Repeating A's rows over column tiles of B gives beats / reduction tiles of one reduction each.
    b = rng.integers(lo, hi, (reduction, cols * (beats // reduction)), dtype=np.int64)
    result = gemm(a, b, rows=rows, cols=cols, operand_width=operand_width)
    if not np.array_equal(result.c, a @ b):
        raise RuntimeError("MACArray result differs from numpy during the speed measurement")
    return result.cycles_per_second
