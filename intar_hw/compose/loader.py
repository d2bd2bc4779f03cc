"""The loader: streams a stage's off-chip bytes into the cores' memories while they compute."""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..hw.offchip import BurstBeat, BurstRequest


__all__ = ["Segment", "LoaderStage", "Staging", "staging", "Loader"]


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


@dataclass(frozen=True)
class Staging:
    """The loader's buffers: ``slots`` word slots of ``groups`` bus words each, in which words
    wider than a bus word are assembled, and a ring of ``ring`` bus words (0: none) from which
    the narrower words are read."""
    slots: int
    groups: int
    ring: int

    def bytes(self, bus_bytes):
        """Bytes of storage the buffers hold."""
        return (self.slots * self.groups + self.ring) * bus_bytes


def _words(stage, bus_bytes):
    """``(first bus word, last bus word, wide)`` of every memory word of ``stage``, in order."""
    pos = 0
    for segment in stage.segments:
        for _ in range(segment.count):
            yield (pos // bus_bytes, (pos + segment.nbytes - 1) // bus_bytes,
                   segment.nbytes > bus_bytes)
            pos += segment.nbytes


def _last_bus_word(first, offset, nbytes, bus_bytes):
    """The bus word holding the last byte of a word of ``nbytes`` bytes that starts at byte
    ``offset`` of bus word ``first`` (integers or Amaranth values)."""
    return (first + (nbytes - 1) // bus_bytes
            + (offset + (nbytes - 1) % bus_bytes >= bus_bytes))


def _next_word(first, offset, nbytes, bus_bytes):
    """``(first, offset)`` of the word that follows a word of ``nbytes`` bytes starting at byte
    ``offset`` of bus word ``first`` (Amaranth values)."""
    carry = offset + nbytes % bus_bytes >= bus_bytes
    return (first + nbytes // bus_bytes + carry,
            Mux(carry, offset + nbytes % bus_bytes - bus_bytes, offset + nbytes % bus_bytes))


def staging(stages, bus_bytes):
    """The :class:`Staging` that lets the loader take a bus word in every cycle one arrives.

    Found by stepping each stage at full bus rate the way :class:`Loader` runs: bus word ``b``
    arrives in cycle ``b``; a memory word is written in the cycle after its last bus word
    arrived, or the cycle after the word before it, whichever is later. A word wider than a bus
    word holds a slot from its first bus word to its write (the loader counts words begun and not
    yet written); a narrower one is read from the ring, which keeps the bus words from the first
    one the oldest unwritten word still needs (for a wide word, the one it ends in).
    """
    slots, ring, groups = 0, 0, 0
    narrow = False
    for stage in stages:
        words = list(_words(stage, bus_bytes))
        narrow = narrow or any(not wide for _, _, wide in words)
        written, last = [], -1
        for _, l, _ in words:
            last = max(last + 1, l + 1)
            written.append(last)
        wide = [(f, w) for (f, _, is_wide), w in zip(words, written) if is_wide]
        groups = max([groups] + [l - f + 1 for f, l, is_wide in words if is_wide])
        begun = done = oldest = 0
        for b in range(stage.words):
            # The ring's test is made a cycle early, on the oldest word unwritten a cycle before.
            while oldest < len(words) and written[oldest] < b - 2:
                oldest += 1
            if oldest < len(words):
                f, l, is_wide = words[oldest]
                ring = max(ring, b - (l if is_wide else f) + 1)
            while begun < len(wide) and wide[begun][0] < b:
                begun += 1
            while done < len(wide) and wide[done][1] < b:
                done += 1
            slots = max(slots, begun - done + 1) if wide else slots
    if not narrow:
        ring = 0
    return Staging(slots, groups, 1 << ceil_log2(max(ring, 2)) if narrow else 0)


class Loader(wiring.Component):
    """Reads a stage's bytes from off-chip and writes them, as words, into memories.

    On ``start`` the loader requests stage ``stage``'s bus words (bursts of at most
    ``max_burst``, the first presented in the cycle of ``start``) and unpacks the byte stream
    into the stage's segments, in order, one memory word per cycle at most, each in the cycle
    after its last byte arrived at the earliest (every bus word is registered first). A word
    broadcast to several targets is written to all of them at once (each target that is not
    ready takes it in a later cycle; the next word waits for all).

    A word wider than a bus word is assembled in a slot as its bus words arrive, each bus word
    landing whole in the slot (lane ``i`` of a bus word at byte ``i`` of its group); the writer
    shifts the word out of the slot by its offset in its first bus word. A narrower word is read
    from a ring of the last bus words. :func:`staging` sizes both so that the bus is never held
    back when the memories take a word every cycle; when they do not, ``read_data.ready`` falls
    while a bus word could overwrite what an unwritten word needs.

    ``<target>_level`` tells each memory's reader how many words from address 0 are valid, from
    the cycle after the write (segments of a target are written in increasing address order over
    the whole run; ``clear``, or starting stage 0, sets the levels back to 0).

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
    clear : In(1)
        Forget the run: the levels are 0 from the next cycle (the accelerator raises it after
        each run, so the next run's readers never see this run's levels).
    busy : Out(1)
        High from the cycle after an honoured ``start`` until the stage's last word is written.
    read_req : Out(stream.Signature(BurstRequest(addr_width, count_width)))
    read_data : In(stream.Signature(BurstBeat(unsigned(8 * bus_bytes))))
    <target> : Out(<its signature>)
        Writes to the memory.
    <target>_level : Out(range(depth + 1))
        One past the highest word address written so far.

    Attributes
    ----------
    staging : Staging
        The buffers it builds.
    """

    def __init__(self, targets, stages, *, bus_bytes, addr_width, count_width, max_burst):
        self._targets = dict(targets)
        self._stages = tuple(stages)
        self._bus_bytes = bus_bytes
        self._max_burst = max_burst
        self._staging = staging(self._stages, bus_bytes)
        members = {
            "start": In(1),
            "stage": In(range(max(1, len(self._stages)))),
            "clear": In(1),
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

    @property
    def staging(self):
        return self._staging

    def elaborate(self, platform):
        m = Module()
        starting = Signal()
        m.d.comb += starting.eq(self.start & ~self.busy)
        requesting = self._requests(m, starting)
        W = self._bus_bytes
        segments = [s for st in self._stages for s in st.segments]
        stage_of = [s for s, st in enumerate(self._stages) for _ in st.segments]
        firsts, index = [], 0
        for st in self._stages:
            firsts.append(index)
            index += len(st.segments)
        starts = []                      # each segment's first byte within its stage
        for st in self._stages:
            pos = 0
            for s in st.segments:
                starts.append(pos)
                pos += s.count * s.nbytes
        most = max([st.words for st in self._stages], default=0)

        active = Signal()
        m.d.comb += self.busy.eq(active | requesting)
        beats = Signal(range(most + 2), name="beats")     # bus words taken in this stage
        took = Signal()
        m.d.comb += took.eq(self.read_data.valid & self.read_data.ready)
        with m.If(took):
            m.d.sync += beats.eq(beats + 1)

        # The writer walks the words in order: segment, word, where the word starts (bus word
        # ``w_first``, byte ``w_offset`` in it), the bus word it ends in and whether it is
        # assembled in a slot, all registers.
        position = dict(shape=range(most + 2))
        w_seg = Signal(range(max(1, len(segments))), name="w_segment")
        w_left = Signal(range(max([s.count for s in segments], default=1)), name="w_left")
        w_addr = Signal(range(max([s.base + s.count for s in segments], default=1) + 1),
                        name="w_addr")
        w_first = Signal(**position, name="w_first")
        w_offset = Signal(range(W), name="w_offset")
        w_last = Signal(**position, name="w_last")
        w_wide = Signal(name="w_wide")
        E = self._staging.ring
        # The ring may take bus word ``beats`` while it is below ``limit``: the first bus word
        # the oldest unwritten word needs, plus the ring's size. Both are registers a cycle
        # behind the writer's, and ``ring_room`` makes the test a cycle early (``beats + 1``),
        # so the bus's ready comes from registers alone.
        limit = Signal(range(most + E + 2), name="limit")
        ring_room = Signal(init=1, name="ring_room")
        if E:
            m.d.sync += [limit.eq(Mux(w_wide, w_last, w_first) + E),
                         ring_room.eq(beats + 1 < limit)]

        wrote = Signal()
        slot_data, slot_room = self._slots(m, segments, starts, stage_of, starting, took, beats,
                                           wrote & w_wide)
        window = self._ring(m, took, beats, w_first)
        # A word's bytes start at its offset in the slot or the window: a constant for a
        # segment whose words all start at one offset, else a shift by ``w_offset`` (shared).
        def moving(i):
            s = segments[i]
            return s.count > 1 and s.nbytes % W != 0
        shifted = {}
        for wide in (False, True):
            widths = [s.nbytes for i, s in enumerate(segments)
                      if moving(i) and (s.nbytes > W) == wide]
            if widths:
                source = slot_data if wide else window
                shifted[wide] = Signal(8 * max(widths), name="slot_shifted" if wide else
                                       "window_shifted")
                m.d.comb += shifted[wide].eq(source >> (w_offset * 8))

        def word_data(i):
            """``(key, value)``: segment ``i``'s word, and a key equal for equal values."""
            s = segments[i]
            wide = s.nbytes > W
            if moving(i):
                return ("shifted", wide, s.nbytes), shifted[wide][:8 * s.nbytes]
            offset = starts[i] % W
            source = slot_data if wide else window
            return (wide, offset, s.nbytes), source[8 * offset:8 * (offset + s.nbytes)]
        m.d.comb += self.read_data.ready.eq(active & slot_room & ring_room)

        names = list(self._targets)
        target = {name: getattr(self, name) for name in names}
        for port in target.values():
            m.d.comb += [port.valid.eq(0), port.payload.addr.eq(w_addr)]
        # A target's data is read only with its valid: the segments writing it choose among
        # their distinct words, the most common one by default.
        for t, name in enumerate(names):
            choices = {}
            for i, s in enumerate(segments):
                if t in (s.target, *s.also):
                    key, value = word_data(i)
                    choices.setdefault(key, (value, []))[1].append(i)
            if not choices:
                continue
            data = target[name].payload.data.as_value()
            ranked = sorted(choices.values(), key=lambda c: -len(c[1]))
            if len(ranked) == 1:
                m.d.comb += data.eq(ranked[0][0])
                continue
            with m.Switch(w_seg):
                for value, indices in ranked[1:]:
                    with m.Case(*indices):
                        m.d.comb += data.eq(value)
                with m.Default():
                    m.d.comb += data.eq(ranked[0][0])
        complete = Signal()
        m.d.comb += complete.eq(active & (beats > w_last))
        fanout = max([1 + len(s.also) for s in segments], default=1)
        taken = Signal(fanout, name="taken")        # broadcast targets that took the word
        now = Signal(fanout, name="now")            # ... and those taking it this cycle
        with m.If(wrote):
            m.d.sync += taken.eq(0)
        with m.Else():
            m.d.sync += taken.eq(taken | now)

        def follow(segment, first, offset, same=False):
            """The registers' next values for a word of ``segment`` at ``first``/``offset``
            (the first of the segment unless ``same``)."""
            n = segment.nbytes
            wide = n > W
            last = Signal.like(w_last, name="next_last")
            m.d.comb += last.eq(_last_bus_word(first, offset, n, W))
            statements = [w_last.eq(last), w_wide.eq(wide)]
            if not same:
                statements += [w_left.eq(segment.count - 1), w_addr.eq(segment.base)]
            return statements

        n_first = Signal.like(w_first, name="next_first")
        n_offset = Signal.like(w_offset, name="next_offset")
        with m.Switch(w_seg):
            for i, s in enumerate(segments):
                with m.Case(i):
                    written = []
                    for n, t in enumerate((s.target, *s.also)):
                        port = target[names[t]]
                        m.d.comb += [
                            port.valid.eq(complete & ~taken[n]),
                            now[n].eq(port.valid & port.ready),
                        ]
                        written.append(taken[n] | now[n])
                    following = _next_word(w_first, w_offset, s.nbytes, W)
                    m.d.comb += [
                        wrote.eq(Cat(*written).all()),
                        n_first.eq(following[0]),
                        n_offset.eq(following[1]),
                    ]
                    last_segment = i + 1 == len(segments) or i + 1 in firsts
                    with m.If(wrote):
                        for t in (s.target, *s.also):
                            m.d.sync += getattr(self, f"{names[t]}_level").eq(w_addr + 1)
                        m.d.sync += [w_first.eq(n_first), w_offset.eq(n_offset)]
                        with m.If(w_left == 0):
                            m.d.sync += w_seg.eq(i + 1)
                            if last_segment:
                                m.d.sync += active.eq(0)
                            else:
                                m.d.sync += follow(segments[i + 1], n_first, n_offset)
                        with m.Else():
                            m.d.sync += [w_left.eq(w_left - 1), w_addr.eq(w_addr + 1),
                                         *follow(s, n_first, n_offset, same=True)]

        # A start (only while idle) overrides the updates above; stage 0 starts a new run.
        with m.If(self.clear | (starting & (self.stage == 0))):
            m.d.sync += [getattr(self, f"{name}_level").eq(0) for name in names]
        with m.If(starting):
            m.d.sync += [beats.eq(0), w_first.eq(0), w_offset.eq(0), taken.eq(0),
                         ring_room.eq(1), limit.eq(E)]
            with m.Switch(self.stage):
                for s, st in enumerate(self._stages):
                    with m.Case(s):
                        m.d.sync += [w_seg.eq(firsts[s]), active.eq(len(st.segments) > 0)]
                        if st.segments:
                            m.d.sync += follow(st.segments[0], 0, 0)
        return m

    def _requests(self, m, starting):
        """Burst requests for the started stage's bus words; the first goes out in the cycle of
        ``start`` (``starting``). Returns a signal high while words remain to be requested."""
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
        requesting = Signal()
        m.d.comb += requesting.eq(req_left != 0)
        return requesting

    def _slots(self, m, segments, starts, stage_of, starting, took, beats, wrote_wide):
        """The slots of the words wider than a bus word, and the walk that fills them: a bus
        word taken in the span of the word being assembled lands in its next group; one that
        ends a word and starts the next lands in both. Returns the contents of the slot the
        writer is at (``wrote_wide`` moves it on) and a signal high while a word may begin."""
        W, D, G = self._bus_bytes, self._staging.slots, self._staging.groups
        slot_data = Signal(8 * W * max(G, 1), name="slot_data")
        room = Signal()
        if D == 0:
            m.d.comb += room.eq(1)
            return slot_data, room
        beat = self.read_data.payload.data
        wide = [i for i, s in enumerate(segments) if s.nbytes > W]
        position = dict(shape=len(beats))

        def locate(i, first, offset, last):
            """Statements putting segment ``i``'s first word at ``first``/``offset``/``last``."""
            n = segments[i].nbytes
            f, o = divmod(starts[i], W)
            return [first.eq(f), offset.eq(o), last.eq(_last_bus_word(f, o, n, W))]

        # The word being assembled, and the one after it.
        a_ws = Signal(range(len(wide)), name="a_segment")
        a_left = Signal(range(max(segments[i].count for i in wide)), name="a_left")
        a_first, a_last = Signal(**position, name="a_first"), Signal(**position, name="a_last")
        a_offset = Signal(range(W), name="a_offset")
        a_slot = Signal(range(D), name="a_slot")
        a_begun = Signal(name="a_begun")
        a_group = Signal(range(G + 1), name="a_group")
        a_done = Signal(name="a_done")
        n_exists = Signal(name="next_exists")
        n_ws = Signal.like(a_ws, name="next_segment")
        n_left = Signal.like(a_left, name="next_left")
        n_first, n_last = Signal(**position, name="next_first"), Signal(**position, name="next_last")
        n_offset = Signal.like(a_offset, name="next_offset")
        with m.Switch(a_ws):
            for k, i in enumerate(wide):
                s = segments[i]
                with m.Case(k):
                    with m.If(a_left != 0):
                        first, offset = _next_word(a_first, a_offset, s.nbytes, W)
                        m.d.comb += [
                            n_exists.eq(1), n_ws.eq(k), n_left.eq(a_left - 1),
                            n_first.eq(first), n_offset.eq(offset),
                            n_last.eq(_last_bus_word(first, offset, s.nbytes, W)),
                        ]
                    if k + 1 < len(wide) and stage_of[wide[k + 1]] == stage_of[i]:
                        with m.Else():
                            m.d.comb += [n_exists.eq(1), n_ws.eq(k + 1),
                                         n_left.eq(segments[wide[k + 1]].count - 1),
                                         *locate(wide[k + 1], n_first, n_offset, n_last)]

        group = Signal.like(a_group, name="group")
        hit, ends, begins_next = Signal(), Signal(), Signal()
        next_slot = Signal.like(a_slot, name="next_slot")
        m.d.comb += [
            group.eq(Mux(a_begun, a_group, 0)),
            hit.eq(~a_done & (a_begun | (beats == a_first))),
            ends.eq(hit & (beats == a_last)),
            begins_next.eq(ends & n_exists & (n_first == beats)),
            next_slot.eq(Mux(a_slot == D - 1, 0, a_slot + 1)),
        ]
        slots = [Signal(8 * W * G, name=f"slot{d}") for d in range(D)]
        for d, slot in enumerate(slots):
            for g in range(G):
                into = hit & (a_slot == d) & (group == g)
                if g == 0:
                    into = into | (begins_next & (next_slot == d))
                with m.If(took & into):
                    m.d.sync += slot.word_select(g, 8 * W).eq(beat)
        with m.If(took & ends):
            m.d.sync += [a_ws.eq(n_ws), a_left.eq(n_left), a_first.eq(n_first),
                         a_offset.eq(n_offset), a_last.eq(n_last), a_done.eq(~n_exists),
                         a_slot.eq(next_slot), a_begun.eq(begins_next), a_group.eq(begins_next)]
        with m.Elif(took & hit):
            m.d.sync += [a_begun.eq(1), a_group.eq(group + 1)]

        # Words begun and not yet written; a bus word is taken only while a slot is free.
        in_flight = Signal(range(D + 1), name="in_flight")
        begun = Signal()
        m.d.comb += [begun.eq(took & ((hit & ~a_begun) | begins_next)),
                     room.eq(in_flight < D)]
        m.d.sync += in_flight.eq(in_flight + begun - wrote_wide)
        w_slot = Signal(range(D), name="w_slot")
        with m.If(wrote_wide):
            m.d.sync += w_slot.eq(Mux(w_slot == D - 1, 0, w_slot + 1))
        with m.Switch(w_slot):
            for d, slot in enumerate(slots):
                with m.Case(d):
                    m.d.comb += slot_data.eq(slot)

        with m.If(starting):
            m.d.sync += [a_slot.eq(0), a_begun.eq(0), a_group.eq(0), in_flight.eq(0),
                         w_slot.eq(0), a_done.eq(1)]
            with m.Switch(self.stage):
                for s in range(len(self._stages)):
                    mine = [k for k, i in enumerate(wide) if stage_of[i] == s]
                    if mine:
                        with m.Case(s):
                            m.d.sync += [a_ws.eq(mine[0]), a_done.eq(0),
                                         a_left.eq(segments[wide[mine[0]]].count - 1),
                                         *locate(wide[mine[0]], a_first, a_offset, a_last)]
        return slot_data, room

    def _ring(self, m, took, beats, first):
        """The ring of the last bus words, from which words no wider than a bus word are read:
        returns the two bus words from ``first`` on."""
        W, E = self._bus_bytes, self._staging.ring
        window = Signal(16 * W, name="window")
        if E == 0:
            return window
        bits = ceil_log2(E)
        m.submodules.ring = ring = memory.Memory(shape=unsigned(8 * W), depth=E, init=[])
        write = ring.write_port()
        reads = [ring.read_port(domain="comb") for _ in range(2)]
        m.d.comb += [
            write.addr.eq(beats[:bits]), write.data.eq(self.read_data.payload.data),
            write.en.eq(took),
            reads[0].addr.eq(first[:bits]), reads[1].addr.eq((first + 1)[:bits]),
            window.eq(Cat(reads[0].data, reads[1].data)),
        ]
        return window
