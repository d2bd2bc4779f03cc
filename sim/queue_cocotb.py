"""cocotb checks of the exported Verilog of `Queue`: order kept under stalls, throughput."""

import random

import cocotb
from cocotb.triggers import with_timeout

from cocotb_streams import get, parameters, put, reset


@cocotb.test()
async def order_under_stalls(dut):
    params = parameters()
    beats = params["beats"]
    await reset(dut)
    rng_source, rng_sink = random.Random(params["seed"]), random.Random(params["seed"] + 1)
    source = cocotb.start_soon(put(dut, "i", beats, rng=rng_source, idle=0.3))
    received = await with_timeout(get(dut, "o", len(beats), rng=rng_sink, backpressure=0.5),
                                  100 * len(beats), "ns")
    await source
    assert received == beats
