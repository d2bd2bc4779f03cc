"""Run a built accelerator on data: load inputs and parameters, start it, read its outputs.

``simulate(acc, inputs, params)`` takes an :class:`~intar_hw.compose.Accelerator` (from
:func:`intar_hw.build`) and the arrays :func:`intar_hw.reference` takes, and returns a
:class:`SimResult` whose ``outputs`` must equal the golden model's and whose ``cycles`` are
measured from the cycle ``start`` is honoured to the cycle of ``done``. An accelerator that
streams from off-chip runs against an :class:`~intar_hw.hw.offchip.OffchipPort` with the
budget's bandwidth and latency, preloaded with the data
(:meth:`~intar_hw.compose.layout.Plan.offchip_image`); one built with ``offchip=False`` has its
memories loaded through its host ports first (not counted in ``cycles``).
"""

import time
from dataclasses import dataclass, field

import numpy as np
from amaranth import Elaboratable, Module, unsigned
from amaranth.lib import wiring
from amaranth.sim import Simulator

from .compose.accelerator import MAX_BURST, Accelerator
from .hw.offchip import OffchipPort, read_back
from .testbench import CLOCK_PERIOD
from .progress import Progress


__all__ = ["BACKENDS", "SimResult", "simulate"]


#: Simulation back-ends: Amaranth's Python simulator, Verilator on the exported Verilog.
BACKENDS = ("amaranth", "verilator")


@dataclass
class SimResult:
    """What a simulation measured.

    Attributes
    ----------
    outputs : dict of str to numpy.ndarray
        Every graph output by name, in its tensor's shape and format dtype: read from the
        off-chip memory after the run (from the result memories for ``offchip=False``).
    cycles : int
        Cycles from the one ``start`` is honoured in (0) to the one ``done`` is high in.
    predicted_cycles : int
        The schedule's prediction (:attr:`~intar_hw.schedule.Schedule.cycles`), off-chip
        transfers included.
    onchip_cycles : int
        The schedule's prediction without its off-chip terms, which the accelerator's
        host-loaded memories do not spend (:func:`intar_hw.compose.layout.onchip_cycles`).
    backend : str
    macs : int
        Useful multiply-accumulates of the schedule.
    pes : int
        MACs per cycle of the schedule's budget (``resources.macs_per_cycle``), the divisor of
        :attr:`utilisation`, as in :attr:`~intar_hw.schedule.Schedule.utilisation`.
    seconds : float
        Wall time of the simulation (loading and reading back included).
    """
    outputs: dict
    cycles: int
    predicted_cycles: int
    onchip_cycles: int
    backend: str
    macs: int
    pes: int
    seconds: float = field(default=0.0)

    @property
    def utilisation(self):
        """``macs / (cycles * pes)``: useful MACs over what the budget's PEs could do in the
        simulated cycles."""
        return self.macs / (max(self.cycles, 1) * self.pes)


class _Board(Elaboratable):
    """The accelerator with its off-chip memory (an :class:`OffchipPort` model)."""

    def __init__(self, acc, memory):
        self.acc = acc
        self.memory = memory

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = self.acc
        m.submodules.offchip = self.memory
        wiring.connect(m, self.acc.offchip_read_req, self.memory.read_req)
        wiring.connect(m, self.memory.read_data, self.acc.offchip_read_data)
        wiring.connect(m, self.acc.offchip_write, self.memory.write)
        return m


def offchip_memory(acc, inputs=None, params=None):
    """The :class:`OffchipPort` modelling ``acc``'s off-chip memory, of ``acc.offchip_words``
    words (at least 2), holding the image of ``inputs`` and ``params``
    (:meth:`~intar_hw.compose.layout.Plan.offchip_image`), or empty without them (a board's
    memory, loaded by its host).

    Its bandwidth and latency are the schedule's budget's (a latency below the port's minimum of
    2 cycles is raised to 2), so the accelerator sees the timing its schedule assumed.
    """
    resources = acc.schedule.resources
    image = () if inputs is None else acc.plan.offchip_image(inputs, params, acc.bus_bytes)
    return OffchipPort(unsigned(8 * acc.bus_bytes), max(2, acc.offchip_words),
                       bandwidth=resources.offchip_bytes_per_cycle,
                       latency=max(2, resources.offchip_latency), max_burst=MAX_BURST,
                       init=image)


def simulate(acc, inputs, params, backend="amaranth", vcd=None, progress=False):
    """Run ``acc`` on ``inputs`` and ``params``; return a :class:`SimResult`.

    Parameters
    ----------
    acc : Accelerator
    inputs, params : dict of str to array
        As :func:`intar_hw.reference` takes them: every graph input and parameter by name.
    backend : str
        ``"amaranth"`` (Amaranth's Python simulator) or ``"verilator"`` (the exported Verilog
        under Verilator, for accelerators built with ``offchip=True``: same outputs and cycles;
        see :mod:`intar_hw.flow.verilator`).
    vcd : str or None
        Path of a waveform file to write (``"amaranth"`` only).
    progress : bool
        Show the cycles simulated against the prediction (or the Verilator build) on standard
        error while the simulation runs, if that is a terminal (:mod:`intar_hw.progress`).

    Raises
    ------
    TypeError
        If ``acc`` is not an Accelerator or an array does not hold integers.
    ValueError
        For an unknown back-end, or a missing, unknown, misshapen or out-of-range input or
        parameter.
    RuntimeError
        If Verilator, or what it needs to build, is missing, or its build fails.
    TimeoutError
        If the accelerator is not done within four times its predicted cycles (plus 1000).
    """
    if not isinstance(acc, Accelerator):
        raise TypeError(f"Accelerator must be an Accelerator from build(), not {acc!r}")
    if not isinstance(backend, str):
        raise TypeError(f"Backend must be a string, not {backend!r}")
    if backend not in BACKENDS:
        raise ValueError(f"Backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "verilator":
        from .flow.verilator import find_verilator, run_verilator
        if not acc.offchip:
            raise ValueError("The verilator backend runs only accelerators built with "
                             "offchip=True")
        if vcd is not None:
            raise ValueError("Only the amaranth backend writes VCD waveforms")
        find_verilator()        # fail before the memory model is built
    plan, graph = acc.plan, acc.graph
    inputs = {k: v.astype(np.int64) for k, v in graph.checked_inputs(inputs).items()}
    params = {k: v.astype(np.int64) for k, v in graph.checked_parameters(params).items()}
    images = {} if acc.offchip else plan.images(inputs, params)
    reads = [] if acc.offchip else [t for parts in plan.output_locations().values()
                                    for t in parts]
    memory = offchip_memory(acc, inputs, params) if acc.offchip else None
    measured = {}
    results = {c: {} for c in plan.cores}
    # A watchdog: four times the prediction, and then some.
    limit = 4 * max(acc.predicted_cycles, acc.onchip_cycles) + 1000
    status = Progress("simulate", acc.predicted_cycles if acc.offchip else acc.onchip_cycles,
                      "cycles", enabled=progress)

    async def bench(ctx):
        # Load every memory through its host port, one word per cycle.
        for c, memories in images.items():
            for name, words in memories.items():
                port = getattr(acc, f"core{c}_{name}_write")
                ctx.set(port.valid, 1)
                for addr, word in enumerate(words):
                    ctx.set(port.payload, {"addr": addr, "data": word})
                    await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)
        ctx.set(acc.start, 1)
        await ctx.tick()
        ctx.set(acc.start, 0)
        cycles = 1
        while not ctx.get(acc.done):
            if cycles > limit:
                raise TimeoutError(f"The accelerator did not finish within {limit} cycles")
            await ctx.tick()
            cycles += 1
            if not cycles % 64:
                status.update(cycles)
        measured["cycles"] = cycles
        await ctx.tick()
        if memory is not None:
            measured["offchip"] = [int(w) for w in read_back(ctx, memory)]
        for t in reads:
            port = getattr(acc, f"core{t.core}_results_read")
            ctx.set(port.resp.ready, 1)
            for addr in t.gemm.host_addresses():
                ctx.set(port.req.valid, 1)
                ctx.set(port.req.payload.addr, addr)
                await ctx.tick().until(port.req.ready)
                ctx.set(port.req.valid, 0)
                response, = await ctx.tick().sample(port.resp.payload).until(port.resp.valid)
                results[t.core][addr] = [int(v) for v in response.data]
            ctx.set(port.resp.ready, 0)

    if backend == "verilator":
        with status:
            words, cycles, seconds = run_verilator(acc, memory, limit, status)
        return SimResult(
            outputs=plan.outputs_from_offchip(words, acc.bus_bytes, acc.output_base),
            cycles=cycles, predicted_cycles=plan.schedule.cycles,
            onchip_cycles=acc.onchip_cycles, backend=backend, macs=plan.schedule.macs,
            pes=plan.schedule.resources.macs_per_cycle, seconds=seconds)
    sim = Simulator(_Board(acc, memory) if acc.offchip else acc)
    sim.add_clock(CLOCK_PERIOD)
    sim.add_testbench(bench)
    began = time.perf_counter()
    with status:
        if vcd is not None:
            with sim.write_vcd(vcd):
                sim.run()
        else:
            sim.run()
    seconds = time.perf_counter() - began
    words = {}
    for c, found in results.items():
        depth = max(found, default=-1) + 1
        words[c] = [found.get(a, [0] * plan.programs[c][0].pea[1]) for a in range(depth)]
    schedule = plan.schedule
    if acc.offchip:
        outputs = plan.outputs_from_offchip(measured["offchip"], acc.bus_bytes, acc.output_base)
    else:
        outputs = plan.outputs(words)
    return SimResult(
        outputs=outputs, cycles=measured["cycles"],
        predicted_cycles=schedule.cycles, onchip_cycles=acc.onchip_cycles, backend=backend,
        macs=schedule.macs, pes=schedule.resources.macs_per_cycle, seconds=seconds)
