"""Integer helpers shared by the scheduler, the generator and the hardware blocks.

``cdiv`` works on anything with ``//`` and unary ``-`` (Python and numpy integers, numpy arrays,
Amaranth values); ``is_int`` is the one test of "an integer parameter" every checked constructor
uses: Python and numpy integers, never a bool.
"""

import numbers


__all__ = ["cdiv", "is_int"]


def cdiv(a, b):
    """``a / b`` rounded up, for positive ``b``: ``-(-a // b)``."""
    return -(-a // b)


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
