"""The storer: writes a stage's graph outputs from the cores' result memories to off-chip."""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hw.scratchpad import WriteRequest


__all__ = ["StorerStage", "Storer"]


@dataclass(frozen=True)
class StorerStage:
    """What one stage writes: ``words`` bus words from ``start``, packed from ``segments``
    (:class:`~.loader.Segment`: ``count`` result words from ``base``, ``nbytes`` low bytes of
    each), the last bus word padded with zeros."""
    start: int
    words: int
    segments: tuple


class Storer(wiring.Component):
    """Reads result words, keeps their low bytes, and writes them off-chip as bus words.

    On ``start`` the storer walks stage ``stage``'s segments, reading one result word at a time
    from its source memory (one read in flight) while earlier bytes leave as bus writes, one per
    cycle the bus takes it, at consecutive addresses from the stage's ``start``. ``busy`` falls
    in the cycle after the last bus word is taken.

    Parameters
    ----------
    sources : dict of str to ReadPortSignature
        Name to the read-port signature of every result memory it reads.
    stages : tuple of StorerStage
    bus_bytes : int
    addr_width : int
        Width of the off-chip addresses.

    Members
    -------
    start : In(1)
        Starts stage ``stage``; honoured when ``busy`` is low. A stage without words does
        nothing.
    stage : In(range(len(stages)))
    busy : Out(1)
    <source> : Out(<its signature>)
        Reads of the result memories.
    write : Out(stream.Signature(WriteRequest(addr_width, unsigned(8 * bus_bytes))))
        Off-chip writes.
    """

    def __init__(self, sources, stages, *, bus_bytes, addr_width):
        self._sources = dict(sources)
        self._stages = tuple(stages)
        self._bus_bytes = bus_bytes
        widest = max([s.nbytes for st in self._stages for s in st.segments], default=1)
        # The staged bytes, the word in flight and the next; plus a bus word, so a read's room is
        # judged on the bytes staged at the start of the cycle (registered), not on whether the
        # bus takes a word in it.
        self._cap = widest + 3 * bus_bytes
        members = {
            "start": In(1),
            "stage": In(range(max(1, len(self._stages)))),
            "busy": Out(1),
            "write": Out(stream.Signature(WriteRequest(addr_width, unsigned(8 * bus_bytes)))),
        }
        for name, signature in self._sources.items():
            members[name] = Out(signature)
        super().__init__(members)

    @property
    def stages(self):
        return self._stages

    def elaborate(self, platform):
        m = Module()
        W, cap = self._bus_bytes, self._cap
        names = list(self._sources)
        segments = [s for st in self._stages for s in st.segments]
        firsts, index = [], 0
        for st in self._stages:
            firsts.append(index)
            index += len(st.segments)

        reading = Signal()              # segments remain to be read
        pending = Signal()              # a read is in flight
        seg = Signal(range(max(1, len(segments))), name="segment")
        word = Signal(range(max([s.count for s in segments], default=1) + 1), name="word")
        addr = Signal.like(self.write.payload.addr, name="addr")
        left = Signal(range(max([st.words for st in self._stages], default=0) + 1), name="left")
        fill = Signal(range(cap + 1), name="fill")
        buffer = Signal(data.ArrayLayout(unsigned(8), cap), name="buffer")
        m.d.comb += self.busy.eq(reading | pending | (left != 0))

        # Bus writes: a word once W bytes are staged, or the zero-padded rest at the end.
        final = Signal()
        m.d.comb += [
            final.eq(~reading & ~pending & (left == 1)),
            self.write.valid.eq((left != 0) & ((fill >= W) | (final & (fill != 0)))),
            self.write.payload.addr.eq(addr),
            self.write.payload.data.eq(buffer.as_value()[:8 * W]),
        ]
        wrote = Signal()
        m.d.comb += wrote.eq(self.write.valid & self.write.ready)
        with m.If(wrote):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
        after_write = Signal.like(buffer, name="after_write")
        kept = Signal(range(cap + 1), name="kept")
        m.d.comb += [
            after_write.as_value().eq(Mux(wrote, buffer.as_value() >> (8 * W), buffer.as_value())),
            kept.eq(Mux(wrote, Mux(fill > W, fill - W, 0), fill)),
        ]

        # Reads: one word in flight (the next may go out as the previous one's data arrives),
        # issued only when its bytes will fit beside the staged ones and the word in flight: the
        # bytes staged before this cycle's bus write, so the bus's ready does not reach the
        # request (the spare bus word of ``cap`` makes room for them).
        ports = {name: getattr(self, name) for name in names}
        for port in ports.values():
            m.d.comb += [port.req.valid.eq(0), port.resp.ready.eq(0)]
        incoming = Signal(range(cap + 1), name="incoming")     # bytes of the word in flight
        arrived = Signal()
        requested = Signal()
        response = Signal(8 * max([s.nbytes for s in segments], default=1), name="response")
        last_word, last_segment = Signal(), Signal()
        with m.Switch(seg):
            for i, s in enumerate(segments):
                with m.Case(i):
                    port = ports[names[s.target]]
                    m.d.comb += [
                        port.req.valid.eq(reading & (~pending | arrived)
                                          & (fill + Mux(pending, incoming, 0) + s.nbytes
                                             <= cap)),
                        port.req.payload.addr.eq(s.base + word),
                        last_word.eq(word == s.count - 1),
                        last_segment.eq(i + 1 == len(segments) or i + 1 in firsts),
                    ]
                    m.d.comb += requested.eq(port.req.valid & port.req.ready)
                    with m.If(requested):
                        m.d.sync += [pending.eq(1), incoming.eq(s.nbytes)]
                        with m.If(last_word):
                            m.d.sync += [word.eq(0), seg.eq(seg + 1)]
                            with m.If(last_segment):
                                m.d.sync += reading.eq(0)
                        with m.Else():
                            m.d.sync += word.eq(word + 1)
        # The response comes from the port of the segment the request was made for: any port
        # with a valid response (only one is ever in flight).
        for port in ports.values():
            with m.If(port.resp.valid):
                m.d.comb += [port.resp.ready.eq(1), arrived.eq(1),
                             response.eq(port.resp.payload.data.as_value()[:len(response)])]
        with m.If(arrived & ~requested):
            m.d.sync += pending.eq(0)

        merged = Signal.like(buffer, name="merged")
        for j in range(cap):
            offset = j - kept
            here = arrived & (kept <= j) & (j < kept + incoming)
            m.d.comb += merged[j].eq(Mux(here, response.word_select(
                offset[:len(Const(cap))], 8), after_write[j]))
        m.d.sync += [buffer.eq(merged), fill.eq(kept + Mux(arrived, incoming, 0))]

        # A start (only while idle) overrides the updates above.
        with m.If(self.start & ~self.busy):
            with m.Switch(self.stage):
                for s, st in enumerate(self._stages):
                    with m.Case(s):
                        m.d.sync += [seg.eq(firsts[s]), word.eq(0), fill.eq(0),
                                     reading.eq(len(st.segments) > 0), addr.eq(st.start),
                                     left.eq(st.words)]
        return m
