import math
import numbers
from fractions import Fraction

from amaranth import *
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from .scratchpad import WriteRequest, _check_init, _check_positive, _check_shape
from ..integers import cdiv


__all__ = ["BurstRequest", "BurstBeat", "OffchipPort", "transfer_cycles", "load", "read_back"]


class BurstRequest(data.StructLayout):
    """Payload of a read request: ``addr`` of the first word and ``count`` words to read.

    A ``count`` of 0 reads one word, like a ``count`` of 1.
    """

    def __init__(self, addr_width, count_width):
        super().__init__({"addr": unsigned(addr_width), "count": unsigned(count_width)})


class BurstBeat(data.StructLayout):
    """Payload of read data: ``data``, one word of ``shape``, and ``last``, set on a burst's end."""

    def __init__(self, shape):
        super().__init__({"data": shape, "last": unsigned(1)})


def transfer_cycles(words, *, bytes_per_word, bandwidth, latency, write=False):
    """Cycles an :class:`OffchipPort` with these parameters takes to move ``words`` words.

    Plain arithmetic with no Amaranth objects, for cost models. For a read, the count runs from
    the cycle the request is first presented to an idle port up to and including the cycle the
    last data beat is presented: ``ceil(words * bytes_per_word / bandwidth) + latency``. For a
    write, from the cycle the first word is presented to the cycle the last word is taken:
    ``ceil(words * bytes_per_word / bandwidth)``. Both hold when the streams never idle and the
    read data sink is always ready; requests presented back to back add up as one long burst.
    """
    if words == 0:
        return 0
    bandwidth = Fraction(repr(bandwidth)) if isinstance(bandwidth, float) else Fraction(bandwidth)
    cycles = math.ceil(Fraction(words * bytes_per_word) / bandwidth)
    return cycles if write else cycles + latency


class OffchipPort(wiring.Component):
    """A simulation model of off-chip memory with a bandwidth and a latency.

    A board replaces it with its SDRAM controller behind the same signature; simulations and the
    cost model use it as the reference for off-chip timing.

    Contract:

    * **One bus.** Reads and writes share one data bus moving at most one word per cycle and
      ``bandwidth`` bytes per cycle on average. A word costs ``bytes_per_word`` bytes of
      bandwidth. The bus earns ``bandwidth`` bytes of credit in every cycle in which a word is
      waiting to move (a read word with room for its data, or a write); a word moves in the first
      cycle its credit is complete, keeping the remainder. Credit is not banked across idle
      cycles: after an idle cycle it restarts from zero.
    * **Reads.** A request (``addr``, ``count``) is accepted in the cycle its first word moves;
      its words then move in order, one per credited cycle, and come out on ``read_data`` in
      order with ``last`` on the final one. A burst is atomic: no write moves while it runs.
      Several bursts may be in flight; the port stops moving read words while ``latency + 1``
      words are read but not yet taken, so backpressure on ``read_data`` never drops data.
    * **Latency.** The first data beat of a request is valid exactly ``latency`` cycles after the
      request is transferred (later only if ``read_data`` is still backed up). At
      ``bandwidth == bytes_per_word`` every word moves at once, so a burst of ``n`` words
      presented to an idle port ends ``n + latency - 1`` cycles after the request was presented;
      in general see :func:`transfer_cycles`.
    * **Writes.** A write is transferred in the cycle its word moves, and takes effect then: every
      read word moving in a later cycle sees it. In particular a read request accepted after a
      write sees that write, for its whole burst.
    * **Arbitration.** When a read request (or burst) and a write are both waiting, the port
      alternates: after a read request it lets one write go first, after a write one read request.
    * Bursts must stay within ``depth`` words; addresses at or past ``depth`` are unspecified.

    Parameters
    ----------
    shape : shape-like
        Shape of one word.
    depth : int
        Number of words.
    bandwidth : int, float or Fraction
        Average bytes moved per cycle, greater than 0 and at most ``bytes_per_word`` (the bus moves
        at most one word per cycle). Floats are read through their decimal form (``0.1`` is
        1/10). Stored as a :class:`~fractions.Fraction`.
    latency : int
        Cycles from a read request's transfer to its first data beat, at least 2 (one to read the
        memory, one to buffer the data).
    max_burst : int
        Largest ``count`` of a read request, at least 1.
    init : iterable of words
        Initial contents from address 0, at most ``depth`` words; the rest are zero.

    Members
    -------
    read_req : In(stream.Signature(BurstRequest(addr_width, count_width)))
        Read requests: ``addr`` of the first word, ``count`` words.
    read_data : Out(stream.Signature(BurstBeat(shape)))
        Words read (``data``), ``last`` set on the final word of each request.
    write : In(stream.Signature(WriteRequest(addr_width, shape)))
        Words to store (``addr``, ``data``).

    Attributes
    ----------
    bytes_per_word : int
        ``ceil(width / 8)``.
    size_bytes : int
        ``depth * bytes_per_word``.
    addr_width, count_width : int
        ``ceil_log2(depth)`` and ``bits_for(max_burst)``.

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable, ``bandwidth`` is not a real number, a count is not an
        integer or ``init`` is not iterable.
    ValueError
        If ``shape`` is 0 bits wide, ``bandwidth`` is not positive or exceeds one word per cycle,
        ``latency`` is below 2, a count is out of range, or ``init`` does not fit.

    Notes
    -----
    Preload contents with ``init``; after (or during) a simulation read them with
    :func:`read_back` or change them with :func:`load`.
    """

    def __init__(self, shape, depth, *, bandwidth, latency, max_burst=256, init=()):
        _check_shape("OffchipPort", shape)
        _check_positive("OffchipPort", "depth", depth)
        bytes_per_word = (Shape.cast(shape).width + 7) // 8
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (numbers.Rational, float)):
            raise TypeError(f"OffchipPort bandwidth must be a positive number of bytes per cycle, "
                            f"not {bandwidth!r}")
        if isinstance(bandwidth, float) and not math.isfinite(bandwidth):
            raise ValueError(f"OffchipPort bandwidth must be a positive number of bytes per "
                             f"cycle, not {bandwidth!r}")
        value = Fraction(repr(bandwidth)) if isinstance(bandwidth, float) else Fraction(bandwidth)
        if value <= 0:
            raise ValueError(f"OffchipPort bandwidth must be a positive number of bytes per "
                             f"cycle, not {bandwidth!r}")
        if value > bytes_per_word:
            raise ValueError(f"OffchipPort bandwidth must be at most one word ({bytes_per_word} "
                             f"bytes for shape {shape!r}) per cycle, not {bandwidth!r}")
        if not isinstance(latency, int) or isinstance(latency, bool):
            raise TypeError(f"OffchipPort latency must be an integer of at least 2, "
                            f"not {latency!r}")
        if latency < 2:
            raise ValueError(f"OffchipPort latency must be an integer of at least 2, "
                             f"not {latency!r}")
        _check_positive("OffchipPort", "max_burst", max_burst)
        self._init = _check_init("OffchipPort", shape, depth, init)
        self._shape = shape
        self._depth = depth
        self._bandwidth = value
        self._latency = latency
        self._max_burst = max_burst
        self._storage = None
        super().__init__({
            "read_req": In(stream.Signature(BurstRequest(self.addr_width, self.count_width))),
            "read_data": Out(stream.Signature(BurstBeat(shape))),
            "write": In(stream.Signature(WriteRequest(self.addr_width, shape))),
        })

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self):
        return self._depth

    @property
    def bandwidth(self):
        return self._bandwidth

    @property
    def latency(self):
        return self._latency

    @property
    def max_burst(self):
        return self._max_burst

    @property
    def init(self):
        return self._init

    @property
    def addr_width(self):
        return ceil_log2(self._depth)

    @property
    def count_width(self):
        return bits_for(self._max_burst)

    @property
    def bytes_per_word(self):
        return (Shape.cast(self._shape).width + 7) // 8

    @property
    def size_bytes(self):
        return self._depth * self.bytes_per_word

    def transfer_cycles(self, words, *, write=False):
        """:func:`transfer_cycles` for this port's parameters."""
        return transfer_cycles(words, bytes_per_word=self.bytes_per_word,
                               bandwidth=self._bandwidth, latency=self._latency, write=write)

    def cycles_for(self, nbytes, *, write=False):
        """Cycles to move ``nbytes`` bytes, rounded up to whole words (see :func:`transfer_cycles`).
        """
        return self.transfer_cycles(cdiv(nbytes, self.bytes_per_word), write=write)

    def elaborate(self, platform):
        m = Module()

        # The storage is kept on the instance so that testbenches can load and read it back.
        self._storage = storage = memory.Memory(shape=self._shape, depth=self._depth,
                                                init=self._init)
        m.submodules.storage = storage
        mem_read = storage.read_port()
        mem_write = storage.write_port()

        # Bandwidth: credit in units of 1/denominator bytes; a word costs cost units.
        earn = self._bandwidth.numerator
        cost = self.bytes_per_word * self._bandwidth.denominator
        credit = Signal(range(cost))
        available = Signal(range(cost + earn))
        can_move = Signal()
        m.d.comb += [
            available.eq(credit + earn),
            can_move.eq(available >= cost),
        ]

        # Read words taken from memory but not yet transferred on read_data, bounded by the
        # output queue so that words in the delay line always find room.
        buffer_depth = self._latency + 1
        outstanding = Signal(range(buffer_depth + 1))
        room = Signal()
        m.d.comb += room.eq(outstanding < buffer_depth)

        remaining = Signal(range(self._max_burst))      # words of the current burst still to move
        next_addr = Signal(self.addr_width)
        bursting = Signal()
        m.d.comb += bursting.eq(remaining != 0)

        prefer_write = Signal()
        read_wants = Signal()
        write_wants = Signal()
        pick_write = Signal()
        move_read = Signal()
        move_write = Signal()
        m.d.comb += [
            read_wants.eq(room & (bursting | self.read_req.valid)),
            write_wants.eq(~bursting & self.write.valid),
            pick_write.eq(write_wants & (~read_wants | prefer_write)),
            move_read.eq(read_wants & ~pick_write & can_move),
            move_write.eq(pick_write & can_move),
            self.read_req.ready.eq(move_read & ~bursting),
            self.write.ready.eq(move_write),
        ]

        with m.If(move_read | move_write):
            m.d.sync += credit.eq(available - cost)
        with m.Elif(read_wants | write_wants):
            m.d.sync += credit.eq(available)
        with m.Else():
            m.d.sync += credit.eq(0)

        # Read issue: the first word comes straight from the request, the rest from the counter.
        count = self.read_req.payload.count
        word_last = Signal()
        with m.If(bursting):
            m.d.comb += [
                mem_read.addr.eq(next_addr),
                word_last.eq(remaining == 1),
            ]
        with m.Else():
            m.d.comb += [
                mem_read.addr.eq(self.read_req.payload.addr),
                word_last.eq(count <= 1),
            ]
        m.d.comb += mem_read.en.eq(move_read)
        with m.If(move_read):
            m.d.sync += next_addr.eq(mem_read.addr + 1)
            with m.If(bursting):
                m.d.sync += remaining.eq(remaining - 1)
            with m.Elif(count > 1):
                m.d.sync += [remaining.eq(count - 1), prefer_write.eq(1)]
            with m.Else():
                m.d.sync += prefer_write.eq(1)
        with m.If(move_write):
            m.d.sync += prefer_write.eq(0)

        m.d.comb += [
            mem_write.en.eq(move_write),
            mem_write.addr.eq(self.write.payload.addr),
            mem_write.data.eq(self.write.payload.data),
        ]

        # Latency: 1 cycle of memory read, latency - 2 register stages, 1 cycle of output FIFO.
        valid = Signal(name="stage_0_valid")
        last = Signal(name="stage_0_last")
        m.d.sync += [valid.eq(move_read), last.eq(word_last)]
        word = mem_read.data
        for stage in range(1, self._latency - 1):
            next_valid = Signal(name=f"stage_{stage}_valid")
            next_last = Signal(name=f"stage_{stage}_last")
            next_word = Signal(self._shape, name=f"stage_{stage}_data")
            m.d.sync += [next_valid.eq(valid), next_last.eq(last), next_word.eq(word)]
            valid, last, word = next_valid, next_last, next_word

        # An unbuffered FIFO (asynchronous read) shows a word the cycle after it is written.
        beat = Signal(BurstBeat(self._shape))
        m.submodules.output = output = fifo.SyncFIFO(width=Shape.cast(beat.shape()).width,
                                                     depth=buffer_depth)
        m.d.comb += [
            beat.data.eq(word),
            beat.last.eq(last),
            output.w_data.eq(beat.as_value()),
            output.w_en.eq(valid),
            self.read_data.valid.eq(output.r_rdy),
            self.read_data.payload.eq(output.r_data),
            output.r_en.eq(self.read_data.ready),
        ]

        taken = self.read_data.valid & self.read_data.ready
        m.d.sync += outstanding.eq(outstanding + move_read - taken)

        return m


def _storage_of(port):
    if not isinstance(port, OffchipPort):
        raise TypeError(f"Expected an OffchipPort, not {port!r}")
    if port._storage is None:
        raise RuntimeError("The OffchipPort has not been elaborated; simulate it first")
    return port._storage


def read_back(ctx, port, start=0, count=None):
    """Read words ``start .. start + count - 1`` (default: to the end) of ``port``'s memory.

    Call from a testbench (``ctx`` is the simulator context) during or after a simulation. Returns
    ``int`` words for plain shapes and :class:`amaranth.lib.data.Const` for layouts.
    """
    storage = _storage_of(port)
    count = port.depth - start if count is None else count
    return [ctx.get(storage.data[addr]) for addr in range(start, start + count)]


def load(ctx, port, words, start=0):
    """Overwrite ``port``'s memory from address ``start`` with ``words`` during a simulation."""
    storage = _storage_of(port)
    for offset, word in enumerate(words):
        ctx.set(storage.data[start + offset], word)
