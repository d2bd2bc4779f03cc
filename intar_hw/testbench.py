"""Stream testbench helpers shared by every simulation of intar-hw blocks.

All helpers are ``async`` Amaranth 0.5 testbench coroutines taking the simulator context. Sources
insert random idle cycles and sinks apply random backpressure, drawn from a caller-owned
:class:`random.Random`, so every run is reproducible from its seed. With ``rng=None`` they move
one beat per cycle, which is how throughput is measured.
"""

import gc
import os
import random
import re
import sys

from amaranth import Module, Signal
from amaranth.sim import Simulator


__all__ = ["put", "get", "run", "seeded", "flow", "beats_per_cycle", "evaluate"]


#: Clock period used by :func:`run`, in seconds (100 MHz; only VCD timestamps depend on it).
CLOCK_PERIOD = 1e-8


def seeded(seed):
    """A :class:`random.Random` seeded with ``seed``, for stall patterns."""
    return random.Random(seed)


async def put(ctx, stream, payloads, *, rng=None, idle=0.0):
    """Send ``payloads`` in order into the sink-facing ``stream`` (the DUT's input).

    Before each beat, while ``rng.random() < idle``, ``valid`` is held low for a cycle. Once raised,
    ``valid`` and ``payload`` are held until the beat is taken, as the stream rules require.
    Returns when the last beat has been transferred, with ``valid`` low.
    """
    for payload in payloads:
        while rng is not None and rng.random() < idle:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def get(ctx, stream, count, *, rng=None, backpressure=0.0):
    """Receive ``count`` beats from the source-facing ``stream`` (the DUT's output).

    Each cycle ``ready`` is low with probability ``backpressure``. Returns the payloads in arrival
    order: plain ``int`` for plain shapes, :class:`amaranth.lib.data.Const` for layouts.
    """
    beats = []
    while len(beats) < count:
        ready = not (rng is not None and rng.random() < backpressure)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            beats.append(payload)
    ctx.set(stream.ready, 0)
    return beats


def run(dut, *testbenches, processes=(), deadline, vcd=None):
    """Simulate ``dut`` with a clock until every testbench returns; return the cycles taken.

    Parameters
    ----------
    dut : Elaboratable
        The design under test, clocked by the ``sync`` domain.
    *testbenches : async callables
        Testbench coroutines ``async def tb(ctx)``; the simulation ends when all have returned.
    processes : iterable of async callables
        Background processes (models of the DUT's environment) that run for as long as needed.
    deadline : int
        Watchdog in cycles: if the testbenches have not finished by then, :class:`TimeoutError`.
    vcd : str or None
        Name of a waveform file to write. Written only when the environment variable
        ``INTAR_VCD_DIR`` names a directory, so the default test run writes nothing.
    """
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    cycles = 0

    async def watchdog(ctx):
        nonlocal cycles
        while True:
            await ctx.tick()
            cycles += 1
            if cycles > deadline:
                raise TimeoutError(f"Simulation did not finish within {deadline} cycles")

    sim.add_process(watchdog)
    for process in processes:
        sim.add_process(process)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    vcd_dir = os.environ.get("INTAR_VCD_DIR")
    try:
        if vcd is not None and vcd_dir:
            name = re.sub(r"[^\w.-]", "_", vcd)
            with sim.write_vcd(os.path.join(vcd_dir, name)):
                sim.run()
        else:
            sim.run()
    except TimeoutError as error:
        message = str(error)
    else:
        return cycles
    # The testbenches the watchdog cut short are still suspended inside the simulator. Finalise
    # them now, with their shutdown noise silenced, so that what the caller sees is the timeout.
    del sim, testbenches, processes
    _collect_quietly()
    raise TimeoutError(message)


def _collect_quietly():
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


def flow(dut, payloads, count, *, source="i", sink="o"):
    """Stream ``payloads`` through ``dut`` at full rate; return when beats moved on each side.

    The source offers a beat every cycle and the sink is always ready, so what this measures is
    the DUT's own throughput. ``count`` beats are expected on ``sink``. Returns two lists of the
    cycle numbers at which a beat was transferred: ``(taken on source, given on sink)``.
    """
    i, o = getattr(dut, source), getattr(dut, sink)
    taken, given = [], []

    async def drive(ctx):
        await put(ctx, i, payloads)

    async def drain(ctx):
        await get(ctx, o, count)

    async def monitor(ctx):
        cycle = 0
        async for _, _, i_valid, i_ready, o_valid, o_ready in ctx.tick().sample(
                i.valid, i.ready, o.valid, o.ready):
            if i_valid and i_ready:
                taken.append(cycle)
            if o_valid and o_ready:
                given.append(cycle)
            cycle += 1

    run(dut, drive, drain, processes=[monitor], deadline=10 * (len(payloads) + count) + 100)
    return taken, given


def beats_per_cycle(cycles):
    """Throughput of a list of transfer cycles from :func:`flow`: beats over the cycles spanned."""
    if len(cycles) < 2:
        raise ValueError(f"Throughput needs at least two transfers, not {len(cycles)}")
    return (len(cycles) - 1) / (cycles[-1] - cycles[0])


def evaluate(expression, operand, values):
    """The values a combinational ``expression`` of the signal ``operand`` takes for each of
    ``values`` (plain ints), in order: a table of a function built in logic, for comparing with
    its reference exactly."""
    m = Module()
    out = Signal.like(expression)
    m.d.comb += out.eq(expression)
    seen = []

    async def bench(ctx):
        for value in values:
            ctx.set(operand, value)
            seen.append(ctx.get(out))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return seen
