"""Byte accesses (the host link's memory ports) on a word-wide off-chip memory port."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from intar_hw.hw.offchip import BurstBeat, BurstRequest
from intar_hw.hw.scratchpad import ReadPortSignature, WriteRequest


__all__ = ["ByteBridge"]


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"ByteBridge {name} must be an integer from {low} to {high}, "
                        f"not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"ByteBridge {name} must be an integer from {low} to {high}, "
                         f"not {value!r}")


class ByteBridge(wiring.Component):
    """Serves byte reads and writes from an :class:`~intar_hw.hw.offchip.OffchipPort`'s streams.

    Byte address ``a`` is lane ``a % bus_bytes`` (bits ``8 * lane`` up) of word
    ``a // bus_bytes``: a word's bytes are little-endian, as in
    :meth:`~intar_hw.compose.layout.Plan.offchip_image`. One access at a time, writes first:

    * **Write** (read-modify-write): a one-word burst read of the word, the byte merged into its
      lane, the word written back; ``byte_write`` is taken (``ready`` high, a register-driven
      state decode) in the cycle after the word write was transferred, so a byte counts as
      taken only once the memory holds it. ``byte_write.payload`` must stay stable while
      ``valid`` (the stream rules; :class:`~intar_hw.link.HostLink` drives registers).
    * **Read**: the request is taken at once (its address latched), then a one-word burst read;
      the byte is on ``byte_read.resp`` (a register) until taken.
    * No word stream is touched between accesses, and each access ends with its read data taken,
      so the port can be handed to another user (see :class:`.BoardTop`) whenever the bridge's
      byte streams are idle.

    Parameters
    ----------
    word_addr_width : int
        Width of word addresses on ``read_req`` and ``write``, 1 to 32.
    count_width : int
        Width of ``read_req.payload.count``, at least 1 (a request asks for ``count = 1``).
    bus_bytes : int
        Bytes per word, a power of two from 1 to 256.

    Members
    -------
    byte_write : In(stream.Signature(WriteRequest(addr_width, 8)))
        Bytes to store.
    byte_read : In(ReadPortSignature(addr_width, 8))
        Byte reads.
    read_req : Out(stream.Signature(BurstRequest(word_addr_width, count_width)))
        Word reads, one word each.
    read_data : In(stream.Signature(BurstBeat(unsigned(8 * bus_bytes))))
        The words read.
    write : Out(stream.Signature(WriteRequest(word_addr_width, unsigned(8 * bus_bytes))))
        Words to store.

    Attributes
    ----------
    addr_width : int
        Width of byte addresses: ``word_addr_width + log2(bus_bytes)``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range or ``bus_bytes`` is not a power of two.
    """

    def __init__(self, word_addr_width, count_width, bus_bytes):
        _check_int("word_addr_width", word_addr_width, 1, 32)
        _check_int("count_width", count_width, 1, 32)
        _check_int("bus_bytes", bus_bytes, 1, 256)
        if bus_bytes & (bus_bytes - 1):
            raise ValueError(f"ByteBridge bus_bytes must be a power of two, not {bus_bytes!r}")
        self._word_addr_width = word_addr_width
        self._count_width = count_width
        self._bus_bytes = bus_bytes
        word = unsigned(8 * bus_bytes)
        super().__init__({
            "byte_write": In(stream.Signature(WriteRequest(self.addr_width, 8))),
            "byte_read": In(ReadPortSignature(self.addr_width, 8)),
            "read_req": Out(stream.Signature(BurstRequest(word_addr_width, count_width))),
            "read_data": In(stream.Signature(BurstBeat(word))),
            "write": Out(stream.Signature(WriteRequest(word_addr_width, word))),
        })

    @property
    def word_addr_width(self):
        return self._word_addr_width

    @property
    def count_width(self):
        return self._count_width

    @property
    def bus_bytes(self):
        return self._bus_bytes

    @property
    def addr_width(self):
        return self._word_addr_width + ceil_log2(self._bus_bytes)

    def elaborate(self, platform):
        m = Module()
        lane_bits = ceil_log2(self._bus_bytes)

        word_addr = Signal(self._word_addr_width)
        lane = Signal(range(self._bus_bytes))
        merged = Signal(8 * self._bus_bytes)
        m.d.comb += [
            self.read_req.payload.addr.eq(word_addr),
            self.read_req.payload.count.eq(1),
            self.write.payload.addr.eq(word_addr),
            self.write.payload.data.eq(merged),
        ]

        def read_lane(word):
            """The byte in ``lane`` of ``word``."""
            return word.word_select(lane, 8) if lane_bits else word

        with m.FSM():
            with m.State("IDLE"):
                byte_addr = Mux(self.byte_write.valid, self.byte_write.payload.addr,
                                self.byte_read.req.payload.addr)
                m.d.sync += [word_addr.eq(byte_addr[lane_bits:]), lane.eq(byte_addr[:lane_bits])]
                with m.If(self.byte_write.valid):
                    m.next = "WRITE_REQ"
                with m.Elif(self.byte_read.req.valid):
                    m.d.comb += self.byte_read.req.ready.eq(1)
                    m.next = "READ_REQ"

            with m.State("WRITE_REQ"):
                m.d.comb += self.read_req.valid.eq(1)
                with m.If(self.read_req.ready):
                    m.next = "WRITE_MERGE"

            with m.State("WRITE_MERGE"):
                m.d.comb += self.read_data.ready.eq(1)
                with m.If(self.read_data.valid):
                    old = self.read_data.payload.data
                    m.d.sync += merged.eq(Cat(
                        Mux(lane == k, self.byte_write.payload.data, old[8 * k:8 * k + 8])
                        for k in range(self._bus_bytes)))
                    m.next = "WRITE_PUT"

            with m.State("WRITE_PUT"):
                m.d.comb += self.write.valid.eq(1)
                with m.If(self.write.ready):
                    m.next = "WRITE_TAKE"

            with m.State("WRITE_TAKE"):
                m.d.comb += self.byte_write.ready.eq(1)
                m.next = "IDLE"

            with m.State("READ_REQ"):
                m.d.comb += self.read_req.valid.eq(1)
                with m.If(self.read_req.ready):
                    m.next = "READ_DATA"

            with m.State("READ_DATA"):
                m.d.comb += self.read_data.ready.eq(1)
                with m.If(self.read_data.valid):
                    m.d.sync += self.byte_read.resp.payload.data.eq(
                        read_lane(self.read_data.payload.data))
                    m.next = "READ_RESP"

            with m.State("READ_RESP"):
                m.d.comb += self.byte_read.resp.valid.eq(1)
                with m.If(self.byte_read.resp.ready):
                    m.next = "IDLE"

        return m
