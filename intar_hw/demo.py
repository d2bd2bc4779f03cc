"""The ``intar demo`` command: what intar-hw does today, on built-in defaults.

1. Schedules the paper's five kernels at paper scale (int16, the paper's numerics) on their paper
   budgets under the three policies, prints our predicted speedups next to the paper's measured
   ones, and draws each InTAR schedule's timeline into ``report/``.
2. Runs a tiled GEMM on a :class:`~intar_hw.hw.mac_array.MACArray` in Amaranth's Python simulator
   (pysim) and checks it bit for bit against numpy's int64 result.
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from intar_hw.hw.mac_array import MACArray, MACBeatLayout
from intar_hw.testbench import get, put, run


__all__ = ["GemmRun", "gemm", "pysim_speed", "main"]


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


def paper_comparison(report_dir="report"):
    """Schedule the paper's kernels under every policy; print the speedups; draw timelines.

    Returns the list of :class:`~intar_hw.schedule.compare.Comparison`.
    """
    from intar_hw.models import model_graph
    from intar_hw.schedule import Resources
    from intar_hw.schedule.compare import PAPER_MS, compare, summary_table
    from intar_hw.schedule.timeline import plot_timeline

    os.makedirs(report_dir, exist_ok=True)
    comparisons = []
    for model in PAPER_MS:
        graph = model_graph(model, "paper", fmt="int16")
        comparison = compare(graph, Resources.for_model(model, "paper"), model=model)
        plot_timeline(comparison.schedules["intar"], os.path.join(report_dir, f"{model}.png"))
        comparisons.append(comparison)
    print("The paper's kernels at paper scale (int16), predicted cycles on the paper's budgets:")
    print(summary_table(comparisons))
    print(f"InTAR schedule timelines: {report_dir}/<model>.png")
    print()
    return comparisons


#: The paper's kernels the generator table runs, in the paper's order.
KERNELS = ("self_attention", "mlp", "cnn4l", "vae", "gating_net")
POLICIES = ("sequential", "dataflow", "intar")


def generator_table(scale="small", models=KERNELS, seed=0, out=None):
    """Generate, simulate (Amaranth) and check every model under every policy at ``scale``.

    Prints one row per model and policy: simulated and predicted cycles, MAC utilisation and
    whether the outputs equal the golden model's; a model the generator cannot build yet gets
    the reason instead. Returns the rows as dicts (``error`` set for those).
    """
    import time

    import intar_hw as ih
    from intar_hw.schedule import Resources, schedule

    out = sys.stdout if out is None else out
    rows = []
    print(f"Generated accelerators at {scale} scale, simulated in Amaranth (ECP5 budgets):",
          file=out)
    header = (f"{'model':15s} {'policy':11s} {'cycles':>8s} {'predicted':>9s} {'diff':>7s} "
              f"{'util':>6s} {'match':>5s} {'sim s':>6s}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for model in models:
        graph = ih.model_graph(model, scale)
        inputs, params = graph.random_inputs(seed), graph.random_parameters(seed)
        golden = ih.reference(graph, inputs, params)
        for policy in POLICIES:
            s = schedule(graph, Resources.for_model(model, scale), policy)
            began = time.perf_counter()
            try:
                acc = ih.build(s, graph)
            except ValueError as error:
                rows.append(dict(model=model, policy=policy, error=str(error)))
                print(f"{model:15s} {policy:11s} not generated: {error}", file=out)
                continue
            r = ih.simulate(acc, inputs, params)
            match = all(np.array_equal(r.outputs[k], golden[k]) for k in r.outputs)
            seconds = time.perf_counter() - began
            diff = (r.cycles - r.predicted_cycles) / r.predicted_cycles
            rows.append(dict(model=model, policy=policy, cycles=r.cycles,
                             predicted=r.predicted_cycles, utilisation=r.utilisation,
                             match=match, seconds=seconds))
            print(f"{model:15s} {policy:11s} {r.cycles:8d} {r.predicted_cycles:9d} "
                  f"{diff:+7.2%} {r.utilisation:6.3f} {str(match):>5s} {seconds:6.1f}", file=out)
    print(file=out)
    return rows


def synthesis_report(model="gating_net", scale="tiny", policy="intar", device="ecp5-85k"):
    """Put one generated accelerator through Yosys and nextpnr and print the report (about
    three minutes the first time; the report is cached)."""
    import intar_hw as ih
    from intar_hw.schedule import Resources, schedule

    graph = ih.model_graph(model, scale)
    s = schedule(graph, Resources.for_model(model, scale), policy)
    acc = ih.build(s)
    print(f"From model to placed design: {model} ({scale}, {policy}) through Yosys and nextpnr "
          f"on the {device} (`intar synth {model} --scale {scale}`):", flush=True)
    report = ih.synthesize(acc, device, log=lambda line: print(f"  ... {line}", flush=True))
    print("\n".join(report.lines()))
    if report.fits:
        print(f"  {s.cycles:,} predicted cycles: {s.cycles / report.fmax_mhz:,.2f} us at "
              f"{report.fmax_mhz:.1f} MHz; {acc.multipliers} multipliers "
              f"({acc.array_multipliers} in the MAC arrays)")
    print()
    return report


def main(scale="small", synthesis=True, models=KERNELS):
    """Print the paper comparison, the generator table of ``models`` at ``scale``
    (:func:`generator_table`) and, with ``synthesis``, one accelerator's synthesis report
    (:func:`synthesis_report`).

    Returns 0 if every generated accelerator matches the golden model, else 1.
    """
    import time

    began = time.perf_counter()
    paper_comparison()
    rows = generator_table(scale, models)
    if synthesis:
        synthesis_report()
    bad = [f"{r['model']}/{r['policy']}" for r in rows if "error" not in r and not r["match"]]
    generated = sum("error" not in r for r in rows)
    print(f"{generated} of {len(rows)} model x policy accelerators generated; "
          f"{generated - len(bad)} bit-exact; {time.perf_counter() - began:.0f} s in all")
    if bad:
        print(f"intar demo: error: outputs differ from the golden model: {', '.join(bad)}",
              file=sys.stderr)
    return 1 if bad else 0


def gemm_demo():
    """Run C = A (16x32) . B (32x16), int8, on a 4x4 MACArray; print cycles and utilisation.

    Returns 0 if the simulated GEMM matches numpy, else 1.
    """
    rows = cols = 4
    rng = np.random.default_rng(2024)
    a = rng.integers(-128, 128, (16, 32), dtype=np.int8)
    b = rng.integers(-128, 128, (32, 16), dtype=np.int8)
    result = gemm(a, b, rows=rows, cols=cols, operand_width=8)
    match = np.array_equal(result.c, a.astype(np.int64) @ b.astype(np.int64))
    print(f"GEMM C = A ({a.shape[0]}x{a.shape[1]}) . B ({b.shape[0]}x{b.shape[1]}), int8, "
          f"on a {rows}x{cols} MACArray in Amaranth simulation")
    print(f"  cycles simulated: {result.cycles}")
    print(f"  MACs:             {result.macs}")
    print(f"  MAC utilisation:  {result.utilisation:.1%} "
          f"(MACs / ({result.mac_units} PEs * {result.cycles} cycles))")
    print(f"  pysim speed:      {result.cycles_per_second:,.0f} cycles/s")
    print(f"  match: {match}")
    if not match:
        print("intar demo: error: the simulated array disagrees with numpy", file=sys.stderr)
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
