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


# --- helpers for several streams, plain ports and per-cycle records ------------------------------

def sample(handle):
    """The value of ``handle`` as an unsigned integer, or ``None`` if any bit is X or Z."""
    value = handle.value
    return int(value) if value.is_resolvable else None


def stream_ports(dut, stream):
    """The ``(valid, ready, payload)`` handles of ``stream``."""
    return tuple(_port(dut, stream, m) for m in ("valid", "ready", "payload"))


def quiesce(dut, inputs=(), outputs=()):
    """Drive ``valid`` low on every input stream and ``ready`` low on every output stream.

    Call before :func:`reset`, so no port of a stream used only later floats at Z (X in logic).
    """
    for stream in inputs:
        _port(dut, stream, "valid").value = 0
        _port(dut, stream, "payload").value = 0
    for stream in outputs:
        _port(dut, stream, "ready").value = 0


async def pulse(dut, values):
    """Drive the plain input ports ``values`` (name to integer) for one cycle, then 0."""
    for name, value in values.items():
        getattr(dut, name).value = value
    await RisingEdge(dut.clk)
    for name in values:
        getattr(dut, name).value = 0


async def idle_cycles(dut, rng, idle):
    """Wait one cycle at a time while ``rng.random() < idle``."""
    while rng is not None and rng.random() < idle:
        await RisingEdge(dut.clk)


async def stays_invalid(dut, streams, cycles):
    """With ``ready`` high, ``valid`` of every output stream in ``streams`` stays low for
    ``cycles`` cycles: no beat is duplicated or left over."""
    for stream in streams:
        _port(dut, stream, "ready").value = 1
    for cycle in range(cycles):
        await ReadOnly()
        for stream in streams:
            assert sample(_port(dut, stream, "valid")) == 0, \
                f"{stream} gave a beat {cycle} cycles after the expected ones"
        await RisingEdge(dut.clk)
    for stream in streams:
        _port(dut, stream, "ready").value = 0


async def record(dut, streams, log):
    """Append, every cycle, ``{stream: [valid, ready, payload]}`` (``None`` for X) to ``log``.

    The values are those at the rising edge that ends the cycle: a transfer is valid and ready.
    Runs until cancelled.
    """
    handles = {stream: stream_ports(dut, stream) for stream in streams}
    while True:
        await ReadOnly()
        log.append({stream: [sample(h) for h in ports] for stream, ports in handles.items()})
        await RisingEdge(dut.clk)


def mismatch(name, received, expected):
    """An assertion message naming the first beat of ``name`` that differs, or ``None``."""
    if received == expected:
        return None
    if len(received) != len(expected):
        return f"{name}: {len(received)} beats, expected {len(expected)}"
    index = next(n for n, (r, e) in enumerate(zip(received, expected)) if r != e)
    return (f"{name}: beat {index} of {len(expected)} is {received[index]:#x}, "
            f"expected {expected[index]:#x}")
