"""Arithmetic by constants without dividers or DSP blocks.

Yosys builds a division by a constant as a full array divider (a subtract-and-compare per
quotient bit: a 20-bit quotient is twenty carry chains in series), and maps a multiplication by
a constant onto a DSP block the MAC arrays need. Here both become short trees of adders:

- :func:`multiply_constant`: ``value * constant`` as a sum of shifted copies of ``value``, one per
  non-zero digit of the constant's canonical signed-digit form, added as a balanced tree.
- :func:`divide_constant`: ``value // divisor`` and ``value % divisor`` of an unsigned value as a
  multiplication by a rounded-up reciprocal, ``(value * magic) >> shift``, exact for every value
  of the operand's width (the round-up method of Granlund and Montgomery, 1994: with
  ``l = ceil(log2(divisor))``, ``shift = width + l`` and ``magic = 2**shift // divisor + 1``), and
  the remainder ``value - quotient * divisor``.
"""

from amaranth import *


__all__ = ["signed_digits", "reciprocal", "multiply_constant", "divide_constant"]


def signed_digits(constant):
    """``[(shift, sign), ...]`` with ``constant == sum(sign << shift)``, no two adjacent shifts
    (the canonical signed-digit form: the fewest non-zero digits)."""
    if not isinstance(constant, int) or constant < 0:
        raise ValueError(f"Constant must be a non-negative integer, not {constant!r}")
    digits, shift = [], 0
    while constant:
        if constant & 1:
            sign = 2 - (constant & 3)          # 1 when ...01, -1 when ...11
            digits.append((shift, sign))
            constant -= sign
        constant >>= 1
        shift += 1
    return digits


def reciprocal(divisor, width):
    """``(magic, shift)`` with ``v // divisor == (v * magic) >> shift`` for ``0 <= v < 2**width``."""
    if not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"Divisor must be a positive integer, not {divisor!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"Width must be a positive integer, not {width!r}")
    shift = width + (divisor - 1).bit_length()
    return (1 << shift) // divisor + 1, shift


def _tree(terms):
    """The sum of ``terms`` as a balanced tree of adders."""
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def multiply_constant(value, constant):
    """``value * constant`` (an Amaranth value, a non-negative integer) as shift-adds; the result
    has the value's signedness and is wide enough for every product."""
    value = Value.cast(value)
    width = len(value) + max(constant, 1).bit_length()
    if value.shape().signed:
        # The two's complement product, from the sign-extended bits (exact modulo 2**width).
        extended = Cat(value, value[-1].replicate(width - len(value)))
        return multiply_constant(extended, constant)[:width].as_signed()
    digits = signed_digits(constant)
    plus = [value << s for s, sign in digits if sign > 0]
    minus = [value << s for s, sign in digits if sign < 0]
    if not plus:
        return C(0, width)
    total = _tree(plus)
    if minus:
        total = total - _tree(minus)
    # The sum is the product, not negative: its low bits are exact.
    return total.as_unsigned()[:width]


def divide_constant(value, divisor):
    """``(value // divisor, value % divisor)`` of an unsigned Amaranth value by a positive
    integer, without a divider: shifts for a power of two, else a reciprocal multiply."""
    value = Value.cast(value)
    if value.shape().signed:
        raise TypeError(f"Value must be unsigned, not {value.shape()!r}")
    width = max(len(value), 1)
    if divisor & (divisor - 1) == 0:
        k = divisor.bit_length() - 1
        return value >> k, value[:k] if k else C(0, 1)
    magic, shift = reciprocal(divisor, width)
    quotient = (multiply_constant(value, magic) >> shift)[:width]
    rem_width = (divisor - 1).bit_length()
    remainder = (value - multiply_constant(quotient, divisor)).as_unsigned()[:rem_width]
    return quotient, remainder
