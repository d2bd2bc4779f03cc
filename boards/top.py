"""A board's design, technology-independent: host link, off-chip memory and accelerator."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from intar_hw.compose.accelerator import Accelerator
from intar_hw.hw.uart import check_divisor
from intar_hw.link import HostLink, frames
from intar_hw.sim import offchip_memory

from .byte_bridge import ByteBridge


__all__ = ["BoardTop"]


class BoardTop(wiring.Component):
    """An accelerator, its off-chip memory in block RAM and a :class:`~intar_hw.link.HostLink`.

    The off-chip memory is an :class:`~intar_hw.hw.offchip.OffchipPort` of ``acc.offchip_words``
    words (at least 2) of ``8 * acc.bus_bytes`` bits with the schedule budget's bandwidth and
    latency (a latency below 2 raised to 2), as :func:`intar_hw.simulate` uses: the accelerator
    sees the timing its schedule assumed, so a run takes the cycles ``simulate`` measures.

    The link reaches the same memory through a :class:`.ByteBridge` (a read-modify-write of one
    word per byte written): byte address ``a`` is byte ``a % bus_bytes`` (little-endian) of word
    ``a // bus_bytes``, so the host writes :meth:`~intar_hw.compose.layout.Plan.offchip_image`
    as little-endian bytes from address 0 and reads the outputs from byte
    ``output_base * bus_bytes``. Addresses wrap modulo ``2 ** link.addr_width``; bytes of words
    at or past ``offchip_words`` are unspecified.

    The memory belongs to the accelerator from the cycle the link's ``start`` pulse is high to
    the cycle of the accelerator's ``done``, included; the link's memory accesses wait meanwhile
    (a host polls ``STATUS`` until done before reading). The link's ``start`` drives the
    accelerator's; its cycle counter therefore counts from the cycle ``start`` is high (0) to
    the cycle ``done`` is high, which is what :attr:`intar_hw.sim.SimResult.cycles` counts.

    Parameters
    ----------
    acc : Accelerator
        Built with ``offchip=True``; its ``bus_bytes`` must be a power of two.
    divisor : int
        Clock cycles per bit on the serial line, at least 4 (``round(clock / baud)``).
    max_payload : int
        The link's largest ``WRITE`` or ``READ`` (:class:`~intar_hw.link.HostLink`).

    Members
    -------
    rx : In(1)
        Serial line from the host, idle high.
    tx : Out(1)
        Serial line to the host, idle high.
    busy : Out(1)
        The accelerator's ``busy``.
    done : Out(1)
        High once the accelerator has finished, until the next ``START`` (for an LED).

    Attributes
    ----------
    acc : Accelerator
    divisor, max_payload : int
    memory_words : int
        Words of the off-chip memory: ``acc.offchip_words``, at least 2.
    addr_width : int
        Width of the link's byte addresses: ``ceil_log2(memory_words) + log2(bus_bytes)``.
    memory : OffchipPort or None
        The off-chip memory of the last elaboration (for
        :func:`~intar_hw.hw.offchip.read_back` in simulations); None before.

    Raises
    ------
    TypeError
        If ``acc`` is not an Accelerator, or ``divisor`` or ``max_payload`` not an integer.
    ValueError
        If ``acc`` was built with ``offchip=False`` or its ``bus_bytes`` is not a power of two,
        or ``divisor`` or ``max_payload`` is out of range.
    """

    def __init__(self, acc, divisor, *, max_payload=frames.MAX_PAYLOAD):
        if not isinstance(acc, Accelerator):
            raise TypeError(f"BoardTop accelerator must be an Accelerator from build(), "
                            f"not {acc!r}")
        if not acc.offchip:
            raise ValueError("BoardTop accelerator must be built with offchip=True, not False")
        if acc.bus_bytes & (acc.bus_bytes - 1):
            raise ValueError(f"BoardTop accelerator bus_bytes must be a power of two, "
                             f"not {acc.bus_bytes!r}")
        check_divisor("BoardTop", divisor)
        frames.check_max_payload("BoardTop", max_payload)
        self._acc = acc
        self._divisor = divisor
        self._max_payload = max_payload
        self._memory = None
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "busy": Out(1),
            "done": Out(1),
        })

    @property
    def acc(self):
        return self._acc

    @property
    def divisor(self):
        return self._divisor

    @property
    def max_payload(self):
        return self._max_payload

    @property
    def memory_words(self):
        return max(2, self._acc.offchip_words)

    @property
    def addr_width(self):
        return ceil_log2(self.memory_words) + ceil_log2(self._acc.bus_bytes)

    @property
    def memory(self):
        return self._memory

    def elaborate(self, platform):
        m = Module()
        acc = self._acc
        # Kept on the instance (the last one elaborated) for read_back in simulations.
        self._memory = memory = offchip_memory(acc)
        bridge = ByteBridge(memory.addr_width, memory.count_width, acc.bus_bytes)
        link = HostLink(self._divisor, self.addr_width, self._max_payload)
        m.submodules.acc = acc
        m.submodules.memory = memory
        m.submodules.bridge = bridge
        m.submodules.link = link

        m.d.comb += [
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            acc.start.eq(link.start),
            link.busy.eq(acc.busy),
            link.done.eq(acc.done),
            self.busy.eq(acc.busy),
        ]
        wiring.connect(m, link.mem_write, bridge.byte_write)
        wiring.connect(m, link.mem_read, bridge.byte_read)

        with m.If(link.start):
            m.d.sync += self.done.eq(0)
        with m.Elif(acc.done):
            m.d.sync += self.done.eq(1)

        # The memory's owner: the accelerator from its start pulse to its done, else the link.
        running = Signal()
        with m.If(link.start):
            m.d.sync += running.eq(1)
        with m.Elif(acc.done):
            m.d.sync += running.eq(0)
        owned = Signal()
        m.d.comb += owned.eq(link.start | running)

        def route(source_acc, source_bridge, sink):
            """A stream into the memory from whichever side owns it."""
            m.d.comb += [
                sink.valid.eq(Mux(owned, source_acc.valid, source_bridge.valid)),
                sink.payload.eq(Mux(owned, source_acc.payload, source_bridge.payload)),
                source_acc.ready.eq(owned & sink.ready),
                source_bridge.ready.eq(~owned & sink.ready),
            ]

        route(acc.offchip_read_req, bridge.read_req, memory.read_req)
        route(acc.offchip_write, bridge.write, memory.write)
        m.d.comb += [
            acc.offchip_read_data.valid.eq(owned & memory.read_data.valid),
            acc.offchip_read_data.payload.eq(memory.read_data.payload),
            bridge.read_data.valid.eq(~owned & memory.read_data.valid),
            bridge.read_data.payload.eq(memory.read_data.payload),
            memory.read_data.ready.eq(Mux(owned, acc.offchip_read_data.ready,
                                          bridge.read_data.ready)),
        ]
        return m
