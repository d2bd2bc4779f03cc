"""Small register, counter and memory idioms shared by the hardware blocks."""

from amaranth import *
from amaranth.lib import memory

from ..integers import cdiv


__all__ = ["wrap_increment", "stage", "bank_ring", "read_copies"]


def wrap_increment(value, count):
    """``value + 1`` modulo ``count``."""
    return Mux(value == count - 1, 0, value + 1)


def stage(m, enable, name, values):
    """Registers loaded from ``values`` (a dict of values) on cycles when ``enable`` is high."""
    regs = {}
    for key, value in values.items():
        value = Value.cast(value)
        reg = Signal(value.shape(), name=f"{name}_{key}")
        with m.If(enable):
            m.d.sync += reg.eq(value)
        regs[key] = reg
    return regs


def read_copies(m, name, count, *, shape, depth, init=()):
    """``count`` synchronous read ports (latency 1) on copies of one memory, two ports a copy
    (submodules ``<name>_0``, ``<name>_1``, ...; ports ``2i`` and ``2i + 1`` share copy ``i``).
    Returns ``(copies, ports)``; a memory that is written needs its writes on every copy.

    A device's block RAM reads on at most its two ports, so a memory read on every lane is
    built once per two lanes; that is what synthesis would make of one memory with a port per
    lane, without Yosys searching port assignments for a many-port memory (it runs out of
    memory past about ten ports).
    """
    copies, ports = [], []
    for copy in range(cdiv(count, 2)):
        mem = memory.Memory(shape=shape, depth=depth, init=init)
        m.submodules[f"{name}_{copy}"] = mem
        copies.append(mem)
        ports += [mem.read_port() for _ in range(min(2, count - 2 * copy))]
    return copies, ports


def bank_ring(m, names, banks):
    """Token passing for ``banks`` row buffers visited by the pipeline stages ``names`` in turn.

    A bank goes from stage to stage in the order of ``names`` and back to the first. Stage ``s``
    may start on a bank while ``tokens[s]`` is non-zero; it raises ``take[s]`` when it claims one,
    ``give[s]`` when it hands its bank to the next stage, and ``step[s]`` to advance its bank
    pointer ``ptr[s]``. The first stage starts with every token. Returns the five dicts
    ``(tokens, take, give, ptr, step)``, keyed by stage name.
    """
    tokens = {s: Signal(range(banks + 1), name=f"{s}_tokens",
                        init=banks if s == names[0] else 0) for s in names}
    take = {s: Signal(name=f"{s}_take") for s in names}
    give = {s: Signal(name=f"{s}_give") for s in names}
    for s, previous in zip(names, names[-1:] + names[:-1]):
        m.d.sync += tokens[s].eq(tokens[s] + give[previous] - take[s])
    ptr = {s: Signal(range(banks), name=f"{s}_bank") for s in names}
    step = {s: Signal(name=f"{s}_step") for s in names}
    for s in names:
        with m.If(step[s]):
            m.d.sync += ptr[s].eq(wrap_increment(ptr[s], banks))
    return tokens, take, give, ptr, step
