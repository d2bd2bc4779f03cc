# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import *
from amaranth.hdl import Fragment
from amaranth.lib import data

from intar_hw.hw.scratchpad import Scratchpad
from intar_hw.testbench import beats_per_cycle, get, put, run, seeded


VECTOR = data.ArrayLayout(signed(8), 4)


def lanes(shape):
    """Numpy trailing dimensions of one word: () for plain shapes, (n,) for an array layout."""
    return (shape.length,) if isinstance(shape, data.ArrayLayout) else ()


def word_range(shape):
    shape = Shape.cast(shape.elem_shape if isinstance(shape, data.ArrayLayout) else shape)
    return (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else \
        (0, 1 << shape.width)


def random_words(rng, shape, count):
    lo, hi = word_range(shape)
    values = [rng.randrange(lo, hi) for _ in range(count * int(np.prod(lanes(shape))))]
    return np.array(values, dtype=np.int64).reshape((count,) + lanes(shape))


def to_python(value):
    """A sampled word (int or layout Const) as an int or a list of ints."""
    if isinstance(value, data.Const):
        return [to_python(value[i]) for i in range(value.shape().length)]
    return int(value)


def reference_scratchpad(depth, shape, init, cycles):
    """Read data per read port, replaying the transfers of each cycle: reads, then writes."""
    mem = np.zeros((depth,) + lanes(shape), dtype=np.int64)
    mem[:len(init)] = np.array(init).reshape((len(init),) + lanes(shape))
    responses = {}
    for reads, writes in cycles:
        for port, addr in reads:
            responses.setdefault(port, []).append(mem[addr].copy())
        assert len({addr for addr, _ in writes}) == len(writes)
        for addr, word in writes:
            mem[addr] = word
    return responses


def scratchpad_rtl(dut, reads, writes, *, seed, idle, backpressure):
    """Run per-port read address lists and per-port (addr, word) write lists through ``dut``.

    Returns the read data per port, the transfers of each cycle, and per-cycle port states.
    """
    responses = [None] * dut.read_ports
    cycles, states = [], []

    def make_reader(p):
        async def source(ctx):
            await put(ctx, dut.read[p].req, [{"addr": a} for a in reads[p]],
                      rng=seeded(seed + 10 + p), idle=idle)

        async def sink(ctx):
            beats = await get(ctx, dut.read[p].resp, len(reads[p]), rng=seeded(seed + 20 + p),
                              backpressure=backpressure)
            responses[p] = [to_python(beat.data) for beat in beats]
        return source, sink

    def make_writer(q):
        async def source(ctx):
            beats = [{"addr": a, "data": w.tolist() if hasattr(w, "tolist") else w}
                     for a, w in writes[q]]
            await put(ctx, dut.write[q], beats, rng=seeded(seed + 30 + q), idle=idle)
        return source

    signals = []
    for port in dut.read:
        signals += [port.req.valid, port.req.ready, port.req.payload.addr,
                    port.resp.valid, port.resp.ready, port.resp.payload.data]
    for port in dut.write:
        signals += [port.valid, port.ready, port.payload.addr, port.payload.data]

    async def monitor(ctx):
        async for _, _, *values in ctx.tick().sample(*signals):
            values = [to_python(v) for v in values]
            read_states = [values[6 * p:6 * p + 6] for p in range(dut.read_ports)]
            write_states = [values[6 * dut.read_ports + 4 * q:6 * dut.read_ports + 4 * q + 4]
                            for q in range(dut.write_ports)]
            cycles.append((
                [(p, s[2]) for p, s in enumerate(read_states) if s[0] and s[1]],
                [(s[2], s[3]) for s in write_states if s[0] and s[1]],
            ))
            states.append((read_states, write_states))

    testbenches = [tb for p in range(dut.read_ports) for tb in make_reader(p)]
    testbenches += [make_writer(q) for q in range(dut.write_ports)]
    total = sum(map(len, reads)) + sum(map(len, writes))
    run(dut, *testbenches, processes=[monitor], deadline=20 * total + 100,
        vcd=f"scratchpad_{dut.read_ports}r{dut.write_ports}w{dut.banks}b.vcd")
    return responses, cycles, states


def check_arbitration(banks, states):
    """Check the documented conflict rule and that held responses stay put, cycle by cycle."""
    for cycle, (read_states, write_states) in enumerate(states):
        claimed = set()
        for valid, ready, addr, resp_valid, resp_ready, _ in read_states:
            free = not resp_valid or resp_ready
            expected = free and (addr % banks) not in claimed
            if valid:
                assert ready == expected, f"read arbitration wrong in cycle {cycle}"
                if free:
                    claimed.add(addr % banks)
        claimed = set()
        for valid, ready, addr, _ in write_states:
            if valid:
                assert ready == ((addr % banks) not in claimed), \
                    f"write arbitration wrong in cycle {cycle}"
                claimed.add(addr % banks)
        if cycle + 1 < len(states):
            for now, later in zip(read_states, states[cycle + 1][0]):
                if now[3] and not now[4]:
                    assert later[3] and later[5] == now[5], f"response dropped in cycle {cycle}"


CONFIGS = [
    # shape, depth, banks, read_ports, write_ports
    (unsigned(8), 16, 1, 1, 1),
    (signed(16), 32, 4, 2, 2),
    (VECTOR, 16, 2, 3, 1),
    (unsigned(8), 12, 4, 4, 2),
    (unsigned(8), 8, 2, 2, 0),
]


@pytest.mark.parametrize("shape,depth,banks,read_ports,write_ports", CONFIGS)
def test_random_traffic_with_stalls(shape, depth, banks, read_ports, write_ports):
    seed = depth * 7 + banks * 3 + read_ports
    rng = seeded(seed)
    init = random_words(rng, shape, depth - 3).tolist()
    dut = Scratchpad(shape, depth, read_ports=read_ports, write_ports=write_ports, banks=banks,
                     init=init)
    reads = [[rng.randrange(depth) for _ in range(200)] for _ in range(read_ports)]
    writes = [list(zip([rng.randrange(depth) for _ in range(200)], random_words(rng, shape, 200)))
              for _ in range(write_ports)]
    responses, cycles, states = scratchpad_rtl(dut, reads, writes, seed=seed, idle=0.3,
                                               backpressure=0.4)
    expected = reference_scratchpad(depth, shape, init, cycles)
    for p in range(read_ports):
        assert [a for c in cycles for q, a in c[0] if q == p] == reads[p]
        np.testing.assert_array_equal(np.array(responses[p]), np.array(expected[p]))
    assert sum(len(w) for _, w in cycles) == sum(map(len, writes))
    check_arbitration(banks, states)
    # The stalls must actually have produced conflicts and held responses.
    assert any(len(r) < sum(s[0] for s in rs) for (r, _), (rs, _) in zip(cycles, states)) or \
        read_ports == 1
    assert any(s[3] and not s[4] for rs, _ in states for s in rs)


def test_full_throughput_on_distinct_banks():
    ports, beats = 4, 40
    rng = seeded(5)
    init = [rng.randrange(256) for _ in range(64)]
    dut = Scratchpad(unsigned(8), 64, read_ports=ports, write_ports=ports, banks=ports, init=init)
    # Read port p reads bank p; write port q writes bank (q + 1) % ports, away from the reads.
    reads = [[ports * rng.randrange(16) + p for _ in range(beats)] for p in range(ports)]
    writes = [[(ports * rng.randrange(16) + (q + 1) % ports, rng.randrange(256))
               for _ in range(beats)] for q in range(ports)]
    responses, cycles, states = scratchpad_rtl(dut, reads, writes, seed=5, idle=0.0,
                                               backpressure=0.0)
    busy = [n for n, c in enumerate(cycles) if c[0] or c[1]]
    assert len(busy) == beats and beats_per_cycle(busy) == 1.0
    assert all(len(cycles[n][0]) == ports and len(cycles[n][1]) == ports for n in busy)
    for p in range(ports):
        given = [n for n, (rs, _) in enumerate(states) if rs[p][3] and rs[p][4]]
        assert given == [n + Scratchpad.latency for n in busy]
    expected = reference_scratchpad(64, unsigned(8), init, cycles)
    for p in range(ports):
        np.testing.assert_array_equal(np.array(responses[p]), np.array(expected[p]))


def test_same_cycle_read_returns_old_word_and_later_read_new():
    dut = Scratchpad(unsigned(8), 8, init=[10, 11, 12, 13])
    results = []

    async def testbench(ctx):
        ctx.set(dut.read[0].resp.ready, 1)
        ctx.set(dut.write[0].payload, {"addr": 3, "data": 99})
        ctx.set(dut.write[0].valid, 1)
        ctx.set(dut.read[0].req.payload.addr, 3)
        ctx.set(dut.read[0].req.valid, 1)
        for _ in range(2):
            assert ctx.get(dut.read[0].req.ready) and ctx.get(dut.write[0].ready)
            await ctx.tick()
            ctx.set(dut.write[0].valid, 0)
            assert ctx.get(dut.read[0].resp.valid)
            results.append(ctx.get(dut.read[0].resp.payload.data))

    run(dut, testbench, deadline=10)
    assert results == [13, 99]


def test_conflict_serves_lowest_port_first():
    dut = Scratchpad(unsigned(8), 8, read_ports=2, write_ports=2, banks=2,
                     init=[0, 1, 2, 3, 4, 5, 6, 7])
    log = []

    async def testbench(ctx):
        for port in dut.read:
            ctx.set(port.resp.ready, 1)
        ctx.set(dut.read[0].req.payload.addr, 2)
        ctx.set(dut.read[1].req.payload.addr, 4)     # same bank as 2
        ctx.set(dut.write[0].payload, {"addr": 1, "data": 8})
        ctx.set(dut.write[1].payload, {"addr": 3, "data": 9})   # same bank as 1
        for port in [*(p.req for p in dut.read), *dut.write]:
            ctx.set(port.valid, 1)
        log.append([ctx.get(p.req.ready) for p in dut.read] + [ctx.get(p.ready) for p in dut.write])
        await ctx.tick()
        ctx.set(dut.read[0].req.valid, 0)
        ctx.set(dut.write[0].valid, 0)
        log.append([ctx.get(p.req.ready) for p in dut.read] + [ctx.get(p.ready) for p in dut.write])
        log.append(ctx.get(dut.read[0].resp.payload.data))
        await ctx.tick()
        log.append(ctx.get(dut.read[1].resp.payload.data))

    run(dut, testbench, deadline=10)
    assert log == [[1, 0, 1, 0], [1, 1, 1, 1], 2, 4]


def test_response_held_under_backpressure_while_bank_is_reused():
    dut = Scratchpad(VECTOR, 8, read_ports=2, write_ports=0, banks=2,
                     init=[[n, -n, 2 * n, -2 * n] for n in range(8)])
    seen = []

    async def testbench(ctx):
        ctx.set(dut.read[0].req.payload.addr, 0)
        ctx.set(dut.read[0].req.valid, 1)
        await ctx.tick()
        ctx.set(dut.read[0].req.payload.addr, 6)
        ctx.set(dut.read[1].resp.ready, 1)
        ctx.set(dut.read[1].req.valid, 1)
        for addr in [2, 4, 6, 2, 4]:               # all in bank 0, like the held word
            ctx.set(dut.read[1].req.payload.addr, addr)
            assert not ctx.get(dut.read[0].req.ready)
            await ctx.tick()
            seen.append(to_python(ctx.get(dut.read[0].resp.payload.data)))
        ctx.set(dut.read[0].resp.ready, 1)
        await ctx.tick()
        seen.append(to_python(ctx.get(dut.read[0].resp.payload.data)))

    run(dut, testbench, deadline=20)
    assert seen == [[0, 0, 0, 0]] * 5 + [[6, -6, 12, -12]]


def test_elaborates_twice():
    dut = Scratchpad(VECTOR, 16, read_ports=2, banks=2)
    Fragment.get(dut, None)
    Fragment.get(dut, None)


@pytest.mark.parametrize("shape,depth,banks,size_bytes,brams", [
    (signed(8), 1024, 1, 1024, 1),
    (signed(8), 16384, 1, 16384, 8),
    (VECTOR, 4096, 4, 16384, 8),
    (signed(16), 512, 8, 1024, 8),
    (unsigned(36), 512, 1, 2560, 1),
    (unsigned(1), 16, 1, 16, 1),
])
def test_size(shape, depth, banks, size_bytes, brams):
    dut = Scratchpad(shape, depth, banks=banks)
    assert (dut.size_bytes, dut.brams_18k) == (size_bytes, brams)
    assert dut.latency == 1
    assert dut.addr_width == (depth - 1).bit_length()


def test_shape_type_error():
    with pytest.raises(TypeError,
                       match=r"^Scratchpad shape must be a shape-castable object, not 'x'$"):
        Scratchpad("x", 16)


def test_shape_width_error():
    with pytest.raises(ValueError,
                       match=r"^Scratchpad shape must be at least 1 bit wide, not unsigned\(0\)$"):
        Scratchpad(unsigned(0), 16)


def test_depth_type_error():
    with pytest.raises(TypeError, match=r"^Scratchpad depth must be a positive integer, not 2\.5$"):
        Scratchpad(8, 2.5)


def test_depth_value_error():
    with pytest.raises(ValueError, match=r"^Scratchpad depth must be a positive integer, not 0$"):
        Scratchpad(8, 0)


def test_read_ports_type_error():
    with pytest.raises(TypeError,
                       match=r"^Scratchpad read_ports must be a positive integer, not True$"):
        Scratchpad(8, 16, read_ports=True)


def test_read_ports_value_error():
    with pytest.raises(ValueError,
                       match=r"^Scratchpad read_ports must be a positive integer, not 0$"):
        Scratchpad(8, 16, read_ports=0)


def test_write_ports_type_error():
    with pytest.raises(TypeError,
                       match=r"^Scratchpad write_ports must be a non-negative integer, not '1'$"):
        Scratchpad(8, 16, write_ports="1")


def test_write_ports_value_error():
    with pytest.raises(ValueError,
                       match=r"^Scratchpad write_ports must be a non-negative integer, not -1$"):
        Scratchpad(8, 16, write_ports=-1)


def test_banks_type_error():
    with pytest.raises(TypeError, match=r"^Scratchpad banks must be a positive integer, not 2\.0$"):
        Scratchpad(8, 16, banks=2.0)


@pytest.mark.parametrize("depth,banks", [(16, 3), (12, 8)])
def test_banks_value_error(depth, banks):
    with pytest.raises(ValueError, match=rf"^Scratchpad banks must be a power of two dividing "
                                         rf"depth {depth}, not {banks}$"):
        Scratchpad(8, depth, banks=banks)


def test_init_type_error():
    with pytest.raises(TypeError, match=r"^Scratchpad init must be an iterable of words, not 5$"):
        Scratchpad(8, 16, init=5)


def test_init_length_error():
    with pytest.raises(ValueError,
                       match=r"^Scratchpad init must hold at most depth 4 words, not 5$"):
        Scratchpad(8, 4, init=[0] * 5)


@pytest.mark.parametrize("shape,word,text", [
    (unsigned(8), 256, "unsigned\\(8\\), not 256"),
    (signed(8), 1.0, "signed\\(8\\), not 1\\.0"),
    (VECTOR, [1, 2, 3], "ArrayLayout\\(signed\\(8\\), 4\\), not \\[1, 2, 3\\]"),
    (VECTOR, [1, 2, 3, 128], "ArrayLayout\\(signed\\(8\\), 4\\), not \\[1, 2, 3, 128\\]"),
])
def test_init_word_error(shape, word, text):
    with pytest.raises(ValueError,
                       match=rf"^Scratchpad init word 1 must be a constant of shape {text}$"):
        Scratchpad(shape, 4, init=[0 if not lanes(shape) else [0] * 4, word])


def test_slots_write_only_their_part():
    # Four lanes in two slots: each write replaces the enabled halves of the word only.
    dut = Scratchpad(VECTOR, 4, slots=2, init=[[1, 2, 3, 4]] * 4)
    writes = [(0, [9, 9, 0, 0], 0b01), (0, [0, 0, 7, 7], 0b10), (1, [5, 6, 7, 8], 0b00),
              (2, [5, 6, 7, 8], 0b11)]
    seen = []

    async def bench(ctx):
        for addr, word, en in writes:
            ctx.set(dut.write[0].valid, 1)
            ctx.set(dut.write[0].payload, {"addr": addr, "data": word, "en": en})
            await ctx.tick()
        ctx.set(dut.write[0].valid, 0)
        ctx.set(dut.read[0].resp.ready, 1)
        for addr in range(4):
            ctx.set(dut.read[0].req.valid, 1)
            ctx.set(dut.read[0].req.payload.addr, addr)
            await ctx.tick()
            ctx.set(dut.read[0].req.valid, 0)
            seen.append(to_python(ctx.get(dut.read[0].resp.payload.data)))
    run(dut, bench, deadline=100)
    assert seen == [[9, 9, 7, 7], [1, 2, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4]]


def test_slots_value_error():
    with pytest.raises(ValueError, match=r"^Scratchpad slots must divide the length of an array "
                                         r"layout shape, not 3 for "):
        Scratchpad(VECTOR, 16, slots=3)
    with pytest.raises(TypeError, match=r"^Scratchpad slots must be a positive integer, not 'a'$"):
        Scratchpad(VECTOR, 16, slots="a")


@pytest.mark.parametrize("shape,depth,banks,slots,brams", [
    (signed(8), 64, 1, 1, 0),                            # LUT RAM
    (signed(8), 512, 1, 1, 1),
    (unsigned(64), 128, 1, 1, 2),                        # two 36-bit wide blocks
    (data.ArrayLayout(signed(24), 4), 512, 1, 4, 3),     # 24-bit slots padded to 27
    (VECTOR, 4096, 4, 1, 8),                             # 2 DP16KD (18x1024) a bank
])
def test_brams(shape, depth, banks, slots, brams):
    dut = Scratchpad(shape, depth, banks=banks, slots=slots)
    assert dut.brams == brams
