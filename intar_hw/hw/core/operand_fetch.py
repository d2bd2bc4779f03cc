"""Operand fetch of a computing core: two memory read streams joined into PE-array beats."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..mac_array import MACBeatLayout
from ..scratchpad import ReadPortSignature
from .program import MEMORIES, Source
from .result_read import ResultReader, read_spec
from ...integers import cdiv


__all__ = ["operand_word", "by_program", "window_entries", "window_port", "window_sources",
           "reads_peer_window", "OperandFetch"]


def operand_word(width, lanes, depth):
    """Shape of an operand memory word: ``lanes`` vectors of ``depth`` signed elements."""
    return data.ArrayLayout(data.ArrayLayout(signed(width), depth), lanes)


def by_program(m, sel, count, body):
    """Call ``body(s)`` under ``sel == s`` for each program ``s``; no switch for one program."""
    if count == 1:
        body(0)
        return
    with m.Switch(sel):
        for s in range(count):
            with m.Case(s):
                body(s)


def _port_name(which, source):
    """The fetch's port reading operand ``which`` from result memory ``source``."""
    name = "results" if source is Source.RESULTS else "peer"
    return name if which == "a" else f"b_{name}"


def result_ports(programs):
    """Names of the result-memory read ports the operand fetch of ``programs`` needs, of
    ``results``, ``peer`` (A) and ``b_results``, ``b_peer`` (B)."""
    names = {_port_name("a", source) for p in programs if p.a.laid_out
             for source, _ in p.a.parts}
    names |= {_port_name("b", source) for p in programs if p.b.laid_out
              for source, _ in p.b.parts}
    return [n for n in ("results", "peer", "b_results", "b_peer") if n in names]


def window_entries(programs, source):
    """Per program, ``(window, block, kb)`` if it reads ``A`` through a window of memory
    ``source``, else ``None``: the ``windows`` of that memory's
    :class:`~.window_read.WindowReader`."""
    return tuple((p.a.window, p.a_block, p.kb)
                 if p.a.window is not None and _window_memory(p.a.source) is source else None
                 for p in programs)


def window_port(entries, pea, operand_width):
    """The read port a :class:`~.window_read.WindowReader` with these ``windows`` serves: word
    addresses of the programs' im2col tiles, words of the largest block of lanes."""
    used = [e for e in entries if e is not None]
    block = max(b for _, b, _ in used)
    span = max(cdiv(window.M, b) * kb for window, b, kb in used)
    return ReadPortSignature(ceil_log2(max(span, 2)), operand_word(operand_width, block, pea[2]))


def _window_memory(source):
    """The window reader serving a window read from ``source``: results of this core and of
    its peer share one (:class:`~.window_read.WindowReader` with ``peer``)."""
    return Source.RESULTS if source is Source.PEER else source


def window_sources(programs):
    """The memories programs read a convolution's ``A`` from through a window reader
    (:attr:`Source.RESULTS` standing for the results of this core and of its peer)."""
    found = {_window_memory(p.a.source) for p in programs if p.a.window is not None}
    return [s for s in (Source.ACTIVATIONS, Source.RESULTS) if s in found]


def reads_peer_window(programs):
    """Whether some program reads a window from the peer's result memory."""
    return any(p.a.window is not None and p.a.source is Source.PEER for p in programs)


def _side_ports(program):
    """``{"p": port name, "q": port name}`` of a program's plain (not result-layout) reads."""
    a = (f"window_{_window_memory(program.a.source).value}" if program.a.window is not None
         else program.a.source.value)
    b = program.b.source.value
    return {"p": a, "q": b} if program.orientation == "MN" else {"p": b, "q": a}


def nest_deltas(bounds, coeffs):
    """What a step of each loop adds to ``sum(coeffs[l] * index[l])``, inner loops rewinding."""
    return tuple(coeffs[l] - sum((bounds[i] - 1) * coeffs[i] for i in range(l + 1, len(bounds)))
                 for l in range(len(bounds)))


class OperandFetch(wiring.Component):
    """Read the operand tiles of a program from two memories and join them into array beats.

    A program's beats are visited batch by batch, P-tile, Q-tile, then the ``kb`` beats of the
    reduction (see :mod:`.program`). Per beat one word is read from the memory holding P (the
    operand on the array's rows) and one from the memory holding Q, at addresses that are
    constants of the program plus counters; the two responses are joined into one
    :class:`~intar_hw.hw.mac_array.MACBeatLayout` beat on ``o``, with ``last`` on the final beat
    of each tile. Elements past ``K`` in the last beat of a reduction are zeroed on the P side,
    so the memories may hold anything there.

    Read requests go out on both ports in the cycle ``start`` is honoured (their addresses are
    constants of ``stage``), then one per cycle while the ports accept them; a port stalled by
    ``o`` holds its response, so backpressure on ``o`` costs exactly the cycles it lasts.

    A program reading ``A`` or ``B`` from :attr:`~.program.Source.RESULTS` or
    :attr:`~.program.Source.PEER` reads that result memory instead (result layout, see
    :mod:`.program` and :mod:`.result_read`): one word holds the rows of the operand's tile side
    by side in its slots, each beat taking ``d3`` lanes of every row's slot, or (``B`` read
    transposed) one stored row whose lanes are the tile's rows, one word per beat. A program
    gathering an operand from two memories (``a.gather``, ``b.gather``) keeps one word of it in
    flight at a time, so the responses of the two ports are joined in request order.

    Parameters
    ----------
    programs : tuple of GemmProgram
        The programs, selected by ``stage``; all on one PE array.
    operand_width : int
        Bits of each operand element.
    lanes : dict of str to int
        Word width (``d3``-vectors) of each operand memory, as :func:`.program.memory_lanes`.
    addr_widths : dict of str to int
        Address width of each operand memory (and of ``results`` and ``peer`` when a program
        reads them).
    peer_lanes : dict of str to int
        Lanes (all slots) of the words of the peers' result memories, by port name (``peer``
        for A, ``b_peer`` for B), when a program reads :attr:`~.program.Source.PEER`.

    Members
    -------
    start : In(1)
        Starts program ``stage``; honoured when ``busy`` is low.
    stage : In(range(len(programs)))
        The program to start.
    busy : Out(1)
        High while reads remain to be issued or a response waits to be joined.
    <memory> : Out(ReadPortSignature(addr_width, word))
        One read port per operand memory some program reads (``activations``, ``weights``), and
        per result memory (:func:`result_ports`: ``results``/``peer`` for A,
        ``b_results``/``b_peer`` for B), whose words are ``slots * d2`` and ``peer_lanes``
        lanes of ``operand_width`` bits.
    o : Out(stream.Signature(MACBeatLayout(d1, d2, d3, operand_width)))
        Operand beats for the PE array.
    """

    def __init__(self, programs, *, operand_width, lanes, addr_widths, peer_lanes=None):
        self._programs = tuple(programs)
        self._operand_width = operand_width
        self._lanes = dict(lanes)
        d1, d2, d3 = self._programs[0].pea
        members = {
            "start": In(1),
            "stage": In(range(len(self._programs))),
            "busy": Out(1),
        }
        for name in MEMORIES:
            if name in self._lanes:
                members[name] = Out(ReadPortSignature(
                    addr_widths[name], operand_word(operand_width, self._lanes[name], d3)))
        # Result-memory read ports: the own memory and a peer's, for A and for B.
        self._result_ports = result_ports(self._programs)
        own = self._programs[0].slots * d2
        for name in self._result_ports:
            lanes = own if name.endswith("results") else (peer_lanes or {}).get(name)
            members[name] = Out(ReadPortSignature(
                addr_widths[name], data.ArrayLayout(signed(operand_width), lanes)))
        # Window reads of convolutions: see .window_read.
        self._window_ports = [f"window_{source.value}" for source in window_sources(programs)]
        for source in window_sources(programs):
            members[f"window_{source.value}"] = Out(window_port(
                window_entries(self._programs, source), self._programs[0].pea, operand_width))
        members["o"] = Out(stream.Signature(MACBeatLayout(d1, d2, d3, operand_width)))
        super().__init__(members)

    @property
    def programs(self):
        return self._programs

    def elaborate(self, platform):
        m = Module()
        programs = self._programs
        count = len(programs)
        d1, d2, d3 = programs[0].pea

        # Control: the stage is latched when a program starts; until then it is the input's.
        fetching = Signal()
        sel = Signal(range(count), name="sel")
        cur = Signal(range(count), name="cur")
        accept = Signal()
        active = Signal()
        m.d.comb += [
            accept.eq(self.start & ~fetching),
            active.eq(accept | fetching),
            cur.eq(Mux(fetching, sel, self.stage)),
        ]
        with m.If(accept):
            m.d.sync += sel.eq(self.stage)

        # The loop nest (batch, P tile, Q tile, beat), one step per beat requested on both ports.
        bounds = [(p.batch, p.p_tiles, p.q_tiles, p.kb) for p in programs]
        index = [Signal(range(max(b[l] for b in bounds)), name=f"index_{l}") for l in range(4)]
        at_end = [Signal(name=f"at_end_{l}") for l in range(4)]

        def ends(s):
            m.d.comb += [at_end[l].eq(index[l] == bounds[s][l] - 1) for l in range(4)]
        by_program(m, cur, count, ends)
        final = Cat(*at_end).all()

        # A fork of one request into two ports, each transferring once per step.
        p_taken, q_taken = Signal(), Signal()
        p_req_valid, q_req_valid = Signal(), Signal()
        p_req_ready, q_req_ready = Signal(), Signal()
        step = Signal()
        p_done = p_taken | (p_req_valid & p_req_ready)
        q_done = q_taken | (q_req_valid & q_req_ready)
        m.d.comb += [
            p_req_valid.eq(active & ~p_taken),
            q_req_valid.eq(active & ~q_taken),
            step.eq(active & p_done & q_done),
        ]
        with m.If(step):
            m.d.sync += [p_taken.eq(0), q_taken.eq(0)]
        with m.Else():
            m.d.sync += [p_taken.eq(p_done), q_taken.eq(q_done)]

        with m.If(step & final):
            m.d.sync += fetching.eq(0)
        with m.Elif(accept):
            m.d.sync += fetching.eq(1)

        # Word offsets of P and Q from their bases: blocks of kb words, see .program.
        coeffs = {
            "p": [(p.p_tiles * p.kb, p.kb, 0, 1) for p in programs],
            "q": [(p.q_tiles * p.kb, 0, p.kb, 1) for p in programs],
        }
        spans = {"p": max(p.batch * p.p_tiles * p.kb for p in programs),
                 "q": max(p.batch * p.q_tiles * p.kb for p in programs)}
        offsets = {side: Signal(range(spans[side]), name=f"{side}_offset") for side in coeffs}
        with m.If(step):
            def advance(s):
                with m.If(final):
                    m.d.sync += [index[l].eq(0) for l in range(4)]
                    m.d.sync += [offset.eq(0) for offset in offsets.values()]
                for l in reversed(range(4)):
                    # The innermost loop not at its end advances; the loops inside it rewind.
                    with m.Elif(~at_end[l]):
                        m.d.sync += index[l].eq(index[l] + 1)
                        m.d.sync += [index[i].eq(0) for i in range(l + 1, 4)]
                        for side, offset in offsets.items():
                            delta = nest_deltas(bounds[s], coeffs[side][s])[l]
                            if delta:
                                m.d.sync += offset.eq(offset + delta)
            by_program(m, cur, count, advance)

        # Operands in result layout (Source.RESULTS, PEER): see .result_read.
        readers = {}
        for which in ("a", "b"):
            specs = [read_spec(p, which) for p in programs]
            if any(specs):
                readers[which] = (specs, ResultReader(
                    m, f"{which}_read", specs, cur=cur, step=step, at_end=at_end, final=final,
                    by_program=by_program))

        # Requests: each memory takes P or Q requests according to the program.
        p_last = Signal()          # the P request in flight is the last beat of its tile
        with m.If(p_req_valid & p_req_ready):
            m.d.sync += p_last.eq(at_end[3])
        ports = {name: getattr(self, name) for name in MEMORIES if name in self._lanes}
        for name in self._result_ports + self._window_ports:
            ports[name] = getattr(self, name)
        for port in ports.values():
            m.d.comb += [port.req.valid.eq(0), port.resp.ready.eq(0)]

        # Responses of a gathered operand come from two ports: a new request waits until the one
        # in flight is joined (or is joined in this cycle), so they are joined in request order.
        sides = {"p": (p_req_valid, p_req_ready), "q": (q_req_valid, q_req_ready)}
        requests, joined, free = {}, {}, {}
        for which, (_, reader) in readers.items():
            requests[which] = Signal(name=f"{which}_request")
            joined[which] = Signal(name=f"{which}_joined")
            free[which] = Signal(name=f"{which}_free")
            out = Signal(name=f"{which}_out")
            m.d.comb += free[which].eq(~out | joined[which])
            with m.If(requests[which]):
                m.d.sync += out.eq(1)
            with m.Elif(joined[which]):
                m.d.sync += out.eq(0)
            reader.capture(requests[which])

        def route_requests(s):
            program = programs[s]
            names = _side_ports(program)
            bases = {"p": program.p_base, "q": program.q_base}
            pending = {side: (names[side], bases[side], offsets[side]) for side in names}
            for which, (specs, reader) in readers.items():
                spec = specs[s]
                if spec is None:
                    continue
                # A port per part (one without a gather), chosen by the word's part.
                del pending[spec.side]
                valid, ready = sides[spec.side]
                parts = spec.parts
                gate = free[which] if len(parts) > 1 else C(1, 1)
                m.d.comb += requests[which].eq(valid & ready)
                for i, (source, base) in enumerate(parts):
                    port = ports[_port_name(which, source)]
                    m.d.comb += [
                        port.req.valid.eq(valid & gate & (reader.part == i)),
                        port.req.payload.addr.eq(base + reader.address(spec)),
                    ]
                with m.Switch(reader.part):
                    for i, (source, _) in enumerate(parts):
                        with m.Case(i):
                            m.d.comb += ready.eq(ports[_port_name(which, source)].req.ready
                                                 & gate)
            for side, (name, base, offset) in pending.items():
                valid, ready = sides[side]
                port = ports[name]
                m.d.comb += [
                    port.req.valid.eq(valid),
                    port.req.payload.addr.eq(base + offset),
                    ready.eq(port.req.ready),
                ]
        by_program(m, cur, count, route_requests)

        # Responses: joined into one beat; both are taken together.
        p_word = Signal(data.ArrayLayout(data.ArrayLayout(signed(self._operand_width), d3), d1))
        q_word = Signal(data.ArrayLayout(data.ArrayLayout(signed(self._operand_width), d3), d2))
        p_valid, q_valid = Signal(), Signal()
        p_ready, q_ready = Signal(), Signal()
        m.d.comb += [
            self.o.valid.eq(p_valid & q_valid),
            p_ready.eq(self.o.ready & q_valid),
            q_ready.eq(self.o.ready & p_valid),
        ]

        def route_responses(s):
            program = programs[s]
            beats = {"p": (p_word, d1, p_valid, p_ready), "q": (q_word, d2, q_valid, q_ready)}
            pending = _side_ports(program)
            for which, (specs, reader) in readers.items():
                spec = specs[s]
                if spec is None:
                    continue
                del pending[spec.side]
                word, lanes, valid, ready = beats[spec.side]
                m.d.comb += joined[which].eq(valid & ready)
                with m.Switch(reader.got_part):
                    for i, (source, _) in enumerate(spec.parts):
                        with m.Case(i):
                            port = ports[_port_name(which, source)]
                            m.d.comb += [valid.eq(port.resp.valid),
                                         port.resp.ready.eq(ready)]
                            reader.route(spec, port.resp.payload.data, word, lanes,
                                         self._operand_width, d3)
            for side, name in pending.items():
                word, lanes, valid, ready = beats[side]
                port = ports[name]
                m.d.comb += [valid.eq(port.resp.valid), port.resp.ready.eq(ready)]
                m.d.comb += [word[r].eq(port.resp.payload.data[r]) for r in range(lanes)]
        by_program(m, sel, count, route_responses)

        # Elements past K in the last beat of a reduction read as zero (0 * anything = 0).
        k_keep = Signal(d3, init=(1 << d3) - 1)
        masked = sorted({k for p in programs for k in range(p.k_rem, d3)})
        if masked:
            def keep(s):
                m.d.comb += k_keep.eq(Mux(p_last, (1 << programs[s].k_rem) - 1, (1 << d3) - 1))
            by_program(m, sel, count, keep)
        for r in range(d1):
            for k in range(d3):
                element = p_word[r][k]
                if k in masked:
                    element = Mux(k_keep[k], element, 0)
                m.d.comb += self.o.payload.a[r][k].eq(element)
        m.d.comb += [
            self.o.payload.b.eq(q_word),
            self.o.payload.last.eq(p_last),
            self.busy.eq(fetching | p_valid | q_valid),
        ]
        return m
