"""A generic cocotb check of any number of streams, in phases, under random idles and stalls.

The pytest side (see ``sim/vectors.py`` and :func:`intar_hw.flow.cocotb_runner.run_cocotb`)
passes, as JSON:

``phases``
    A list of phases run one after another. Each phase may hold ``set`` (plain input ports to
    drive from the start of the phase, name to integer), ``pulse`` (plain input ports raised for
    one cycle after random idle cycles, e.g. a ``start``), ``inputs`` (stream name to the raw
    payload bits of its beats), ``outputs`` (stream name to the raw payload bits expected, or to
    a count of beats only to collect) and ``quiet`` (cycles the phase's output streams must stay
    invalid afterwards: nothing duplicated or left over). A phase ends when every input beat has
    been taken and every output beat received, so a later phase sees the effects of an earlier.
``seed``, ``idle``, ``backpressure``
    Every input stream draws its idle cycles, every output stream its backpressure, from its own
    :class:`random.Random` seeded from ``seed`` and the stream's name.
``drive``
    Input ports and their values before reset (``sim/vectors.py`` drives every input 0, so no
    port a phase does not use floats at Z).
``cycles_per_beat``
    The timeout of a phase: this many cycles per beat moved, plus 200.
``record``
    Optional ``{"path": ..., "streams": [...]}``: write, as JSON to ``path``, the per-cycle
    ``[valid, ready, payload]`` of each named stream (``"cycles"``) and the beats received per
    phase (``"received"``), for a reference that depends on the order of transfers.
"""

import json
import random

import cocotb
from cocotb.triggers import RisingEdge, gather, with_timeout

from cocotb_streams import (get, idle_cycles, mismatch, parameters, pulse, put, quiesce, record,
                            reset, stays_invalid)


def _phases(params):
    return params.get("phases") or [{key: params[key] for key in
                                     ("set", "pulse", "inputs", "outputs", "quiet")
                                     if key in params}]


@cocotb.test()
async def streams_match_reference(dut):
    params = parameters()
    phases = _phases(params)
    seed = params["seed"]
    idle, backpressure = params.get("idle", 0.3), params.get("backpressure", 0.5)
    inputs = {name for phase in phases for name in phase.get("inputs", {})}
    outputs = {name for phase in phases for name in phase.get("outputs", {})}
    rngs = {name: random.Random(f"{seed}:{name}") for name in sorted(inputs | outputs)}
    pulse_rng = random.Random(f"{seed}:pulse")

    quiesce(dut, sorted(inputs), sorted(outputs))
    for name, value in params.get("drive", {}).items():
        getattr(dut, name).value = value
    await reset(dut)

    log, received = [], []
    monitor = None
    if "record" in params:
        monitor = cocotb.start_soon(record(dut, params["record"]["streams"], log))
    try:
        for number, phase in enumerate(phases):
            for name, value in phase.get("set", {}).items():
                getattr(dut, name).value = value
            wanted = {name: beats if isinstance(beats, int) else len(beats)
                      for name, beats in phase.get("outputs", {}).items()}
            sinks = [get(dut, name, count, rng=rngs[name], backpressure=backpressure)
                     for name, count in wanted.items()]

            async def drive(phase=phase):
                if phase.get("pulse"):
                    await idle_cycles(dut, pulse_rng, idle)
                    await pulse(dut, phase["pulse"])
                await gather(*(put(dut, name, beats, rng=rngs[name], idle=idle)
                               for name, beats in phase.get("inputs", {}).items()))

            moved = sum(map(len, phase.get("inputs", {}).values())) + sum(wanted.values())
            timeout = params.get("cycles_per_beat", 40) * moved + 200
            results = await with_timeout(gather(drive(), *sinks), 10 * timeout, "ns")
            beats = dict(zip(wanted, results[1:]))
            received.append(beats)
            problems = [mismatch(f"phase {number} {name}", beats[name], expected)
                        for name, expected in phase.get("outputs", {}).items()
                        if not isinstance(expected, int)]
            problems = [p for p in problems if p is not None]
            assert not problems, "; ".join(problems)
            if phase.get("quiet"):
                await stays_invalid(dut, sorted(wanted), phase["quiet"])
            else:
                await RisingEdge(dut.clk)
    finally:
        if monitor is not None:
            monitor.cancel()
            with open(params["record"]["path"], "w") as file:
                json.dump({"cycles": log, "received": received}, file)
