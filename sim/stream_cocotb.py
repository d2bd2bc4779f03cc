"""A generic cocotb check: raw input beats in, expected raw output beats out, under stalls.

The pytest side (see :func:`intar_hw.flow.cocotb_runner.run_cocotb`) passes ``beats`` (payload
bit patterns for stream ``i``), ``expected`` (bit patterns expected on stream ``o``) and a
``seed``. Any component with one input stream ``i`` and one output stream ``o`` can be checked
this way against a numpy reference computed in Python.
"""

import random

import cocotb
from cocotb.triggers import with_timeout

from cocotb_streams import get, parameters, put, reset


@cocotb.test()
async def stream_matches_reference(dut):
    params = parameters()
    await reset(dut)
    rng_source, rng_sink = random.Random(params["seed"]), random.Random(params["seed"] + 1)
    source = cocotb.start_soon(put(dut, "i", params["beats"], rng=rng_source, idle=0.3))
    received = await with_timeout(
        get(dut, "o", len(params["expected"]), rng=rng_sink, backpressure=0.4),
        100 * (len(params["beats"]) + len(params["expected"])), "ns")
    await source
    assert received == params["expected"]
