"""Parameter checks shared by the hardware blocks.

Each raises :class:`TypeError` for the wrong kind of value and :class:`ValueError` for a value out
of range, with a message naming the block (``owner``), the parameter and the value.
"""

from .. import numerics
from ..integers import is_int


__all__ = ["check_count", "check_pair", "check_format", "check_bool"]


def check_count(owner, name, value):
    if not is_int(value):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{owner} {name} must be a positive integer, not {value!r}")


def check_format(owner, name, value):
    """A :class:`~intar_hw.numerics.Format` from a Format, a name (``"int8"``) or a width."""
    if isinstance(value, numerics.Format):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(
            f"{owner} {name} must be a Format, a name like 'int8' or a width, not {value!r}")
    try:
        return numerics.as_format(value)
    except ValueError:
        raise ValueError(f"{owner} {name} must be a format of 2 to 64 bits, not {value!r}") \
            from None


def check_pair(owner, name, value, minimum):
    """An integer or a pair of integers, each at least ``minimum``, as a pair."""
    if is_int(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        pair = tuple(value)
    else:
        raise TypeError(f"{owner} {name} must be an integer or a pair of integers, "
                        f"not {value!r}")
    if min(pair) < minimum:
        word = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{owner} {name} must be {word}, not {value!r}")
    return pair


def check_bool(owner, name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be a bool, not {value!r}")

