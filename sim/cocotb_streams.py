"""Stream source and sink coroutines for cocotb testbenches of exported Verilog.

The Verilog twin of :mod:`intar_hw.testbench`: sources insert random idle cycles, sinks apply
random backpressure, both from a caller-owned :class:`random.Random`. A stream ``name`` of the
Amaranth component appears as ports ``{name}__valid``, ``{name}__ready``, ``{name}__payload``.
"""

import json
import os

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def parameters():
    """The test data the pytest side passed through ``INTAR_COCOTB_PARAMS``."""
    return json.loads(os.environ["INTAR_COCOTB_PARAMS"])


def _port(dut, stream, member):
    return getattr(dut, f"{stream}__{member}")


async def reset(dut, cycles=2):
    """Start a 10 ns clock on ``clk`` and hold ``rst`` high for ``cycles`` cycles."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def put(dut, stream, payloads, *, rng=None, idle=0.0):
    """Drive ``payloads`` (integers, the raw payload bits) into input ``stream`` in order."""
    valid, ready, data = (_port(dut, stream, m) for m in ("valid", "ready", "payload"))
    for payload in payloads:
        while rng is not None and rng.random() < idle:
            valid.value = 0
            await RisingEdge(dut.clk)
        data.value = payload
        valid.value = 1
        while True:
            await ReadOnly()
            taken = int(ready.value)
            await RisingEdge(dut.clk)
            if taken:
                break
    valid.value = 0


async def get(dut, stream, count, *, rng=None, backpressure=0.0):
    """Collect ``count`` raw payloads (unsigned integers) from output ``stream``."""
    valid, ready, data = (_port(dut, stream, m) for m in ("valid", "ready", "payload"))
    beats = []
    while len(beats) < count:
        accept = not (rng is not None and rng.random() < backpressure)
        ready.value = int(accept)
        await ReadOnly()
        if accept and int(valid.value):
            beats.append(int(data.value))
        await RisingEdge(dut.clk)
    ready.value = 0
    return beats
