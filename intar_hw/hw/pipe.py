"""A register on a stream's data: cuts the combinational path a payload takes between blocks."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["ForwardRegister"]


class ForwardRegister(wiring.Component):
    """A one-beat register between two stream ends: ``o.valid`` and ``o.payload`` are register
    outputs, so no path runs from the source's logic to the sink's through the data.

    A beat taken on ``i`` is presented on ``o`` from the next cycle until the sink takes it; a
    new beat is taken in the cycle the held one leaves, so the register moves one beat per
    cycle. ``i.ready`` is ``~o.valid | o.ready``: the handshake passes through combinationally
    (a slice that also registers ``ready`` costs a second payload register).

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
