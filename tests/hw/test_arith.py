# amaranth: UnusedElaboratable=no
"""Arithmetic by constants: the reciprocal divider and shift-add multiplier equal ``//``, ``%``
and ``*`` on every value of the operand's width."""

import random

import pytest
from amaranth import *
from amaranth.sim import Simulator

from intar_hw.hw.arith import divide_constant, multiply_constant, reciprocal, signed_digits
from intar_hw.testbench import evaluate


def _evaluate(width, outputs, values):
    """The outputs (functions of an unsigned input of ``width`` bits) on each of ``values``."""
    m = Module()
    a = Signal(width)
    results = [Signal.like(o, name=f"out{i}") for i, o in enumerate(outputs(a))]
    m.d.comb += [r.eq(o) for r, o in zip(results, outputs(a))]
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(a, v)
            got.append(tuple(ctx.get(r) for r in results))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("divisor", [3, 5, 6, 7, 9, 43, 100, 338])
@pytest.mark.parametrize("width", [1, 4, 9])
def test_division_by_a_constant_is_exact_on_every_value(divisor, width):
    values = range(1 << width)
    got = _evaluate(width, lambda a: divide_constant(a, divisor), values)
    assert got == [divmod(v, divisor) for v in values]


@pytest.mark.parametrize("divisor", [3, 9, 43, 1000, 4096])
def test_division_of_wide_values(divisor):
    rng = random.Random(divisor)
    values = [0, (1 << 24) - 1] + [rng.randrange(1 << 24) for _ in range(500)]
    assert _evaluate(24, lambda a: divide_constant(a, divisor), values) == [
        divmod(v, divisor) for v in values]


@pytest.mark.parametrize("divisor", [3, 7, 9, 25, 43, 100, 338, 1000])
def test_reciprocal_holds_over_the_whole_range(divisor):
    for width in range(1, 15):
        magic, shift = reciprocal(divisor, width)
        assert all((v * magic) >> shift == v // divisor for v in range(1 << width))


@pytest.mark.parametrize("constant", [0, 1, 7, 9, 43, 255, 1000, 0b1011_0111_0110])
def test_multiplication_by_a_constant(constant):
    values = range(1 << 8)
    got = _evaluate(8, lambda a: (multiply_constant(a, constant),), values)
    assert got == [(v * constant,) for v in values]


@pytest.mark.parametrize("constant", [0, 1, 3, 10, 43])
def test_multiplication_of_signed_values(constant):
    values = range(-128, 128)
    a = Signal(signed(8))
    product = multiply_constant(a, constant)
    assert product.shape().signed
    assert evaluate(product, a, values) == [v * constant for v in values]


def test_signed_digits_are_canonical():
    for constant in range(4096):
        digits = signed_digits(constant)
        assert sum(sign << shift for shift, sign in digits) == constant
        shifts = [shift for shift, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))


def test_bad_constants_are_named():
    with pytest.raises(ValueError, match="Divisor must be a positive integer, not 0"):
        reciprocal(0, 8)
    with pytest.raises(ValueError, match="Width must be a positive integer, not 0"):
        reciprocal(3, 0)
    with pytest.raises(ValueError, match="Constant must be a non-negative integer, not -1"):
        signed_digits(-1)
    with pytest.raises(TypeError, match="Value must be unsigned"):
        divide_constant(Signal(signed(8)), 3)
