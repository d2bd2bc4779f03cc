"""Which cells Yosys maps an on-chip memory to on ECP5, without running Yosys.

:func:`ecp5_memory` reproduces the choice ``synth_ecp5`` (Yosys 0.70, its ``memory_libmap``
pass) makes for one memory: flip-flops (``"logic"``), LUT RAM (``"distributed"``,
``TRELLIS_DPR16X4`` cells) or block RAM (``"block"``, ``DP16KD`` cells), and how many cells.
It is the pass's cost model (``passes/memory/memory_libmap.cc``) applied to the cell libraries
``share/lattice/lutrams_trellis.txt`` and ``share/lattice/brams_16kd.txt``, for the memories this
package builds: ports of one clock domain, no read port sharing an address with a write port,
no wide ports, no reset on read data.

The rule, per library cell and data width ``base`` of it, for a memory of ``width`` bits by
``depth`` words with ``R`` read ports and ``W`` (0 or 1) write ports of ``granules`` enables:

* ``S`` bits per word once every write-enable granule is padded to the cell's byte (9 bits for
  block RAM with a write port, else the cell width; 1 bit for a ROM);
* ``mult_a = ceil(depth / rows(base))`` cells deep, ``repl = ceil(mult_a * S / base)`` cells
  per copy, ``copies`` copies for the read ports (one per read port, two read ports per copy of
  a block-RAM ROM);
* cost ``= 128 (block) or 4 (LUT RAM) * repl * copies + (mult_a - 1) * width * R / 2 +
  (mult_a * granules * W / 2 if mult_a > 1) + 2 * emulation``, where ``emulation`` scores the
  soft logic the cell needs: 1 per read port, 3 per read port transparent to the write (or,
  for a non-transparent synchronous read of block RAM, 3 per read port and 3 for read-first
  emulation, since neither block RAM describes read-during-write of its other port);
* the cheapest width of each cell, then the cheapest of the flip-flop fallback (cost
  ``width * depth``, a sixteenth of that for a ROM), LUT RAM and block RAM, in this order,
  costs compared as Yosys does (truncated to integers). LUT RAM takes no ROM; block RAM takes
  no asynchronous read; neither takes two write ports.
"""

from collections import namedtuple

from amaranth.hdl import Fragment, Shape
from amaranth.lib import memory

from ..integers import cdiv


__all__ = ["MemoryMapping", "ecp5_memory", "ecp5_brams", "memory_brams", "design_brams"]


#: What a memory is mapped to: ``kind`` is ``"logic"``, ``"distributed"`` or ``"block"``;
#: ``cells`` counts the ``TRELLIS_DPR16X4`` or ``DP16KD`` cells (0 for logic).
MemoryMapping = namedtuple("MemoryMapping", ["kind", "cells"])


# The ECP5 cells, as the libraries describe them: (name, kind, address bits, widths, byte,
# cost, read port names, write port names (a shared group when equal), read port is
# synchronous, narrowest write width).
_Cell = namedtuple("_Cell", ["name", "kind", "abits", "widths", "byte", "cost", "read_names",
                             "write_names", "shared", "sync_read", "min_write"])

_CELLS = (
    _Cell("$__TRELLIS_DPR16X4_", "distributed", 4, (4,), 0, 4, 1, 1, False, False, 4),
    _Cell("$__DP16KD_", "block", 14, (1, 2, 4, 9, 18), 9, 128, 2, 2, True, True, 1),
    _Cell("$__PDPW16KD_", "block", 14, (1, 2, 4, 9, 18, 36), 9, 128, 1, 1, False, True, 36),
)

_FACTOR_MUX = _FACTOR_DEMUX = 0.5
_FACTOR_EMU = 2


def _check_count(name, value, least):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Memory {name} must be an integer, not {value!r}")
    if value < least:
        raise ValueError(f"Memory {name} must be at least {least}, not {value!r}")


def _copies(cell, read_ports, write_ports):
    """Copies of the cell array the read ports need, or ``None`` if the cell cannot hold the
    ports (each read port takes a port of its own: none shares a write port's address)."""
    if write_ports > cell.write_names:
        return None
    free = cell.read_names - (write_ports if cell.shared else 0)
    if free < 1:
        return None
    return cdiv(read_ports, free)


def _emulation(cell, read_ports, write_ports, sync, transparent):
    """Soft-logic score of the read ports on ``cell``: one per port, three per port whose
    read-during-write behaviour is emulated, three for read-first emulation."""
    score = read_ports
    if write_ports and sync and cell.sync_read:
        # Neither block RAM states what a read of one port sees while the other writes: a
        # transparent port is emulated, a non-transparent one is made transparent and the
        # write delayed (read-first emulation).
        score += 3 * read_ports + (0 if transparent else 3 * write_ports)
    elif write_ports and transparent:
        score += 3 * read_ports
    return score


def _cell_cost(cell, width, depth, read_ports, write_ports, granules, score, copies):
    """``(cost, cells)`` of the cheapest data width of ``cell`` for the memory (Yosys keeps a
    width only if it is cheaper than the best so far truncated to an integer)."""
    best = None
    for log2, base in enumerate(cell.widths):
        if write_ports and base < cell.min_write and base < cell.byte:
            continue
        byte = base if not cell.byte or cell.byte > base else cell.byte
        if not write_ports:
            byte = 1
        granule = width // granules
        bits = granules * cdiv(granule, byte) * byte
        mult_a = cdiv(depth, 1 << (cell.abits - log2))
        repl = cdiv(mult_a * bits, base)
        cost = cell.cost * repl * copies
        cost += (mult_a - 1) * width * read_ports * _FACTOR_MUX
        if mult_a > 1:
            cost += mult_a * granules * write_ports * _FACTOR_DEMUX
        cost += score * _FACTOR_EMU
        if best is None or cost < int(best[0]):
            best = (cost, repl * copies)
    return best


def ecp5_memory(width, depth, *, read_ports=1, write_ports=1, granules=1, sync_read=True,
                transparent=False):
    """The :class:`MemoryMapping` Yosys 0.70's ``synth_ecp5`` picks for one memory of ``depth``
    words of ``width`` bits (the module docstring states the rule).

    ``read_ports`` read ports, synchronous (``sync_read``) or asynchronous, ``transparent`` or
    not to the write port; ``write_ports`` write ports, each with ``granules`` write enables
    (equal parts of the word, ``granules`` dividing ``width``). All ports are in one clock
    domain. Raises :class:`TypeError` or :class:`ValueError` naming a bad argument.
    """
    _check_count("width", width, 1)
    _check_count("depth", depth, 1)
    _check_count("read_ports", read_ports, 1)
    _check_count("write_ports", write_ports, 0)
    _check_count("granules", granules, 1)
    if width % granules:
        raise ValueError(f"Memory granules must divide width {width}, not {granules!r}")
    logic = width * depth * (1 if write_ports else 1 / 16)
    best, choice = int(logic), MemoryMapping("logic", 0)
    for kind in ("distributed", "block"):
        kept = None
        for cell in _CELLS:
            copies = _copies(cell, read_ports, write_ports)
            if cell.kind != kind or copies is None or (kind == "distributed" and not write_ports):
                continue
            if cell.sync_read and not sync_read:
                continue
            score = _emulation(cell, read_ports, write_ports, sync_read, transparent)
            found = _cell_cost(cell, width, depth, read_ports, write_ports, granules, score,
                               copies)
            if found is not None and (kept is None or found[0] < kept[0]):
                kept = found
        if kept is not None and kept[0] < best:
            best, choice = int(kept[0]), MemoryMapping(kind, kept[1])
    return choice


def ecp5_brams(width, depth, **ports):
    """ECP5 block RAMs (DP16KD) Yosys uses for one memory: :func:`ecp5_memory`'s cells if it
    picks block RAM, else 0. Takes the same arguments."""
    mapping = ecp5_memory(width, depth, **ports)
    return mapping.cells if mapping.kind == "block" else 0


def memory_brams(mem):
    """:func:`ecp5_brams` of an :class:`amaranth.lib.memory.Memory` with its ports made: its
    width and depth, its read ports (asynchronous if any is, transparent if any is) and write
    ports (granules: the first port's enable bits)."""
    if not isinstance(mem, memory.Memory):
        raise TypeError(f"Memory must be an amaranth.lib.memory.Memory, not {mem!r}")
    reads, writes = mem.read_ports, mem.write_ports
    if not reads:
        return 0
    return ecp5_brams(Shape.cast(mem.shape).width, mem.depth, read_ports=len(reads),
                      write_ports=len(writes), granules=len(writes[0].en) if writes else 1,
                      sync_read=all(port.domain != "comb" for port in reads),
                      transparent=any(port.transparent_for for port in reads))


def _memories(fragment):
    """Every :class:`~amaranth.lib.memory.Memory` elaborated into ``fragment``'s hierarchy."""
    for origin in fragment.origins or ():
        if isinstance(origin, memory.Memory):
            yield origin
    for sub, _, _ in fragment.subfragments:
        yield from _memories(sub)


def design_brams(elaboratable):
    """ECP5 block RAMs (DP16KD) Yosys 0.70's ``synth_ecp5`` uses for ``elaboratable``: the sum
    of :func:`memory_brams` over every memory in it. Elaborates it (without a platform)."""
    return sum(memory_brams(mem) for mem in set(_memories(Fragment.get(elaboratable, None))))
