import pytest
from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from intar_hw.testbench import beats_per_cycle, put, run


class Stuck(wiring.Component):
    """A sink that is never ready."""
    i: In(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        toggle = Signal()
        m.d.sync += toggle.eq(~toggle)
        return m


def test_watchdog_reports_a_hung_testbench_as_a_timeout():
    # Run with warnings as errors: the abandoned testbench must not turn into a pytest error.
    dut = Stuck()

    async def source(ctx):
        await put(ctx, dut.i, [1, 2, 3])

    with pytest.raises(TimeoutError, match=r"^Simulation did not finish within 20 cycles$"):
        run(dut, source, deadline=20)


def test_beats_per_cycle():
    assert beats_per_cycle([3, 4, 5, 6]) == 1.0
    assert beats_per_cycle([0, 2, 4]) == 0.5
    with pytest.raises(ValueError, match=r"^Throughput needs at least two transfers, not 1$"):
        beats_per_cycle([7])
