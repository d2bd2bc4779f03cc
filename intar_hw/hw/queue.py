from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["Queue"]


class Queue(wiring.Component):
    """A first-in, first-out stream buffer of any Amaranth shape, layouts included.

    Built over :class:`amaranth.lib.fifo.SyncFIFOBuffered`, whose output is registered, so the
    queue may sit on a timing-critical boundary.

    Parameters
    ----------
    shape : shape-like
        Payload shape of both streams (a plain shape, an enum or a :mod:`~amaranth.lib.data`
        layout).
    depth : int
        Number of beats it can hold, at least 1. Full throughput (one beat per cycle in and out)
        needs ``depth >= 3``; depths 1 and 2 sustain one beat every other cycle.

    Members
    -------
    i : In(stream.Signature(shape))
        Beats enter here; ``i.ready`` is low when the queue is full.
    o : Out(stream.Signature(shape))
        Beats leave here in the order they entered.
    level : Out(range(depth + 1))
        Number of beats held, counting the one presented on ``o``.

    Attributes
    ----------
    latency : int
        Cycles from a beat taken on ``i`` to it being valid on ``o`` when the queue was empty:
        1 at depth 1 (the output register alone), 2 at larger depths (storage, then register).

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable or ``depth`` is not an integer.
    ValueError
        If ``depth`` is less than 1.
    """

    def __init__(self, shape, depth):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"Queue shape must be a shape-castable object, not {shape!r}") from None
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"Queue depth must be an integer, not {depth!r}")
        if depth < 1:
            raise ValueError(f"Queue depth must be at least 1, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self):
        return self._depth

    @property
    def latency(self):
        return 1 if self._depth == 1 else 2

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        m.submodules.storage = storage = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.d.comb += [
            storage.w_data.eq(Value.cast(self.i.payload)),
            storage.w_en.eq(self.i.valid),
            self.i.ready.eq(storage.w_rdy),
            self.o.valid.eq(storage.r_rdy),
            storage.r_en.eq(self.o.ready),
            self.level.eq(storage.level),
            Value.cast(self.o.payload).eq(storage.r_data),
        ]
        return m

