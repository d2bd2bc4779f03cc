# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`OffchipPort`: burst reads of the preloaded contents, writes
read back, random concurrent traffic replayed on a numpy memory, and its documented timing."""

import math
import random
from fractions import Fraction

import pytest
from amaranth import *
from amaranth.lib import data

from intar_hw.hw.offchip import OffchipPort
from vectors import bits, run_streams


VECTOR = data.ArrayLayout(signed(8), 4)


def random_word(rng, shape):
    if isinstance(shape, data.ArrayLayout):
        return [random_word(rng, shape.elem_shape) for _ in range(shape.length)]
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    return rng.randrange(lo, lo + (1 << shape.width))


def requests(dut, bursts):
    layout = dut.read_req.payload.shape()
    return [bits(layout, {"addr": a, "count": c}) for a, c in bursts]


def read_beats(dut, mem, bursts):
    """Expected raw ``read_data`` beats of ``bursts`` over the words ``mem``."""
    layout = dut.read_data.payload.shape()
    beats = []
    for addr, count in bursts:
        count = max(count, 1)
        beats += [bits(layout, {"data": mem[addr + n], "last": int(n == count - 1)})
                  for n in range(count)]
    return beats


def covering_bursts(rng, depth, max_burst):
    """Bursts of random lengths (0 reads one word) reading every word once, in order."""
    bursts, addr = [], 0
    while addr < depth:
        count = rng.randrange(min(max_burst, depth - addr) + 1)
        bursts.append((addr, count))
        addr += max(count, 1)
    return bursts


CONFIGS = [
    # shape, depth, bandwidth, latency, max_burst
    (unsigned(8), 32, 1, 2, 8),
    (signed(32), 24, Fraction(5, 2), 5, 4),
    (VECTOR, 16, 0.75, 3, 16),
]


@pytest.mark.parametrize("shape,depth,bandwidth,latency,max_burst", CONFIGS)
def test_bursts_writes_and_read_back(tmp_path, shape, depth, bandwidth, latency, max_burst):
    seed = depth + latency
    rng = random.Random(seed)
    init = [random_word(rng, shape) for _ in range(depth - 2)]
    dut = OffchipPort(shape, depth, bandwidth=bandwidth, latency=latency, max_burst=max_burst,
                      init=init)
    zero = [0] * shape.length if isinstance(shape, data.ArrayLayout) else 0
    mem = init + [zero] * 2
    first = covering_bursts(rng, depth, max_burst)
    writes = [(rng.randrange(depth), random_word(rng, shape)) for _ in range(30)]
    after = list(mem)
    for addr, word in writes:
        after[addr] = word
    second = covering_bursts(rng, depth, max_burst)
    write_layout = dut.write.payload.shape()
    run_streams(dut, "offchip", tmp_path, [
        {"inputs": {"read_req": requests(dut, first)},
         "outputs": {"read_data": read_beats(dut, mem, first)}, "quiet": latency + 2},
        {"inputs": {"write": [bits(write_layout, {"addr": a, "data": w}) for a, w in writes]}},
        {"inputs": {"read_req": requests(dut, second)},
         "outputs": {"read_data": read_beats(dut, after, second)}, "quiet": latency + 2},
    ], seed=seed, cycles_per_beat=60)


def replay(dut, init_raw, cycles):
    """Raw read beats and final raw contents, replaying the recorded transfers in order: a burst
    reads the memory as it was when its request was accepted, a write takes effect when taken."""
    width = Shape.cast(dut.shape).width
    addr_mask = (1 << dut.addr_width) - 1
    mem = list(init_raw) + [0] * (dut.depth - len(init_raw))
    beats = []
    for n, cycle in enumerate(cycles):
        rv, rr, request = cycle["read_req"]
        wv, wr, write = cycle["write"]
        assert not (rv and rr and wv and wr), f"read and write moved together in cycle {n}"
        if rv and rr:
            addr, count = request & addr_mask, max(request >> dut.addr_width, 1)
            beats += [mem[addr + k] | int(k == count - 1) << width for k in range(count)]
        if wv and wr:
            mem[write & addr_mask] = write >> dut.addr_width
    return beats, mem


@pytest.mark.parametrize("shape,depth,bandwidth,latency,max_burst", CONFIGS[1:])
def test_random_traffic(tmp_path, shape, depth, bandwidth, latency, max_burst):
    # Reads and writes at once: what a burst returns depends on the order the port chose.
    seed = depth * 3 + latency
    rng = random.Random(seed)
    init = [random_word(rng, shape) for _ in range(depth - 2)]
    dut = OffchipPort(shape, depth, bandwidth=bandwidth, latency=latency, max_burst=max_burst,
                      init=init)
    bursts = []
    for _ in range(20):
        count = rng.randrange(max_burst + 1)
        bursts.append((rng.randrange(depth - max(count, 1) + 1), count))
    writes = [(rng.randrange(depth), random_word(rng, shape)) for _ in range(30)]
    write_layout = dut.write.payload.shape()
    final = covering_bursts(rng, depth, max_burst)
    log = run_streams(dut, "offchip", tmp_path, [
        {"inputs": {"read_req": requests(dut, bursts),
                    "write": [bits(write_layout, {"addr": a, "data": w}) for a, w in writes]},
         "outputs": {"read_data": sum(max(c, 1) for _, c in bursts)}},
        # Then read everything back: the final contents.
        {"inputs": {"read_req": requests(dut, final)}, "outputs": {"read_data": depth},
         "quiet": latency + 2},
    ], seed=seed, backpressure=0.4, cycles_per_beat=60, record=["read_req", "read_data", "write"])
    word_layout = dut.read_data.payload.shape()
    init_raw = [bits(word_layout, {"data": w, "last": 0}) for w in init]
    cycles = log["cycles"]
    beats, mem = replay(dut, init_raw, cycles)
    accepted = [c["read_req"][2] for c in cycles if c["read_req"][0] and c["read_req"][1]]
    assert accepted == requests(dut, bursts) + requests(dut, final)
    taken = [c["write"][2] for c in cycles if c["write"][0] and c["write"][1]]
    assert taken == [bits(write_layout, {"addr": a, "data": w}) for a, w in writes]
    received = log["received"][0]["read_data"] + log["received"][1]["read_data"]
    assert received == beats
    # The final read-back saw the replayed contents, and backpressure did hold data.
    width = Shape.cast(shape).width
    assert [b & ((1 << width) - 1) for b in log["received"][1]["read_data"]] == mem
    assert any(c["read_data"][0] and not c["read_data"][1] for c in cycles)
    # Held read data stays put; a write never moves inside a burst.
    for now, later in zip(cycles, cycles[1:]):
        if now["read_data"][0] and not now["read_data"][1]:
            assert later["read_data"][0] and later["read_data"][2] == now["read_data"][2]
    in_burst = 0
    for c in cycles:
        if in_burst:
            assert not (c["write"][0] and c["write"][1])
            in_burst -= 1
        elif c["read_req"][0] and c["read_req"][1]:
            in_burst = max(c["read_req"][2] >> dut.addr_width, 1) - 1


@pytest.mark.parametrize("width,bandwidth,latency", [(8, 1, 6), (32, 2.5, 3), (32, 0.5, 4)])
def test_read_time_and_latency(tmp_path, width, bandwidth, latency):
    # No idles, no backpressure: a run of bursts takes transfer_cycles, the first beat comes
    # exactly `latency` cycles after its request is accepted.
    dut = OffchipPort(unsigned(width), 64, bandwidth=bandwidth, latency=latency, max_burst=16,
                      init=[n * 3 % (1 << width) for n in range(64)])
    words = 40 * 8 // width
    bursts = [(n, min(16, words - n)) for n in range(0, words, 16)]
    log = run_streams(dut, "offchip", tmp_path,
                      [{"inputs": {"read_req": requests(dut, bursts)},
                        "outputs": {"read_data": read_beats(dut, dut.init, bursts)}}],
                      seed=1, idle=0.0, backpressure=0.0, record=["read_req", "read_data"])
    cycles = log["cycles"]
    presented = next(n for n, c in enumerate(cycles) if c["read_req"][0])
    accepted = next(n for n, c in enumerate(cycles) if c["read_req"][0] and c["read_req"][1])
    given = [n for n, c in enumerate(cycles) if c["read_data"][0] and c["read_data"][1]]
    assert given[0] - accepted == latency
    assert given[-1] + 1 - presented == dut.transfer_cycles(words) == \
        math.ceil(Fraction(words * dut.bytes_per_word) / dut.bandwidth) + latency
