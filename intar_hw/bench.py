"""The ``intar bench`` command: measure and print the figures the README quotes.

Each suite returns rows of ``(what, figure, unit)`` measured on this machine; nothing is read from
a file or assumed. Suites are slow enough that they are not part of ``make test``.
"""

import numpy as np

from intar_hw.array_gemm import pysim_speed
from intar_hw.hw.mac_array import MACArray
from intar_hw.hw.queue import Queue
from intar_hw.testbench import beats_per_cycle, flow
from intar_hw.table import Column, Table


__all__ = ["SUITES", "hardware_blocks", "random_graphs", "synthesis", "main"]


def _queue_throughput(depth, beats=256):
    _, given = flow(Queue(8, depth), [n % 256 for n in range(beats)], beats)
    return beats_per_cycle(given)


def _mac_array_throughput(length, beats=256):
    rng = np.random.default_rng(length)
    dut = MACArray(4, 4, max_reduction=length)
    payloads = [{"a": rng.integers(-128, 128, (4, 1)).tolist(),
                 "b": rng.integers(-128, 128, (4, 1)).tolist(),
                 "last": int(n % length == length - 1)} for n in range(beats)]
    taken, _ = flow(dut, payloads, beats // length)
    return beats_per_cycle(taken)


def hardware_blocks():
    """Throughput of the stream blocks with no stalls, and the speed of Amaranth's simulator."""
    rows = [(f"Queue throughput, depth {depth}", _queue_throughput(depth), "beats/cycle")
            for depth in (1, 2, 3, 4)]
    rows += [(f"MACArray 4x4 int8 throughput, reductions of {length}",
              _mac_array_throughput(length), "beats/cycle") for length in (1, 32)]
    rows.append(("pysim speed, 4x4 int8 MACArray with stream helpers", pysim_speed(),
                 "cycles/s"))
    return rows


def random_graphs(cases=100, first=0):
    """The buildable-schedule property on ``cases`` random graphs and budgets from seed ``first``
    on (:mod:`intar_hw.random_graphs`): how many policy outcomes built bit-exact within 1% of the
    predicted cycles, were refused with a reason, ran off the prediction, or computed wrong
    outputs; each case that did not pass is printed as it is found."""
    from intar_hw.random_graphs import check_case

    counts = {"ok": 0, "refused": 0, "off": 0, "wrong": 0}
    for seed in range(first, first + cases):
        for outcome in check_case(seed):
            kind = outcome.status
            if kind == "failed":
                kind = "wrong" if outcome.detail.startswith("outputs") else "off"
                print(f"  case {seed} ({outcome.policy}): {outcome.detail}", flush=True)
            counts[kind] += 1
    return [(f"random cases x policies, {what}", n, "outcomes")
            for what, n in (("built bit-exact, cycles within 1%", counts["ok"]),
                            ("refused with a reason", counts["refused"]),
                            ("cycles more than 1% off (bit-exact)", counts["off"]),
                            ("outputs wrong", counts["wrong"]))]


def synthesis():
    """Every kernel x policy at small scale through Yosys and nextpnr on the ECP5-85F; the
    table is printed as it goes (:func:`intar_hw.flow.synth_table.synth_table`)."""
    from intar_hw.flow.synth_table import synth_table
    synth_table()
    return []


SUITES = {"hw": hardware_blocks, "random": random_graphs, "synth": synthesis}

_FIGURES = Table(Column("figure", "<"), Column("value"), Column("unit", "<"))


def main(suites=None):
    """Run the named suites (all when ``None``) and print one table per suite."""
    names = list(SUITES) if suites is None else suites
    for name in names:
        if name not in SUITES:
            raise ValueError(f"Benchmark suite must be one of {', '.join(SUITES)}, not {name!r}")
    for name in names:
        print(f"== {name}")
        rows = [(what, f"{figure:,}" if isinstance(figure, int) else
                 f"{figure:,.0f}" if figure >= 100 else f"{figure:.2f}", unit)
                for what, figure, unit in SUITES[name]()]
        if rows:
            print(_FIGURES.text(rows))
    return 0
