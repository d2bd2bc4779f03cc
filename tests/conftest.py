"""Fixtures shared by the test folders."""

import pytest


@pytest.fixture
def one_layer():
    """A factory of the one-layer accelerator the board and link tests run (``x`` 1x8 int8 ->
    ``fc`` 4 outputs, one 1x4 core): ``one_layer(bytes_per_cycle=4, offchip=True, used=False)``.
    ``used`` elaborates it once, for a test that never simulates it (Amaranth warns otherwise)."""
    import intar_hw as ih
    from amaranth.hdl import Fragment

    def make(bytes_per_cycle=4, *, offchip=True, used=False):
        g = ih.Graph("one")
        g.output(g.linear(g.input("x", shape=(1, 8), fmt="int8"), 4, shift=5, name="fc"))
        budget = ih.Resources(ccs=1, pea=(1, 4, 1), scratchpad_kib=4,
                              offchip_bytes_per_cycle=bytes_per_cycle, offchip_latency=2)
        acc = ih.build(ih.schedule(g, budget), offchip=offchip)
        if used:
            Fragment.get(acc, None)
        return acc

    return make
