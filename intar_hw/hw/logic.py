"""Small register and counter idioms shared by the hardware blocks."""

from amaranth import *


__all__ = ["wrap_increment", "stage"]


def wrap_increment(value, count):
    """``value + 1`` modulo ``count``."""
    return Mux(value == count - 1, 0, value + 1)


def stage(m, enable, name, values):
    """Registers loaded from ``values`` (a dict of values) on cycles when ``enable`` is high."""
    regs = {}
    for key, value in values.items():
        value = Value.cast(value)
        reg = Signal(value.shape(), name=f"{name}_{key}")
        with m.If(enable):
            m.d.sync += reg.eq(value)
        regs[key] = reg
    return regs

