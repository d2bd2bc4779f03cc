"""The computing core: scratchpads, operand fetch, PE array and result path, per-stage programs."""

from collections.abc import Iterable, Mapping

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..checks import check_bool
from ..mac_array import OPERAND_WIDTHS, MACArray, accumulator_width
from ..memory_map import design_brams
from ..scratchpad import ReadPortSignature, Scratchpad, WriteRequest, _word_fits
from ..pipe import RegisterSlice
from .operand_fetch import (OperandFetch, operand_word, result_ports, window_entries,
                            reads_peer_window, window_sources)
from .program import (BIAS_FORMAT, MEMORIES, GemmProgram, Source, memory_lanes, memory_words,
                      result_bits)
from .result_path import ResultPath, result_multipliers
from .window_read import WindowReader


__all__ = ["ComputingCore", "result_word", "live_pes", "array_multipliers", "core_multipliers"]


def result_word(programs):
    """Word shape of the result (and side) memory of a core running ``programs``: ``slots``
    slots of ``d2`` lanes of :func:`.program.result_bits` bits."""
    return data.ArrayLayout(signed(result_bits(programs)),
                            programs[0].slots * programs[0].pea[1])


def _fan_out(m, source, sinks):
    """Drive a write stream into every sink; it moves when all take it (a write port is always
    ready with one writer, so none waits)."""
    for sink in sinks:
        m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload)]
    m.d.comb += source.ready.eq(Cat(*(sink.ready for sink in sinks)).all())


def live_pes(programs):
    """``(rows, cols, depth)`` of the PE array the tiles of some program reach: rows, columns
    and depth past every program's operands only ever multiply padding, so the array does not
    build them."""
    d1, d2, d3 = programs[0].pea
    return (max(min(d1, p.p_rows) for p in programs),
            max(min(d2, p.q_rows) for p in programs),
            max(min(d3, p.K) for p in programs))


def array_multipliers(programs):
    """Multipliers the MAC array of a core running ``programs`` builds: one per live PE."""
    rows, cols, depth = live_pes(programs)
    return rows * cols * depth


def core_multipliers(programs):
    """Multipliers (DSP blocks on an FPGA) a core running ``programs`` builds: its MAC array's
    and its result path's special-function units' (:func:`.result_path.result_multipliers`)."""
    return array_multipliers(programs) + result_multipliers(programs)


class ComputingCore(wiring.Component):
    """A PE array with its memories, running one :class:`~.program.GemmProgram` per stage.

    The programs are unrolled into constants: ``stage`` selects one, ``start`` runs it, and
    ``done`` marks the cycle its last result is written. Per program the core computes
    ``R = epilogue(A @ B^T + bias)`` exactly as :mod:`intar_hw.schedule.cost` describes: tiles
    of ``d1 x d2`` outputs, each ``ceil(K / d3)`` beats deep, one beat per cycle; a finished tile
    drains one PE row per cycle while the next accumulates (:class:`.OperandFetch`,
    :class:`~intar_hw.hw.mac_array.MACArray`, :class:`.ResultPath`).

    Memories (each a :class:`~intar_hw.hw.scratchpad.Scratchpad`, built only if some program
    uses it; layouts in :mod:`.program`):

    - ``activations``, ``weights``: operands; words of ``lanes`` ``d3``-vectors
      (:func:`.program.memory_lanes`). The core reads them on port 0; the host writes them
      through ``<name>_write``.
    - ``biases``: int32 words of ``d2`` lanes; host writes through ``biases_write``.
    - ``results``: words of ``slots`` slots of ``d2`` lanes of the widest result format; the
      core writes them, the host reads them through ``results_read``. Programs may read their
      ``A``, ``B`` or join operand from here (:attr:`.program.Source.RESULTS`); each such reader
      gets a read port, and the host must not read during a run. Peers read it through
      ``results_share<i>``; when several readers share it, all but the first read replicas
      written with every result word, so no reader ever waits on another.

    The core's accesses never wait for the host's: each memory has one reader and one writer.

    Parameters
    ----------
    programs : tuple of GemmProgram
        One per stage the core takes part in, all on the same PE array.
    operand_width : int
        Bits of the signed operand elements: 4, 8 (the default) or 16.
    depths : mapping of str to int, optional
        Words of each memory, by name; by default what the programs use
        (:func:`.program.memory_words`), at least 2.
    init : mapping of str to iterable, optional
        Initial words of memories, by name (e.g. from :func:`.program.memory_images`).
    peer, b_peer : (int, int) or None
        ``(addr_width, lanes)`` (lanes of all slots) of the peer result memory that programs
        reading ``A`` (``peer``) or ``B`` (``b_peer``) from :attr:`.program.Source.PEER` read,
        through ``peer_read`` / ``b_peer_read``; reads wait until their address is below
        ``peer_level`` / ``b_peer_level``.
    join_peer : (int, int, int) or None
        ``(addr_width, lanes, bits)`` of the peer result memory joins read from
        :attr:`.program.Source.PEER`, through ``join_read`` (gated by ``join_level``).
    shares : int
        Read ports on the result memory for peers (``results_share<i>``), default 0.
    window_peer : (data.ArrayLayout, int, int) or None
        ``(shape, depth, slots)`` of the peer result memory that convolutions read windows of
        (:attr:`.program.Source.PEER` with ``a.window``): the core's window reader keeps a copy
        of it from ``window_peer_write`` (the peer's ``results_mirror``), each read waiting until
        its word is below ``window_peer_level``.
    mirrored : bool
        Export the result memory's writes as ``results_mirror`` (for a peer's window reader).
    gated : bool
        Whether the operand memories are filled while the core runs (by a loader streaming
        them from off-chip, in increasing address order): the core then reads a word of
        ``activations`` or ``weights`` only once its address is below that memory's
        ``<name>_level``, stalling until then (``biases`` and ``sides`` likewise). Default
        ``False``.

    Members
    -------
    start : In(1)
        Starts program ``stage``; honoured when ``busy`` is low and ``stage`` names a program.
    stage : In(range(len(programs)))
        The program to run, sampled the cycle before ``start``: it must be set at least a
        cycle before it.
    clear : In(1)
        Forget the run: ``results_level`` is 0 from the next cycle (the accelerator raises it
        after each run, so a peer starting the next run's first stage never reads this run's
        results; starting program 0 clears it too, a cycle later).
    busy : Out(1)
        High from the cycle after an honoured ``start`` to the cycle of ``done``, included.
    done : Out(1)
        High for one cycle: the cycle the last result word of the program is written; every
        result is readable from the next cycle.
    activations_write, weights_write, biases_write, sides_write : In(stream.Signature(...))
        Host writes (``WriteRequest``) to the operand, bias and side memories (those that
        exist); the side memory (joins from :attr:`.program.Source.SIDES`) has the result
        memory's word shape.
    activations_level, weights_level, biases_level, sides_level : In(range(depth + 1))
        With ``gated``: words below this address are valid (those memories that exist).
    peer_read, b_peer_read, join_read : Out(ReadPortSignature(...))
        With ``peer``, ``b_peer``, ``join_peer``: reads of a peer's result memory.
    peer_level, b_peer_level, join_level : In(range(2 ** addr_width + 1))
        With them: that peer's ``results_level``.
    results_share<i> : In(ReadPortSignature(...))
        With ``shares``: a peer's reads of the result memory.
    results_mirror : Out(stream.Signature(WriteRequest(...)))
        With ``mirrored``: every write of the result memory (it never waits for ``ready``).
    window_peer_write : In(stream.Signature(WriteRequest(...)))
        With ``window_peer``: the peer's result writes.
    window_peer_level : In(range(depth + 1))
        With ``window_peer``: the peer's ``results_level``.
    results_level : Out(range(depth + 1))
        One past the last result word that holds its final value (see
        :class:`.ResultPath`'s ``settled_level``): words are settled in increasing address order
        within a run of the programs; 0 again when program 0 starts.
    results_read : In(ReadPortSignature(...))
        Host reads from the result memory: address ``word << ceil_log2(slots) | slot``, a
        response of that slot's ``d2`` lanes (:meth:`.GemmProgram.host_address`).

    Attributes
    ----------
    pea : (int, int, int)
        The PE array.
    cycles : tuple of int
        Per program, cycles from the one ``start`` is honoured in (cycle 0) to the one ``done``
        is high in: :attr:`.GemmProgram.cycles` (``timing.core_cycles(...) + ARRAY_LATENCY``, plus
        the bias and SFU latencies; a softmax stretches it).
    lanes : dict of str to int
        Word width, in ``d3``-vectors, of each operand memory.
    depths : dict of str to int
        Words of each memory.
    shapes : dict of str to shape
        Word shape of each memory.
    accumulator_width : int
        Width of the PE array's accumulators (exact for the longest reduction).

    Raises
    ------
    TypeError
        If ``programs`` is not a tuple of :class:`GemmProgram`, ``operand_width`` is not an
        integer, ``depths`` or ``init`` is not a mapping or holds values of the wrong kind.
    ValueError
        If ``programs`` is empty or its programs are on different PE arrays, ``operand_width``
        is not 4, 8 or 16, a program reads an operand from results wider than
        ``operand_width``, programs use different result slots or join from both their own and a
        peer's memory, a peer port they need is missing, ``depths``/``init`` names a memory the
        programs do not use, a depth is smaller than the programs need, or initial words do not
        fit.
    """

    def __init__(self, programs, *, operand_width=8, depths=None, init=None, gated=False,
                 peer=None, b_peer=None, join_peer=None, shares=0, window_peer=None,
                 mirrored=False):
        if (not isinstance(programs, tuple)
                or not all(isinstance(p, GemmProgram) for p in programs)):
            raise TypeError(f"ComputingCore programs must be a tuple of GemmProgram, "
                            f"not {programs!r}")
        if not programs:
            raise ValueError("ComputingCore programs must not be empty")
        peas = tuple(dict.fromkeys(p.pea for p in programs))
        if len(peas) > 1:
            raise ValueError(f"ComputingCore programs must share one PE array, not "
                             f"{', '.join(map(repr, peas))}")
        if not isinstance(operand_width, int) or isinstance(operand_width, bool):
            raise TypeError(f"ComputingCore operand_width must be an integer, "
                            f"not {operand_width!r}")
        if operand_width not in OPERAND_WIDTHS:
            raise ValueError(f"ComputingCore operand_width must be 4, 8 or 16, "
                             f"not {operand_width!r}")
        self._programs = programs
        self._operand_width = operand_width
        d1, d2, d3 = self._pea = peas[0]
        self._lanes = memory_lanes(programs)
        slots = tuple(dict.fromkeys(p.slots for p in programs))
        if len(slots) > 1:
            raise ValueError(f"ComputingCore programs must share one number of result slots, "
                             f"not {', '.join(map(repr, slots))}")
        self._slots = slots[0]
        needed = memory_words(programs)
        self._shapes = {}
        for name in MEMORIES:
            if name in self._lanes:
                self._shapes[name] = operand_word(operand_width, self._lanes[name], d3)
            elif name == "biases" and name in needed:
                self._shapes[name] = data.ArrayLayout(signed(BIAS_FORMAT.bits), d2)
            elif name in ("sides", "results") and (name == "results" or name in needed):
                # Join sides loaded from off-chip are kept in the result layout.
                self._shapes[name] = result_word(programs)

        a_sources = {source for p in programs if p.a.window is None
                     for source, _ in p.a.parts}
        self._fetch_ports = result_ports(programs)
        self._chained = [n for n in self._fetch_ports if n.endswith("results")]
        join_sources = {p.join.source for p in programs if p.join is not None}
        if len(join_sources) > 1:
            raise ValueError(f"ComputingCore programs must join from one memory, not from "
                             f"{' and '.join(sorted(map(repr, join_sources)))}")
        self._self_joined = Source.RESULTS in join_sources
        self._side_joined = Source.SIDES in join_sources
        self._windowed = window_sources(programs)
        if ((self._chained or Source.RESULTS in self._windowed)
                and self._shapes["results"].elem_shape.width != operand_width):
            raise ValueError(f"ComputingCore programs reading operands from Source.RESULTS need "
                             f"{operand_width}-bit results, not "
                             f"{self._shapes['results'].elem_shape.width}-bit")
        self._depths = {name: max(2, needed[name]) for name in self._shapes}
        if depths is not None:
            if not isinstance(depths, Mapping):
                raise TypeError(f"ComputingCore depths must be a mapping of memory names to "
                                f"integers, not {depths!r}")
            for name, depth in depths.items():
                if name not in self._shapes:
                    raise ValueError(f"ComputingCore depths names a memory the programs do not "
                                     f"use: {name!r}")
                if not isinstance(depth, int) or isinstance(depth, bool):
                    raise TypeError(f"ComputingCore depth of {name!r} must be an integer, "
                                    f"not {depth!r}")
                if depth < needed[name]:
                    raise ValueError(f"ComputingCore depth of {name!r} must be at least "
                                     f"{needed[name]} words for the programs, not {depth!r}")
                self._depths[name] = depth

        self._init = {}
        if init is not None:
            if not isinstance(init, Mapping):
                raise TypeError(f"ComputingCore init must be a mapping of memory names to "
                                f"words, not {init!r}")
            for name, words in init.items():
                if name not in self._shapes:
                    raise ValueError(f"ComputingCore init names a memory the programs do not "
                                     f"use: {name!r}")
                if not isinstance(words, Iterable) or isinstance(words, (str, Mapping)):
                    raise TypeError(f"ComputingCore init of {name!r} must be an iterable of "
                                    f"words, not {words!r}")
                words = tuple(words)
                if len(words) > self._depths[name]:
                    raise ValueError(f"ComputingCore init of {name!r} must hold at most "
                                     f"{self._depths[name]} words, not {len(words)}")
                for index, word in enumerate(words):
                    if not _word_fits(self._shapes[name], word):
                        raise ValueError(f"ComputingCore init of {name!r} word {index} does not "
                                         f"fit {self._shapes[name]!r}: {word!r}")
                self._init[name] = words

        if not isinstance(gated, bool):
            raise TypeError(f"ComputingCore gated must be a bool, not {gated!r}")
        self._gated = gated
        self._peer = peer
        self._b_peer = b_peer
        self._join_peer = join_peer
        self._shares = shares
        if Source.PEER in a_sources and peer is None:
            raise ValueError("ComputingCore programs reading A from Source.PEER need peer")
        if "b_peer" in self._fetch_ports and b_peer is None:
            raise ValueError("ComputingCore programs reading B from Source.PEER need b_peer")
        if Source.PEER in join_sources and join_peer is None:
            raise ValueError("ComputingCore programs joining from Source.PEER need join_peer")
        if reads_peer_window(programs) != (window_peer is not None):
            raise ValueError("ComputingCore takes window_peer exactly when programs read a "
                             "window from Source.PEER")
        check_bool("ComputingCore", "mirrored", mirrored)
        self._window_peer = window_peer
        self._mirrored = mirrored
        self._max_reduction = max(p.kb * d3 for p in programs)
        # The PEs some program's tiles reach: rows, columns and depth past every program's
        # operands only ever multiply padding, so the array does not build them.
        self._live_pes = live_pes(programs)
        members = {
            "start": In(1),
            "stage": In(range(len(programs))),
            "clear": In(1),
            "busy": Out(1),
            "done": Out(1),
        }
        for name, shape in self._shapes.items():
            addr_width = ceil_log2(self._depths[name])
            if name == "results":
                # The host reads one slot's lanes: address = word << slot_bits | slot.
                members["results_read"] = In(ReadPortSignature(
                    addr_width + ceil_log2(self._slots),
                    data.ArrayLayout(shape.elem_shape, d2)))
            else:
                members[f"{name}_write"] = In(stream.Signature(WriteRequest(addr_width, shape)))
            if gated and name != "results":
                members[f"{name}_level"] = In(range(self._depths[name] + 1))
            if name == "results":
                for i in range(shares):
                    members[f"results_share{i}"] = In(ReadPortSignature(addr_width, shape))
                members["results_level"] = Out(range(self._depths[name] + 1))
                if mirrored:
                    members["results_mirror"] = Out(stream.Signature(
                        WriteRequest(addr_width, shape, self._slots)))
        if window_peer is not None:
            peer_shape, peer_depth, peer_slots = window_peer
            members["window_peer_write"] = In(stream.Signature(
                WriteRequest(ceil_log2(peer_depth), peer_shape, peer_slots)))
            members["window_peer_level"] = In(range(peer_depth + 1))
        for name, port in (("peer", peer), ("b_peer", b_peer)):
            if port is not None:
                peer_width, peer_lanes = port
                members[f"{name}_read"] = Out(ReadPortSignature(
                    peer_width, data.ArrayLayout(signed(operand_width), peer_lanes)))
                members[f"{name}_level"] = In(range(2 ** peer_width + 1))
        if join_peer is not None:
            join_width, join_lanes, join_bits = join_peer
            members["join_read"] = Out(ReadPortSignature(
                join_width, data.ArrayLayout(signed(join_bits), join_lanes)))
            members["join_level"] = In(range(2 ** join_width + 1))
        super().__init__(members)

    @property
    def programs(self):
        return self._programs

    @property
    def pea(self):
        return self._pea

    @property
    def live_pes(self):
        """``(rows, cols, depth)`` of the PE array some program reaches: the part built."""
        return self._live_pes

    @property
    def array_multipliers(self):
        """Multipliers the core's MAC array builds (the product of :attr:`live_pes`)."""
        return array_multipliers(self._programs)

    @property
    def multipliers(self):
        """Multipliers (DSP blocks on an FPGA) the core builds: its MAC array's and its result
        path's (:func:`.result_path.result_multipliers`)."""
        return core_multipliers(self._programs)

    @property
    def operand_width(self):
        return self._operand_width

    @property
    def lanes(self):
        return dict(self._lanes)

    @property
    def depths(self):
        return dict(self._depths)

    @property
    def shapes(self):
        return dict(self._shapes)

    @property
    def cycles(self):
        return tuple(p.cycles for p in self._programs)

    @property
    def gated(self):
        return self._gated

    @property
    def accumulator_width(self):
        # The PE array's, for the longest reduction of the programs.
        return accumulator_width(self._operand_width, self._max_reduction, self._pea[2])

    @property
    def brams(self):
        """ECP5 block RAMs (DP16KD) Yosys 0.70's ``synth_ecp5`` maps the core's memories to
        (:func:`~intar_hw.hw.memory_map.design_brams`): scratchpads, result replicas, window
        reader copies, special-function tables. Elaborates the core (under a second for small
        designs); the hardware is unchanged."""
        return design_brams(self)

    def _host_reads(self, m, port):
        # results_read addresses one slot of a word (word << slot_bits | slot); the slot is kept
        # with the request (a port holds one response, so it stays valid until then).
        d2 = self._pea[1]
        host = self.results_read
        slot_bits = ceil_log2(self._slots)
        if not slot_bits:
            wiring.connect(m, wiring.flipped(host), port)
            return
        slot = Signal(slot_bits, name="host_slot")
        with m.If(host.req.valid & host.req.ready):
            m.d.sync += slot.eq(host.req.payload.addr[:slot_bits])
        width = self._shapes["results"].elem_shape.width
        m.d.comb += [
            port.req.valid.eq(host.req.valid),
            port.req.payload.addr.eq(host.req.payload.addr[slot_bits:]),
            host.req.ready.eq(port.req.ready),
            host.resp.valid.eq(port.resp.valid),
            host.resp.payload.data.eq(
                port.resp.payload.data.as_value().word_select(slot, width * d2)),
            port.resp.ready.eq(host.resp.ready),
        ]

    def elaborate(self, platform):
        m = Module()
        d1, d2, d3 = self._pea
        count = len(self._programs)
        addr_widths = {name: ceil_log2(depth) for name, depth in self._depths.items()}

        memories = {}
        # The core's own chained reads and its peers' reads may hit one word in the same cycle
        # (an operand broadcast to a core group): the first of them reads the result memory,
        # each further one a replica written alongside it, so none waits on another. The host's
        # port comes last (it never reads during a run), so no reader's ready depends on it.
        result_readers = len(self._chained) + self._self_joined + self._shares
        replicas = []
        for name, shape in self._shapes.items():
            reads = (1 + min(1, result_readers)) if name == "results" else 1
            slots = self._slots if name == "results" else 1
            memories[name] = m.submodules[name] = Scratchpad(
                shape, self._depths[name], read_ports=reads, write_ports=1, slots=slots,
                init=self._init.get(name, ()))
            if name == "results":
                for i in range(result_readers - 1):
                    replicas.append(Scratchpad(shape, self._depths[name], read_ports=1,
                                               write_ports=1, slots=slots,
                                               init=self._init.get(name, ())))
                    m.submodules[f"results_replica{i}"] = replicas[-1]
        result_reads = memories["results"].read[:-1] + [r.read[0] for r in replicas]

        # Convolutions read A through a window reader: a copy of the memory holding their input,
        # written alongside it, with a read port per element (.window_read).
        windows = {}
        for source in self._windowed:
            name = source.value
            shape = self._shapes[name]
            init = [shape.const(w).as_value().value for w in self._init.get(name, ())]
            windows[name] = m.submodules[f"{name}_window"] = WindowReader(
                window_entries(self._programs, source), pea=self._pea,
                operand_width=self._operand_width, shape=shape, depth=self._depths[name],
                slots=self._slots if name == "results" else 1, init=init,
                gated=self._gated and name != "results",
                peer=self._window_peer if name == "results" else None)

        peer_lanes = {}
        for name, port in (("peer", self._peer), ("b_peer", self._b_peer)):
            if port is not None:
                addr_widths[name], peer_lanes[name] = port
        addr_widths["b_results"] = addr_widths["results"]
        m.submodules.fetch = fetch = OperandFetch(
            self._programs, operand_width=self._operand_width, lanes=self._lanes,
            addr_widths=addr_widths, peer_lanes=peer_lanes)
        m.submodules.array = array = MACArray(
            d1, d2, depth=d3, operand_width=self._operand_width,
            max_reduction=self._max_reduction, live=self._live_pes)
        join_shape = None
        if self._self_joined:
            join_shape = (addr_widths["results"], self._shapes["results"])
        elif self._side_joined:
            join_shape = (addr_widths["sides"], self._shapes["sides"])
        elif self._join_peer is not None:
            join_width, join_lanes, join_bits = self._join_peer
            join_shape = (join_width, data.ArrayLayout(signed(join_bits), join_lanes))
        m.submodules.result = result = ResultPath(
            self._programs, accumulator_width=array.accumulator_width,
            bias_addr_width=addr_widths.get("biases", 1),
            result_addr_width=addr_widths["results"], join_shape=join_shape)

        readers = {name: getattr(fetch, name) for name in self._lanes}
        if "biases" in memories:
            readers["biases"] = result.biases
        if self._side_joined:
            readers["sides"] = result.join
        gates = {}
        if self._gated:
            gates = {name: getattr(self, f"{name}_level") for name in readers}
        for name in ("peer", "b_peer"):
            if name in self._fetch_ports:
                readers[name] = getattr(fetch, name)
                gates[name] = getattr(self, f"{name}_level")
        if self._join_peer is not None and not self._self_joined:
            readers["join"] = result.join
            gates["join"] = self.join_level
        for name, source in readers.items():
            if name in ("peer", "b_peer", "join"):
                sink = getattr(self, f"{name}_read")
            else:
                sink = memories[name].read[0]
            if name not in gates:
                wiring.connect(m, source, sink)
                continue
            # A request waits until its word has been written (by the loader or the peer).
            filled = source.req.payload.addr < gates[name]
            m.d.comb += [
                sink.req.payload.eq(source.req.payload),
                sink.req.valid.eq(source.req.valid & filled),
                source.req.ready.eq(sink.req.ready & filled),
                source.resp.payload.eq(sink.resp.payload),
                source.resp.valid.eq(sink.resp.valid),
                sink.resp.ready.eq(source.resp.ready),
            ]
        own = [getattr(fetch, name) for name in self._chained]
        if self._self_joined:
            own.append(result.join)
        for i in range(self._shares):
            own.append(wiring.flipped(getattr(self, f"results_share{i}")))
        for reader, port in zip(own, result_reads):
            wiring.connect(m, reader, port)
        written = result.results
        # results_level: the words the result path has settled (a one-row result word by word,
        # one of several rows by P tiles of complete word rows).
        with m.If(result.settled):
            m.d.sync += self.results_level.eq(result.settled_level)
        for name, window in windows.items():
            wiring.connect(m, getattr(fetch, f"window_{name}"), window.read)
            if window.gated:
                m.d.comb += window.level.eq(getattr(self, f"{name}_level"))
            if name == "results" and self._window_peer is not None:
                wiring.connect(m, wiring.flipped(self.window_peer_write), window.peer_write)
                m.d.comb += window.peer_level.eq(self.window_peer_level)
        # The operands cross a register slice between the fetch and the array: the read data of
        # a peer's memory comes from across the chip, and the array's stall (its enable, on every
        # DSP block) does not reach back into the fetch's stepping and memory reads.
        m.submodules.operands = operands = RegisterSlice(fetch.o.payload.shape())
        wiring.connect(m, fetch.o, operands.i)
        wiring.connect(m, operands.o, array.i)
        wiring.connect(m, array.o, result.i)
        # Every write also goes to the memory's replicas and window reader copy, if any.
        _fan_out(m, written, [memories["results"].write[0]] + [r.write[0] for r in replicas]
                 + ([windows["results"].write] if "results" in windows else []))
        if self._mirrored:
            m.d.comb += [self.results_mirror.valid.eq(written.valid & written.ready),
                         self.results_mirror.payload.eq(written.payload)]
        for name, memory in memories.items():
            if name == "results":
                self._host_reads(m, memory.read[-1])
            else:
                _fan_out(m, getattr(self, f"{name}_write"), [memory.write[0]] + (
                    [windows[name].write] if name in windows else []))

        # Control: both halves start together; the result path says when the program is done.
        # The program is taken from a register beside the core's logic, a cycle behind ``stage``
        # (the controller's register is across the chip from the start cycle's address paths).
        stage = Signal.like(self.stage, name="stage_sampled")
        m.d.sync += stage.eq(self.stage)
        accept = Signal()
        known = stage < count if count < 2 ** len(stage) else C(1, 1)
        m.d.comb += [
            accept.eq(self.start & ~self.busy & known),
            fetch.start.eq(accept),
            fetch.stage.eq(stage),
            result.start.eq(accept),
            result.stage.eq(stage),
            self.done.eq(result.done),
        ]
        for window in windows.values():
            m.d.comb += [window.start.eq(accept), window.stage.eq(stage)]
        with m.If(accept):
            m.d.sync += self.busy.eq(1)
        with m.Elif(result.done):
            m.d.sync += self.busy.eq(0)
        # A new run of the schedule (its first program) forgets the last run's results.
        with m.If(self.clear | (accept & (stage == 0))):
            m.d.sync += self.results_level.eq(0)
        return m
