"""Pytest-side helpers of the Verilog checks: payload bit patterns and the cocotb runs.

Payloads cross to cocotb as the raw bits of their layout (``layout.const(...).as_bits()``), so
the cocotb side needs no knowledge of the layouts and compares integers.
"""

import json
from pathlib import Path

import numpy as np
from amaranth.lib.wiring import In

from intar_hw.flow.cocotb_runner import run_cocotb


SIM_DIR = Path(__file__).parent


def bits(layout, value):
    """The raw bits of ``value`` (what ``layout.const`` takes) as an unsigned integer."""
    return layout.const(value).as_bits()


def vector_beats(layout, values, lasts):
    """Raw :class:`~intar_hw.hw.sfu.layouts.VectorLayout` beats of a flat array of elements."""
    values = np.asarray(values, dtype=np.int64)
    lanes = layout.lanes
    assert values.size == lanes * len(lasts)
    lo, hi = -(1 << (layout.width - 1)), (1 << (layout.width - 1)) - 1
    assert lo <= values.min() and values.max() <= hi
    return [bits(layout, {"data": row, "last": int(last)})
            for row, last in zip(values.reshape(-1, lanes).tolist(), lasts)]


def input_ports(dut):
    """The Verilog names of every input port of ``dut``: its flattened ``In`` members."""
    return ["__".join(map(str, path)) for path, member, _ in dut.signature.flatten(dut)
            if member.flow == In]


def run_streams(dut, toplevel, build_dir, phases, *, seed, idle=0.3, backpressure=0.5,
                drive=None, cycles_per_beat=40, record=None):
    """Check ``dut``'s Verilog with ``sim/streams_cocotb.py``; return the record, if asked.

    ``phases`` is a list of dicts as that module describes (stream names with ``__``, as the
    Verilog ports have them). Every input port is driven 0 before reset, then as ``drive``
    says. ``record`` lists streams to log per cycle; the log is returned as
    ``{"cycles": [...], "received": [...]}``.
    """
    build_dir = Path(build_dir)
    # Every input starts at 0, so a port no phase uses (a write stream, a start) never floats.
    drive = {**{port: 0 for port in input_ports(dut)}, **(drive or {})}
    params = {"phases": phases, "seed": seed, "idle": idle, "backpressure": backpressure,
              "drive": drive, "cycles_per_beat": cycles_per_beat}
    if record is not None:
        params["record"] = {"path": str(build_dir / "record.json"), "streams": list(record)}
    run_cocotb(dut, toplevel=toplevel, test_module="streams_cocotb", test_dir=SIM_DIR,
               build_dir=build_dir, parameters=params)
    if record is not None:
        return json.loads((build_dir / "record.json").read_text())
    return None


def run_stream_phase(dut, toplevel, build_dir, inputs, outputs, *, seed, quiet=8, **kwargs):
    """:func:`run_streams` with one phase: ``inputs`` and ``outputs`` map stream names to beats."""
    return run_streams(dut, toplevel, build_dir,
                       [{"inputs": inputs, "outputs": outputs, "quiet": quiet}],
                       seed=seed, **kwargs)
