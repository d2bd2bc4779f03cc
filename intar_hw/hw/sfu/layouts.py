from amaranth import *
from amaranth.lib import data


__all__ = ["VectorLayout"]


class VectorLayout(data.StructLayout):
    """The payload every special-function unit takes and gives: a vector of signed integers.

    Parameters
    ----------
    width : int
        Bits of each element (signed, two's complement).
    lanes : int
        Elements carried per beat.

    Fields
    ------
    data : ArrayLayout(signed(width), lanes)
        The elements; lane 0 comes first in tensor order.
    last : 1
        Set on the final beat of a row (the unit a row-wise SFU normalises over) or, for
        elementwise and windowed units, of the whole tensor.

    Raises
    ------
    TypeError
        If ``width`` or ``lanes`` is not an integer.
    ValueError
        If ``width`` is less than 2 or ``lanes`` less than 1.
    """

    def __init__(self, width, lanes):
        for name, value, minimum in (("width", width, 2), ("lanes", lanes, 1)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"VectorLayout {name} must be an integer, not {value!r}")
            if value < minimum:
                raise ValueError(f"VectorLayout {name} must be at least {minimum}, not {value!r}")
        self._width = width
        self._lanes = lanes
        super().__init__({"data": data.ArrayLayout(signed(width), lanes), "last": 1})

    @property
    def width(self):
        return self._width

    @property
    def lanes(self):
        return self._lanes

    def __repr__(self):
        return f"VectorLayout({self._width}, {self._lanes})"
