# amaranth: UnusedElaboratable=no
"""The UART pair: exact 8N1 waveforms out, bytes back in through a loopback with stalls, framing
errors, overruns, glitches, the idle flag, and lines whose bit time is off the nominal one."""

import pytest
from amaranth import *

from intar_hw.hw.uart import UARTReceiver, UARTTransmitter
from intar_hw.testbench import get, put, run, seeded


def character(byte, stop=1):
    """Line levels of one 8N1 character: start bit, 8 data bits LSB first, stop bit."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def waveform(characters, period, *, gap=0.0, lead=8, tail=4):
    """Line level per cycle for ``characters`` (lists of bit levels), each bit ``period`` cycles
    long (any positive float: bit edges fall at rounded multiples), ``gap`` idle bit times
    between characters, ``lead`` idle cycles first and ``tail`` idle bit times last."""
    edges = []          # (time of the bit's start in cycles, level)
    time = float(lead)
    for bits in characters:
        for level in bits:
            edges.append((time, level))
            time += period
        time += gap * period
    levels = [1] * round(time + tail * period)
    for n, (begin, level) in enumerate(edges):
        end = edges[n + 1][0] if n + 1 < len(edges) else begin + period
        for cycle in range(round(begin), round(end)):
            levels[cycle] = level
    return levels


class Loopback(Elaboratable):
    def __init__(self, divisor):
        self.tx = UARTTransmitter(divisor)
        self.rx = UARTReceiver(divisor)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


def receive(dut, levels, *, expect, backpressure=0.0, seed=0):
    """Drive ``levels`` into ``dut.rx`` one per cycle; return the bytes received and the cycles
    at which ``error``, ``overrun`` and ``idle`` were high."""
    received, errors, overruns, idles = [], [], [], []

    async def line(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def sink(ctx):
        received.extend(int(b) for b in await get(ctx, dut.o, expect, rng=seeded(seed),
                                                  backpressure=backpressure))

    async def monitor(ctx):
        cycle = 0
        async for _, _, error, overrun, idle in ctx.tick().sample(dut.error, dut.overrun,
                                                                  dut.idle):
            if error:
                errors.append(cycle)
            if overrun:
                overruns.append(cycle)
            if idle:
                idles.append(cycle)
            cycle += 1

    run(dut, line, sink, processes=[monitor], deadline=len(levels) + 100)
    return received, errors, overruns, idles


@pytest.mark.parametrize("divisor", [4, 5])
def test_loopback_random_bytes(divisor):
    data = [seeded(divisor).randrange(256) for _ in range(40)]
    dut = Loopback(divisor)
    received, pulses = [], []

    async def source(ctx):
        await put(ctx, dut.tx.i, data, rng=seeded(1), idle=0.3)

    async def sink(ctx):
        # Stalls of a few cycles at most: far below a character time, so nothing is dropped.
        received.extend(int(b) for b in await get(ctx, dut.rx.o, len(data), rng=seeded(2),
                                                  backpressure=0.5))

    async def monitor(ctx):
        async for _, _, error, overrun in ctx.tick().sample(dut.rx.error, dut.rx.overrun):
            pulses.append(error or overrun)

    run(dut, source, sink, processes=[monitor], deadline=15 * divisor * len(data) + 200)
    assert received == data
    assert not any(pulses)


@pytest.mark.parametrize("divisor", [4, 7])
def test_transmitter_waveform(divisor):
    """Back-to-back bytes: start bit the cycle after the byte is taken, every bit ``divisor``
    cycles, the next start bit right after the stop bit."""
    data = [0x5C, 0xA3, 0xFF]
    dut = UARTTransmitter(divisor)
    levels, taken = [], []

    async def source(ctx):
        await put(ctx, dut.i, data)
        await ctx.tick().repeat(12 * divisor)

    async def monitor(ctx):
        cycle = 0
        async for _, _, tx, valid, ready in ctx.tick().sample(dut.tx, dut.i.valid, dut.i.ready):
            levels.append(tx)
            if valid and ready:
                taken.append(cycle)
            cycle += 1

    run(dut, source, processes=[monitor], deadline=40 * divisor * len(data))
    expected = [level for byte in data for level in character(byte) for _ in range(divisor)]
    first = taken[0] + 1
    assert levels[:first] == [1] * first
    assert levels[first:first + len(expected)] == expected
    assert set(levels[first + len(expected):]) == {1}
    assert [t - taken[0] for t in taken] == [10 * divisor * n for n in range(len(data))]


@pytest.mark.parametrize("divisor", [4, 5])
def test_receiver_latency_and_idle(divisor):
    """A byte is valid ``latency`` cycles after its start edge; ``idle`` rises ``idle_bits``
    bit times after that and falls the cycle after the next start bit is seen."""
    dut = UARTReceiver(divisor, idle_bits=3)
    lead = 50
    levels = waveform([character(0x96)], divisor, lead=lead)
    levels += [1] * (5 * divisor) + [0] * divisor + [1] * (20 * divisor)
    valid_at = []

    async def line(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def watch(ctx):
        cycle = 0
        async for _, _, valid in ctx.tick().sample(dut.o.valid):
            if valid:
                valid_at.append(cycle)
            cycle += 1

    idle = []

    async def watch_idle(ctx):
        async for _, _, value in ctx.tick().sample(dut.idle):
            idle.append(value)

    run(dut, line, processes=[watch, watch_idle], deadline=len(levels) + 10)
    assert valid_at[0] == lead + dut.latency
    rise = [n for n in range(1, len(idle)) if idle[n] and not idle[n - 1]]
    fall = [n for n in range(1, len(idle)) if idle[n - 1] and not idle[n]]
    second_start = lead + 10 * divisor + 5 * divisor + 4 * divisor
    # Once from reset (the line is idle from the start), then ``idle_bits`` after the byte.
    assert rise[1] == valid_at[0] + 3 * divisor
    assert fall[0] == lead + 3 and fall[1] == second_start + 3


def test_framing_error_and_break():
    divisor = 4
    dut = UARTReceiver(divisor)
    levels = waveform([character(0x3C, stop=0)], divisor, tail=0)
    levels += [0] * (30 * divisor)                      # a break: one error, not several
    levels += waveform([character(0x81), character(0x7E)], divisor)
    received, errors, overruns, _ = receive(dut, levels, expect=2)
    assert received == [0x81, 0x7E]
    assert len(errors) == 1 and not overruns


def test_glitch_is_ignored():
    divisor = 8
    dut = UARTReceiver(divisor)
    levels = [1] * 10 + [0] * (divisor // 2 - 1) + [1] * (12 * divisor)
    levels += waveform([character(0x42)], divisor)
    received, errors, overruns, _ = receive(dut, levels, expect=1)
    assert received == [0x42] and not errors and not overruns


def test_overrun_drops_the_new_byte():
    divisor = 4
    dut = UARTReceiver(divisor)
    data = [0x11, 0x22, 0x33]
    levels = waveform([character(b) for b in data], divisor)
    overruns, received = [], []

    async def line(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
        received.extend(int(b) for b in await get(ctx, dut.o, 1))
        ctx.set(dut.o.ready, 1)
        for _ in range(20 * divisor):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    async def monitor(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            overruns.append(overrun)

    run(dut, line, processes=[monitor], deadline=len(levels) + 40 * divisor)
    assert received == [0x11]
    assert sum(overruns) == 2


@pytest.mark.parametrize("divisor, period", [(4, 4.2), (16, 16.8), (16, 15.4), (5, 4.85)],
                         ids=["4_slow5pct", "16_slow5pct", "16_fast4pct", "5_fast3pct"])
def test_receiver_off_nominal_bit_time(divisor, period):
    """Sampling near the middle of each bit tolerates a line clock a few percent off, with
    characters back to back (no idle time to re-align on)."""
    data = [seeded(divisor).randrange(256) for _ in range(12)] + [0x00, 0xFF, 0x55, 0xAA]
    dut = UARTReceiver(divisor)
    received, errors, overruns, _ = receive(dut, waveform([character(b) for b in data], period),
                                            expect=len(data))
    assert received == data
    assert not errors and not overruns


@pytest.mark.parametrize("kind", [UARTTransmitter, UARTReceiver])
def test_divisor_errors(kind):
    name = kind.__name__
    with pytest.raises(TypeError, match=rf"^{name} divisor must be an integer of at least 4, "
                                        r"not 4\.0$"):
        kind(4.0)
    with pytest.raises(ValueError, match=rf"^{name} divisor must be an integer of at least 4, "
                                         r"not 3$"):
        kind(3)


def test_idle_bits_errors():
    with pytest.raises(TypeError, match=r"^UARTReceiver idle_bits must be a positive integer, "
                                        r"not '8'$"):
        UARTReceiver(4, idle_bits="8")
    with pytest.raises(ValueError, match=r"^UARTReceiver idle_bits must be a positive integer, "
                                         r"not 0$"):
        UARTReceiver(4, idle_bits=0)
