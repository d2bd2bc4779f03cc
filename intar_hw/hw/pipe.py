"""Registers on a stream between blocks: cut the combinational paths a payload (and, with
:class:`RegisterSlice`, the ready) takes from one block's logic into another's."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["ForwardRegister", "RegisterSlice"]


class ForwardRegister(wiring.Component):
    """A one-beat register between two stream ends: ``o.valid`` and ``o.payload`` are register
    outputs, so no path runs from the source's logic to the sink's through the data.

    A beat taken on ``i`` is presented on ``o`` from the next cycle until the sink takes it; a
    new beat is taken in the cycle the held one leaves, so the register moves one beat per
    cycle. ``i.ready`` is ``~o.valid | o.ready``: the handshake passes through combinationally
    (:class:`RegisterSlice` registers it too, for a second payload register).

    Parameters
    ----------
    shape : shape-like
        Payload shape of both streams.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))

    Attributes
    ----------
    latency : int
        1: cycles from a beat taken on ``i`` to it being valid on ``o``.
    """

    latency = 1

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class RegisterSlice(ForwardRegister):
    """A stream register that cuts both directions: neither the source's logic nor the sink's
    reaches the other. ``i.ready`` and ``o.valid`` are register outputs; ``o.payload`` is one of
    two registers, chosen by a register.

    Two registers take the source's beats in turn (the payload goes straight into them, no
    multiplexer on the source's path) and present them in the same order. A beat taken on
    ``i`` is on ``o`` from the next cycle (as behind a :class:`ForwardRegister`), one beat per
    cycle while the sink takes them. ``i.ready`` says that a register is empty: when the sink
    refuses a beat, the beat the source offers in that cycle is still taken, and ``i.ready``
    falls from the next cycle until the sink takes one. The sink sees the same beats in the same
    cycles as behind a :class:`ForwardRegister`; the source may have one more beat taken before a
    stall reaches it. Parameters, members and :attr:`latency` (when the slice is empty) as
    :class:`ForwardRegister`'s.
    """

    def elaborate(self, platform):
        m = Module()
        slots = [Signal.like(self.i.payload, name=f"slot{n}") for n in range(2)]
        full = Signal(2)
        write = Signal()        # the register the next beat goes into
        read = Signal()         # the register holding the oldest beat
        m.d.comb += [
            self.i.ready.eq(~full.all()),
            self.o.valid.eq(full.bit_select(read, 1)),
            self.o.payload.eq(Mux(read, slots[1], slots[0])),
        ]
        taken = self.i.valid & self.i.ready
        given = self.o.valid & self.o.ready
        for n in range(2):
            with m.If(taken & (write == n)):
                m.d.sync += [slots[n].eq(self.i.payload), full[n].eq(1)]
            with m.Elif(given & (read == n)):
                m.d.sync += full[n].eq(0)
        with m.If(taken):
            m.d.sync += write.eq(~write)
        with m.If(given):
            m.d.sync += read.eq(~read)
        return m
