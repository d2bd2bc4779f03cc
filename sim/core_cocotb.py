"""A cocotb check of a :class:`~intar_hw.hw.core.ComputingCore`'s Verilog: load, run, read back.

The pytest side (``sim/test_core_verilog.py``) passes, as JSON:

``drive``
    Every input port and its value before reset (all 0).
``loads``
    Memory name to the raw ``<name>_write`` beats (``addr`` and word) that fill it; the memories
    are loaded concurrently, each with random idles.
``stages``, ``expected_cycles``
    The programs to run one after another, and the cycles each must take from the cycle
    ``start`` is high in (cycle 0) to the cycle ``done`` is high in. ``busy`` must be high
    throughout and both low the cycle after ``done``.
``poke``
    Optional stage number: two cycles into the first run, ``start`` is raised for a cycle with
    ``stage`` changed to it; a busy core must ignore it.
``expected_words``
    The raw words of the whole ``results`` memory afterwards, read through ``results_read``
    with random idles and backpressure.
``seed``, ``idle``, ``backpressure``
    The stall pattern.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge, gather, with_timeout

from cocotb_streams import get, mismatch, parameters, put, reset, sample


async def run_stage(dut, stage, expected, poke=None):
    """Start ``stage``; return the cycle ``done`` is high in, counting the start cycle as 0."""
    dut.stage.value = stage
    await RisingEdge(dut.clk)          # the core samples its program the cycle before the start
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    count = 1
    while True:
        if poke is not None and count == 2:
            dut.stage.value = poke
            dut.start.value = 1
        elif poke is not None and count == 3:
            dut.start.value = 0
        await ReadOnly()
        if sample(dut.done):
            break
        assert sample(dut.busy) == 1, f"busy low in cycle {count} of stage {stage}"
        assert count < 4 * expected + 100, f"stage {stage} not done after {count} cycles"
        await RisingEdge(dut.clk)
        count += 1
    await RisingEdge(dut.clk)
    await ReadOnly()
    assert sample(dut.busy) == 0 and sample(dut.done) == 0, \
        f"busy or done high the cycle after stage {stage} was done"
    await RisingEdge(dut.clk)
    return count


@cocotb.test()
async def core_matches_reference(dut):
    params = parameters()
    seed, idle, backpressure = params["seed"], params["idle"], params["backpressure"]
    for name, value in params["drive"].items():
        getattr(dut, name).value = value
    await reset(dut)

    loads = params["loads"]
    await with_timeout(
        gather(*(put(dut, f"{name}_write", beats, rng=random.Random(f"{seed}:{name}"), idle=idle)
                 for name, beats in loads.items())),
        10 * (20 * max(map(len, loads.values()), default=0) + 100), "ns")

    cycles = []
    for number, (stage, expected) in enumerate(zip(params["stages"],
                                                   params["expected_cycles"])):
        poke = params.get("poke") if number == 0 else None
        cycles.append(await run_stage(dut, stage, expected, poke))

    depth = len(params["expected_words"])
    _, words = await with_timeout(
        gather(put(dut, "results_read__req", list(range(depth)),
                   rng=random.Random(f"{seed}:req"), idle=idle),
               get(dut, "results_read__resp", depth, rng=random.Random(f"{seed}:resp"),
                   backpressure=backpressure)),
        10 * (40 * depth + 100), "ns")
    problem = mismatch("results", words, params["expected_words"])
    assert problem is None, problem
    assert cycles == params["expected_cycles"], \
        f"start to done took {cycles} cycles, expected {params['expected_cycles']}"
