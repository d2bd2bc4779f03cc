# amaranth: UnusedElaboratable=no
import math
from fractions import Fraction

import numpy as np
import pytest
from amaranth import *
from amaranth.hdl import Fragment
from amaranth.lib import data

from intar_hw.hw.offchip import OffchipPort, load, read_back, transfer_cycles
from intar_hw.testbench import beats_per_cycle, get, put, run, seeded


VECTOR = data.ArrayLayout(signed(8), 4)


def lanes(shape):
    return (shape.length,) if isinstance(shape, data.ArrayLayout) else ()


def random_words(rng, shape, count):
    elem = Shape.cast(shape.elem_shape if isinstance(shape, data.ArrayLayout) else shape)
    lo, hi = ((-(1 << (elem.width - 1)), 1 << (elem.width - 1)) if elem.signed else
              (0, 1 << elem.width))
    values = [rng.randrange(lo, hi) for _ in range(count * int(np.prod(lanes(shape))))]
    return np.array(values, dtype=np.int64).reshape((count,) + lanes(shape))


def to_python(value):
    if isinstance(value, data.Const):
        return [to_python(value[i]) for i in range(value.shape().length)]
    return int(value)


def reference_offchip(depth, shape, init, events):
    """Read beats and final contents, replaying transfers in order: each burst reads the memory
    as it was when its request was accepted, each write takes effect when accepted."""
    mem = np.zeros((depth,) + lanes(shape), dtype=np.int64)
    mem[:len(init)] = np.array(init).reshape((len(init),) + lanes(shape))
    beats = []
    for kind, addr, value in events:
        if kind == "read":
            count = max(value, 1)
            beats += [(mem[addr + n].tolist(), int(n == count - 1)) for n in range(count)]
        else:
            mem[addr] = value
    return beats, mem


def monitor_signals(dut):
    return [dut.read_req.valid, dut.read_req.ready, dut.read_req.payload.addr,
            dut.read_req.payload.count, dut.write.valid, dut.write.ready, dut.write.payload.addr,
            dut.write.payload.data, dut.read_data.valid, dut.read_data.ready,
            dut.read_data.payload.data, dut.read_data.payload.last]


def record(log):
    """A process appending, per cycle, the sampled values of :func:`monitor_signals`."""
    def make(dut):
        async def monitor(ctx):
            async for _, _, *values in ctx.tick().sample(*monitor_signals(dut)):
                log.append([to_python(v) for v in values])
        return monitor
    return make


def offchip_rtl(dut, requests, writes, *, seed, idle, backpressure):
    """Send read requests ``(addr, count)`` and writes ``(addr, word)`` concurrently; return the
    read beats, the transfer events in order, the per-cycle log and the final contents."""
    expected_beats = sum(max(count, 1) for _, count in requests)
    log, beats, contents = [], [], []
    done = []

    async def reader(ctx):
        await put(ctx, dut.read_req, [{"addr": a, "count": c} for a, c in requests],
                  rng=seeded(seed + 1), idle=idle)
        done.append("reader")

    async def sink(ctx):
        beats.extend(await get(ctx, dut.read_data, expected_beats, rng=seeded(seed + 2),
                               backpressure=backpressure))
        done.append("sink")

    async def writer(ctx):
        await put(ctx, dut.write, [{"addr": a, "data": w} for a, w in writes],
                  rng=seeded(seed + 3), idle=idle)
        done.append("writer")

    async def checker(ctx):
        while len(done) < 3:
            await ctx.tick()
        contents.extend(to_python(word) for word in read_back(ctx, dut))

    cycles = sum(max(c, 1) for _, c in requests) + len(writes)
    run(dut, reader, sink, writer, checker, processes=[record(log)(dut)],
        deadline=int(40 * cycles * dut.bytes_per_word / dut.bandwidth) + 200,
        vcd="offchip_random.vcd")
    events = []
    for cycle, (rv, rr, ra, rc, wv, wr, wa, wd, *_) in enumerate(log):
        assert not (rv and rr and wv and wr), f"read and write moved together in cycle {cycle}"
        if rv and rr:
            events.append(("read", ra, rc))
        if wv and wr:
            events.append(("write", wa, wd))
    return [(to_python(b.data), int(b.last)) for b in beats], events, log, contents


def check_stream_rules(log):
    """Held read data stays put; a write never moves inside a burst."""
    for now, later in zip(log, log[1:]):
        if now[8] and not now[9]:
            assert later[8] and later[10:] == now[10:]
    in_burst = 0
    for rv, rr, _, rc, wv, wr, *_ in log:
        if in_burst:
            assert not (wv and wr)
            in_burst -= 1
        elif rv and rr:
            in_burst = max(rc, 1) - 1


CONFIGS = [
    # shape, depth, bandwidth, latency, max_burst, backpressure
    (unsigned(8), 64, 1, 2, 8, 0.4),
    (signed(32), 32, Fraction(5, 2), 5, 4, 0.4),
    (VECTOR, 32, 0.75, 3, 16, 0.3),
    (unsigned(12), 20, 2, 4, 5, 0.8),
]


@pytest.mark.parametrize("shape,depth,bandwidth,latency,max_burst,backpressure", CONFIGS)
def test_random_traffic_with_stalls(shape, depth, bandwidth, latency, max_burst, backpressure):
    seed = depth + latency
    rng = seeded(seed)
    init = random_words(rng, shape, depth - 2).tolist()
    dut = OffchipPort(shape, depth, bandwidth=bandwidth, latency=latency, max_burst=max_burst,
                      init=init)
    requests = []
    for _ in range(40):
        count = rng.randrange(max_burst + 1)
        requests.append((rng.randrange(depth - max(count, 1) + 1), count))
    writes = list(zip([rng.randrange(depth) for _ in range(60)],
                      random_words(rng, shape, 60).tolist()))
    beats, events, log, contents = offchip_rtl(dut, requests, writes, seed=seed, idle=0.3,
                                               backpressure=backpressure)
    expected_beats, expected_mem = reference_offchip(depth, shape, init, events)
    assert [e[1:] for e in events if e[0] == "read"] == requests
    assert [e[1:] for e in events if e[0] == "write"] == writes
    assert beats == expected_beats
    np.testing.assert_array_equal(np.array(contents), expected_mem)
    check_stream_rules(log)
    assert any(now[8] and not now[9] for now in log)     # backpressure did hold data


def timed_run(dut, requests=(), writes=(), beats=0, deadline=5000):
    """Run with no idles and no backpressure; return the per-cycle log (index = cycle)."""
    log = []

    async def reader(ctx):
        await put(ctx, dut.read_req, [{"addr": a, "count": c} for a, c in requests])

    async def sink(ctx):
        await get(ctx, dut.read_data, beats)

    async def writer(ctx):
        await put(ctx, dut.write, [{"addr": a, "data": w} for a, w in writes])

    run(dut, reader, sink, writer, processes=[record(log)(dut)], deadline=deadline)
    return log


# (word width, bandwidth): every bandwidth up to one word per cycle.
BANDWIDTHS = [(8, 0.5), (8, 1), (32, 0.5), (32, 1), (32, 2.5), (32, 4)]


@pytest.mark.parametrize("width,bandwidth", BANDWIDTHS)
def test_read_bandwidth_and_burst_time(width, bandwidth):
    latency, burst = 6, 32
    dut = OffchipPort(unsigned(width), 256, bandwidth=bandwidth, latency=latency, max_burst=burst)
    words = 160 * 8 // width                 # 160 bytes, a whole number of cycles at each rate
    log = timed_run(dut, requests=[(n, min(burst, words - n)) for n in range(0, words, burst)],
                    beats=words, deadline=2000)
    beat_cycles = [c for c, s in enumerate(log) if s[8] and s[9]]
    nbytes = words * dut.bytes_per_word
    # Presented in cycle 0; the last beat's cycle, inclusive, ends the transfer.
    assert beat_cycles[-1] + 1 == dut.cycles_for(nbytes) == \
        math.ceil(Fraction(nbytes) / dut.bandwidth) + latency
    assert Fraction(nbytes, beat_cycles[-1] + 1 - latency) == dut.bandwidth
    # Sustained rate between the first and last beat, in bytes per cycle.
    assert beats_per_cycle(beat_cycles) * dut.bytes_per_word == pytest.approx(bandwidth, rel=0.02)


@pytest.mark.parametrize("width,bandwidth", BANDWIDTHS)
def test_write_bandwidth(width, bandwidth):
    dut = OffchipPort(unsigned(width), 256, bandwidth=bandwidth, latency=3)
    words = 160 * 8 // width
    log = timed_run(dut, writes=[(n, n % 256) for n in range(words)], deadline=2000)
    write_cycles = [c for c, s in enumerate(log) if s[4] and s[5]]
    nbytes = words * dut.bytes_per_word
    assert len(write_cycles) == words
    assert write_cycles[-1] + 1 == dut.cycles_for(nbytes, write=True) == \
        math.ceil(Fraction(nbytes) / dut.bandwidth)
    assert Fraction(nbytes, write_cycles[-1] + 1) == dut.bandwidth


@pytest.mark.parametrize("latency", [2, 3, 8, 17])
@pytest.mark.parametrize("bandwidth", [4, 1.5])
def test_latency(latency, bandwidth):
    dut = OffchipPort(VECTOR, 16, bandwidth=bandwidth, latency=latency,
                      init=[[n, n, -n, n] for n in range(16)])
    log = timed_run(dut, requests=[(5, 3)], beats=3)
    accepted = next(c for c, s in enumerate(log) if s[0] and s[1])
    first = next(c for c, s in enumerate(log) if s[8])
    assert first - accepted == latency
    # The request waits for its first word's bandwidth credit: ceil(4 / bandwidth) - 1 cycles.
    assert accepted == math.ceil(4 / Fraction(str(bandwidth))) - 1
    assert [(s[10], s[11]) for s in log if s[8] and s[9]] == \
        [([5, 5, -5, 5], 0), ([6, 6, -6, 6], 0), ([7, 7, -7, 7], 1)]


def test_credit_is_not_banked_while_idle():
    # 2.5 bytes per cycle, 4-byte words: a word needs 8 half-bytes of credit, 5 come per cycle.
    dut = OffchipPort(unsigned(32), 16, bandwidth=2.5, latency=2)
    log = []

    async def testbench(ctx):
        ctx.set(dut.read_data.ready, 1)
        await put(ctx, dut.read_req, [{"addr": 0, "count": 2}])    # leaves 4 of 8 credit over
        await ctx.tick().repeat(10)
        await put(ctx, dut.read_req, [{"addr": 0, "count": 1}])

    run(dut, testbench, processes=[record(log)(dut)], deadline=50)
    accepted = [c for c, s in enumerate(log) if s[0] and s[1]]
    presented = [c for c, s in enumerate(log) if s[0]]
    assert accepted[0] == 1
    # The leftover credit was dropped while idle: the second request waits a cycle again.
    assert accepted[1] == presented[-1] == presented[-2] + 1


def test_pipelined_requests_in_flight():
    latency, count = 10, 12
    dut = OffchipPort(unsigned(16), 64, bandwidth=2, latency=latency, init=list(range(64)))
    log = timed_run(dut, requests=[(3 * n, 1) for n in range(count)], beats=count)
    accepted = [c for c, s in enumerate(log) if s[0] and s[1]]
    beats = [(c, s[10], s[11]) for c, s in enumerate(log) if s[8] and s[9]]
    assert accepted == list(range(count))
    assert beats == [(latency + n, 3 * n, 1) for n in range(count)]
    assert beats[-1][0] + 1 == dut.transfer_cycles(count)


def test_reads_and_writes_alternate():
    dut = OffchipPort(unsigned(8), 32, bandwidth=1, latency=2)
    log = timed_run(dut, requests=[(0, 3)] * 4, writes=[(20 + n, n) for n in range(4)], beats=12)
    moves = "".join("R" if s[0] and s[1] else "W" if s[4] and s[5] else "." for s in log)
    assert moves.startswith("R..WR..WR..WR..W")


def test_full_backpressure_stops_reads_without_loss():
    latency = 4
    dut = OffchipPort(unsigned(8), 32, bandwidth=1, latency=latency, init=list(range(32)))
    received = []

    async def testbench(ctx):
        ctx.set(dut.read_req.payload, {"addr": 0, "count": 20})
        ctx.set(dut.read_req.valid, 1)
        await ctx.tick()
        ctx.set(dut.read_req.valid, 0)
        await ctx.tick().repeat(30)
        assert ctx.get(dut.read_data.valid)
        received.extend(b.data for b in await get(ctx, dut.read_data, 20))

    log = []
    run(dut, testbench, processes=[record(log)(dut)], deadline=100)
    assert received == list(range(20))
    # Reading paused with latency + 1 words read and untaken, the port's buffer.
    stalled = [c for c, s in enumerate(log[:31]) if s[8]]
    assert stalled[0] == latency


def test_load_and_read_back():
    dut = OffchipPort(VECTOR, 8, bandwidth=4, latency=2, init=[[1, 2, 3, 4]])
    seen = {}

    async def testbench(ctx):
        seen["init"] = [to_python(w) for w in read_back(ctx, dut, 0, 2)]
        load(ctx, dut, [[-1, -2, -3, -4], [5, 6, 7, 8]], start=6)
        ctx.set(dut.read_data.ready, 1)
        await put(ctx, dut.read_req, [{"addr": 6, "count": 2}])
        seen["read"] = [to_python(b.data) for b in await get(ctx, dut.read_data, 2)]
        await put(ctx, dut.write, [{"addr": 1, "data": [9, 9, 9, 9]}])
        seen["back"] = [to_python(w) for w in read_back(ctx, dut)]

    run(dut, testbench, deadline=50)
    assert seen["init"] == [[1, 2, 3, 4], [0, 0, 0, 0]]
    assert seen["read"] == [[-1, -2, -3, -4], [5, 6, 7, 8]]
    assert seen["back"] == [[1, 2, 3, 4], [9, 9, 9, 9]] + [[0] * 4] * 4 + \
        [[-1, -2, -3, -4], [5, 6, 7, 8]]


def test_read_back_before_elaboration():
    with pytest.raises(RuntimeError,
                       match=r"^The OffchipPort has not been elaborated; simulate it first$"):
        read_back(None, OffchipPort(8, 4, bandwidth=1, latency=2))


def test_elaborates_twice():
    dut = OffchipPort(VECTOR, 16, bandwidth=Fraction(3, 2), latency=4)
    Fragment.get(dut, None)
    Fragment.get(dut, None)


def test_parameters():
    dut = OffchipPort(unsigned(12), 100, bandwidth=0.1, latency=20, max_burst=16)
    assert dut.bandwidth == Fraction(1, 10)
    assert (dut.bytes_per_word, dut.size_bytes, dut.addr_width, dut.count_width) == (2, 200, 7, 5)
    assert OffchipPort(8, 4, bandwidth=Fraction(1, 2), latency=2).bandwidth == Fraction(1, 2)
    assert dut.cycles_for(0) == 0
    assert dut.cycles_for(3) == dut.transfer_cycles(2) == 40 + 20
    assert dut.cycles_for(3, write=True) == 40
    assert transfer_cycles(10, bytes_per_word=4, bandwidth=Fraction(5, 2), latency=7) == 16 + 7


def test_shape_type_error():
    with pytest.raises(TypeError,
                       match=r"^OffchipPort shape must be a shape-castable object, not 'x'$"):
        OffchipPort("x", 16, bandwidth=1, latency=2)


def test_shape_width_error():
    with pytest.raises(ValueError,
                       match=r"^OffchipPort shape must be at least 1 bit wide, not unsigned\(0\)$"):
        OffchipPort(unsigned(0), 16, bandwidth=1, latency=2)


def test_depth_type_error():
    with pytest.raises(TypeError,
                       match=r"^OffchipPort depth must be a positive integer, not None$"):
        OffchipPort(8, None, bandwidth=1, latency=2)


def test_depth_value_error():
    with pytest.raises(ValueError, match=r"^OffchipPort depth must be a positive integer, not -4$"):
        OffchipPort(8, -4, bandwidth=1, latency=2)


def test_bandwidth_type_error():
    with pytest.raises(TypeError, match=r"^OffchipPort bandwidth must be a positive number of "
                                        r"bytes per cycle, not '1'$"):
        OffchipPort(8, 16, bandwidth="1", latency=2)


@pytest.mark.parametrize("bandwidth,text", [(0, "0"), (-0.5, "-0\\.5"), (math.nan, "nan")])
def test_bandwidth_value_error(bandwidth, text):
    with pytest.raises(ValueError, match=rf"^OffchipPort bandwidth must be a positive number of "
                                         rf"bytes per cycle, not {text}$"):
        OffchipPort(8, 16, bandwidth=bandwidth, latency=2)


def test_bandwidth_above_one_word_error():
    with pytest.raises(ValueError, match=r"^OffchipPort bandwidth must be at most one word \(1 "
                                         r"bytes for shape unsigned\(8\)\) per cycle, not 2\.5$"):
        OffchipPort(unsigned(8), 16, bandwidth=2.5, latency=2)


def test_latency_type_error():
    with pytest.raises(TypeError, match=r"^OffchipPort latency must be an integer of at least 2, "
                                        r"not 2\.0$"):
        OffchipPort(8, 16, bandwidth=1, latency=2.0)


def test_latency_value_error():
    with pytest.raises(ValueError, match=r"^OffchipPort latency must be an integer of at least 2, "
                                         r"not 1$"):
        OffchipPort(8, 16, bandwidth=1, latency=1)


def test_max_burst_type_error():
    with pytest.raises(TypeError,
                       match=r"^OffchipPort max_burst must be a positive integer, not 1\.5$"):
        OffchipPort(8, 16, bandwidth=1, latency=2, max_burst=1.5)


def test_max_burst_value_error():
    with pytest.raises(ValueError,
                       match=r"^OffchipPort max_burst must be a positive integer, not 0$"):
        OffchipPort(8, 16, bandwidth=1, latency=2, max_burst=0)


def test_init_type_error():
    with pytest.raises(TypeError, match=r"^OffchipPort init must be an iterable of words, not 7$"):
        OffchipPort(8, 16, bandwidth=1, latency=2, init=7)


def test_init_length_error():
    with pytest.raises(ValueError,
                       match=r"^OffchipPort init must hold at most depth 2 words, not 3$"):
        OffchipPort(8, 2, bandwidth=1, latency=2, init=[1, 2, 3])


def test_init_word_error():
    with pytest.raises(ValueError, match=r"^OffchipPort init word 0 must be a constant of shape "
                                         r"signed\(8\), not 128$"):
        OffchipPort(signed(8), 2, bandwidth=1, latency=2, init=[128])
