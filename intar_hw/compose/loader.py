"""The loader: streams a stage's off-chip bytes into the cores' memories while they compute."""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from ..hw.offchip import BurstBeat, BurstRequest


__all__ = ["Segment", "LoaderStage", "Loader", "buffer_bytes"]


@dataclass(frozen=True)
class Segment:
    """``count`` words of ``nbytes`` bytes each, written to ``target`` from word ``base`` on.

    A word's bytes fill the low bytes of the memory word (lane 0 first, little-endian elements);
    the rest of the word is written as zeros. The loader also writes each word, at the same
    address, to the targets in ``also`` (an operand broadcast to several cores, read off-chip
    once).
    """
    target: int
    base: int
    count: int
    nbytes: int
    also: tuple = ()


@dataclass(frozen=True)
class LoaderStage:
    """What one stage reads: ``words`` bus words from ``start``, unpacked as ``segments``."""
    start: int
    words: int
    segments: tuple


def buffer_bytes(stages, bus_bytes):
    """Bytes of staging the loader needs so the bus never waits on a memory write port.

    A memory takes one word per cycle, and a word broadcast to several memories takes a cycle
    per memory; a run of words shorter than the bus word builds up a backlog. Found by stepping
    every stage's byte flow at full bus rate: the largest number of bytes held at the end of a
    cycle, plus the bus word that may arrive while they are held (the staging takes it in the
    cycle it arrives, and a word is written in the cycle its last byte arrives).
    """
    need = 0
    for stage in stages:
        fill = 0
        for segment in stage.segments:
            for _ in range(segment.count):
                while fill < segment.nbytes:
                    fill += bus_bytes
                need = max(need, fill)
                # One cycle per target memory, the bus moving on in each of them.
                for _ in range(len(segment.also)):
                    fill += bus_bytes
                need = max(need, fill)
                fill -= segment.nbytes
                fill += bus_bytes           # the bus moved on in the cycle of the write
                need = max(need, fill)
    return need + bus_bytes


class Loader(wiring.Component):
    """Reads a stage's bytes from off-chip and writes them, as words, into memories.

    On ``start`` the loader requests stage ``stage``'s bus words (bursts of at most
    ``max_burst``, the first presented in the cycle of ``start``) and unpacks the byte stream
    into the stage's segments, in order, one memory word per cycle at most. A word is written in
    the cycle its last byte arrives (the bus word bypasses the staging register).
    ``<target>_level`` tells each memory's reader how many words from address 0 are valid, from
    the cycle after the write (segments of a target are written in increasing address order over
    the whole run; starting stage 0 sets the levels back to 0). The bus is never held back while
    the staging buffer has room, and it is sized so it always has (:func:`buffer_bytes`).

    Parameters
    ----------
    targets : dict of str to wiring.Signature
        Name to the write-stream signature (``stream.Signature(WriteRequest(...))``) of every
        memory the loader fills.
    stages : tuple of LoaderStage
        Per stage, what it reads (stages with no words read nothing).
    bus_bytes : int
        Bytes per bus word.
    addr_width, count_width : int
        Widths of the bus's burst requests.
    max_burst : int
        Largest burst.

    Members
    -------
    start : In(1)
        Starts stage ``stage``; honoured when ``busy`` is low.
    stage : In(range(len(stages)))
    busy : Out(1)
        High from the cycle after an honoured ``start`` until the stage's last word is written.
    read_req : Out(stream.Signature(BurstRequest(addr_width, count_width)))
    read_data : In(stream.Signature(BurstBeat(unsigned(8 * bus_bytes))))
    <target> : Out(<its signature>)
        Writes to the memory.
    <target>_level : Out(range(depth + 1))
        One past the highest word address written so far.
    """

    def __init__(self, targets, stages, *, bus_bytes, addr_width, count_width, max_burst):
        self._targets = dict(targets)
        self._stages = tuple(stages)
        self._bus_bytes = bus_bytes
        self._max_burst = max_burst
        self._cap = buffer_bytes(self._stages, bus_bytes)
        members = {
            "start": In(1),
            "stage": In(range(max(1, len(self._stages)))),
            "busy": Out(1),
            "read_req": Out(stream.Signature(BurstRequest(addr_width, count_width))),
            "read_data": In(stream.Signature(BurstBeat(unsigned(8 * bus_bytes)))),
        }
        for name, signature in self._targets.items():
            members[name] = Out(signature)
            addr_width_t = Shape.cast(signature.members["payload"].shape["addr"].shape).width
            members[f"{name}_level"] = Out(range((1 << addr_width_t) + 1))
        super().__init__(members)

    @property
    def stages(self):
        return self._stages

    def elaborate(self, platform):
        m = Module()
        W, cap = self._bus_bytes, self._cap
        names = list(self._targets)
        segments = [s for st in self._stages for s in st.segments]
        firsts = []
        index = 0
        for st in self._stages:
            firsts.append(index)
            index += len(st.segments)

        # Burst requests; the first goes out in the cycle of ``start``.
        starting = Signal()
        req_addr = Signal.like(self.read_req.payload.addr, name="req_addr")
        req_left = Signal(range(max([st.words for st in self._stages], default=0) + 1),
                          name="req_left")
        first_addr = Signal.like(req_addr, name="first_addr")
        first_left = Signal.like(req_left, name="first_left")
        cur_addr = Signal.like(req_addr, name="cur_addr")
        cur_left = Signal.like(req_left, name="cur_left")
        with m.Switch(self.stage):
            for s, st in enumerate(self._stages):
                with m.Case(s):
                    m.d.comb += [first_addr.eq(st.start), first_left.eq(st.words)]
        m.d.comb += [
            starting.eq(self.start & ~self.busy),
            cur_addr.eq(Mux(starting, first_addr, req_addr)),
            cur_left.eq(Mux(starting, first_left, req_left)),
            self.read_req.valid.eq(cur_left != 0),
            self.read_req.payload.addr.eq(cur_addr),
            self.read_req.payload.count.eq(Mux(cur_left > self._max_burst, self._max_burst,
                                               cur_left)),
        ]
        with m.If(self.read_req.valid & self.read_req.ready):
            m.d.sync += [req_addr.eq(cur_addr + self.read_req.payload.count),
                         req_left.eq(cur_left - self.read_req.payload.count)]
        with m.Elif(starting):
            m.d.sync += [req_addr.eq(first_addr), req_left.eq(first_left)]

        # The segment walk.
        active = Signal()
        seg = Signal(range(max(1, len(segments))), name="segment")
        word = Signal(range(max([s.count for s in segments], default=1) + 1), name="word")
        fill = Signal(range(cap + 1), name="fill")
        buffer = Signal(data.ArrayLayout(unsigned(8), cap), name="buffer")
        m.d.comb += self.busy.eq(active | (req_left != 0))

        # Bus words join the staged bytes at the top (bypassing the register: a word can be
        # written in the cycle its last byte arrives); written words leave from the bottom.
        took = Signal()
        avail = Signal(range(cap + 1), name="avail")
        merged = Signal.like(buffer, name="merged")
        m.d.comb += [
            self.read_data.ready.eq(active & (fill <= cap - W)),
            took.eq(self.read_data.valid & self.read_data.ready),
            avail.eq(fill + Mux(took, W, 0)),
        ]
        beat = self.read_data.payload.data
        for j in range(cap):
            offset = j - fill
            arriving = took & (fill <= j) & (j < fill + W)
            m.d.comb += merged[j].eq(Mux(arriving, beat.word_select(offset[:bits_for(W)], 8)
                                         if W > 1 else beat, buffer[j]))

        need = Signal(range(cap + 1), name="need")
        target = {name: getattr(self, name) for name in names}
        last_word = Signal()
        last_segment = Signal()
        for port in target.values():
            m.d.comb += port.valid.eq(0)
        wrote = Signal()
        fanout = max([1 + len(s.also) for s in segments], default=1)
        taken = Signal(fanout, name="taken")        # broadcast targets that took the word
        now = Signal(fanout, name="now")            # ... and those taking it this cycle
        with m.If(wrote):
            m.d.sync += taken.eq(0)
        with m.Else():
            m.d.sync += taken.eq(taken | now)
        with m.Switch(seg):
            for i, s in enumerate(segments):
                with m.Case(i):
                    # A broadcast word is written once every target has taken it, each in its
                    # own cycle (``taken`` remembers who has).
                    written = []
                    for n, t in enumerate((s.target, *s.also)):
                        port = target[names[t]]
                        m.d.comb += [
                            port.valid.eq(active & (avail >= s.nbytes) & ~taken[n]),
                            port.payload.addr.eq(s.base + word),
                            port.payload.data.as_value().eq(merged.as_value()[:8 * s.nbytes]),
                            now[n].eq(port.valid & port.ready),
                        ]
                        written.append(taken[n] | now[n])
                    m.d.comb += [
                        need.eq(s.nbytes),
                        wrote.eq(Cat(*written).all()),
                        last_word.eq(word == s.count - 1),
                        last_segment.eq(i + 1 == len(segments)
                                        or i + 1 in firsts),
                    ]
                    with m.If(wrote):
                        for t in (s.target, *s.also):
                            m.d.sync += getattr(self, f"{names[t]}_level").eq(s.base + word + 1)
        with m.If(wrote):
            with m.If(last_word):
                m.d.sync += [word.eq(0), seg.eq(seg + 1)]
                with m.If(last_segment):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += word.eq(word + 1)

        shifted = Signal.like(buffer, name="shifted")
        m.d.comb += shifted.eq(merged)
        with m.If(wrote):
            with m.Switch(need):
                for n in sorted({s.nbytes for s in segments}):
                    with m.Case(n):
                        m.d.comb += shifted.as_value().eq(merged.as_value() >> (8 * n))
        m.d.sync += [buffer.eq(shifted), fill.eq(avail - Mux(wrote, need, 0))]

        # A start (only while idle) overrides the updates above; stage 0 starts a new run.
        with m.If(self.start & ~self.busy):
            with m.If(self.stage == 0):
                m.d.sync += [getattr(self, f"{name}_level").eq(0) for name in names]
            with m.Switch(self.stage):
                for s, st in enumerate(self._stages):
                    with m.Case(s):
                        m.d.sync += [seg.eq(firsts[s]), word.eq(0), fill.eq(0),
                                     active.eq(len(st.segments) > 0)]
        return m
