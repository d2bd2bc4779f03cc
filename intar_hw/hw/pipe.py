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


class RegisterSlice(wiring.Component):
    """A stream register that cuts both directions: ``o.valid``, ``o.payload`` and ``i.ready``
    are all register outputs, so neither the source's logic nor the sink's reaches the other.

    A beat taken on ``i`` is presented on ``o`` from the next cycle (as
    :class:`ForwardRegister`), one beat per cycle while the sink takes them. ``i.ready`` says
    that a spare register is empty: when the sink refuses the beat on ``o``, the beat the source
    offered in that cycle waits there, and ``i.ready`` falls from the next cycle until the sink
    takes one. The sink sees the same beats in the same cycles as behind a
    :class:`ForwardRegister`; the source may have one more beat taken before a stall reaches it.

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
        1: cycles from a beat taken on ``i`` to it being valid on ``o`` (when the slice is empty).
    """

    latency = 1

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        spare = Signal.like(self.i.payload, name="spare")
        spare_valid = Signal()
        m.d.comb += self.i.ready.eq(~spare_valid)
        taken = self.i.valid & self.i.ready
        with m.If(~self.o.valid | self.o.ready):
            # The output register is free (or freed now): it takes the spare beat, else the
            # source's.
            with m.If(spare_valid):
                m.d.sync += [self.o.payload.eq(spare), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += self.o.payload.eq(self.i.payload)
            m.d.sync += self.o.valid.eq(spare_valid | taken)
        with m.Elif(taken):
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]
        return m
