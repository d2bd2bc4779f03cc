# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`Scratchpad` under random concurrent traffic.

What a read returns depends on the order of transfers, so the cocotb run records every cycle's
port states and the pytest side replays the recorded transfers on a numpy memory (reads see the
writes of earlier cycles only) and checks the documented arbitration, cycle by cycle.
"""

import random

import numpy as np
import pytest
from amaranth import *
from amaranth.lib import data

from intar_hw.hw.scratchpad import Scratchpad
from vectors import bits, run_streams


VECTOR = data.ArrayLayout(signed(8), 4)


def word_bits(shape, word):
    """The raw bits of one memory word."""
    if isinstance(shape, data.Layout):
        return bits(shape, word)
    return Const(word, shape).value & ((1 << Shape.cast(shape).width) - 1)


def random_word(rng, shape):
    if isinstance(shape, data.ArrayLayout):
        return [random_word(rng, shape.elem_shape) for _ in range(shape.length)]
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    return rng.randrange(lo, lo + (1 << shape.width))


def replay(depth, init, cycles, read_ports, write_ports, addr_width):
    """Raw read data per port: each cycle's reads see the memory before its writes."""
    mem = np.zeros(depth, dtype=object)
    mem[:len(init)] = init
    responses = [[] for _ in range(read_ports)]
    for cycle in cycles:
        for p in range(read_ports):
            valid, ready, addr = cycle[f"read__{p}__req"]
            if valid and ready:
                responses[p].append(int(mem[addr]))
        writes = []
        for q in range(write_ports):
            valid, ready, payload = cycle[f"write__{q}"]
            if valid and ready:
                writes.append((payload & ((1 << addr_width) - 1), payload >> addr_width))
        assert len({addr for addr, _ in writes}) == len(writes), "two writes to one address"
        for addr, word in writes:
            mem[addr] = word
    return responses


def check_arbitration(cycles, banks, read_ports, write_ports, addr_width):
    """The lowest-indexed port wins a bank; a held response stays put until taken."""
    conflicts = held = 0
    for n, cycle in enumerate(cycles):
        claimed = set()
        for p in range(read_ports):
            valid, ready, addr = cycle[f"read__{p}__req"]
            resp_valid, resp_ready, resp = cycle[f"read__{p}__resp"]
            free = not resp_valid or resp_ready
            if valid:
                assert ready == int(free and addr % banks not in claimed), \
                    f"read port {p} arbitration wrong in cycle {n}"
                conflicts += free and addr % banks in claimed
                if free:
                    claimed.add(addr % banks)
            if resp_valid and not resp_ready:
                held += 1
                later = cycles[n + 1][f"read__{p}__resp"] if n + 1 < len(cycles) else None
                assert later is None or (later[0] and later[2] == resp), \
                    f"read port {p} response dropped in cycle {n}"
        claimed = set()
        for q in range(write_ports):
            valid, ready, payload = cycle[f"write__{q}"]
            addr = payload & ((1 << addr_width) - 1)
            if valid:
                assert ready == int(addr % banks not in claimed), \
                    f"write port {q} arbitration wrong in cycle {n}"
                claimed.add(addr % banks)
    return conflicts, held


@pytest.mark.parametrize("shape,depth,banks,read_ports,write_ports", [
    (unsigned(8), 16, 1, 1, 1),
    (signed(16), 32, 4, 2, 2),
    (VECTOR, 16, 2, 3, 1),
    (unsigned(8), 12, 4, 4, 2),      # depth not a power of two
    (unsigned(8), 8, 2, 2, 0),       # a ROM
])
def test_random_traffic(tmp_path, shape, depth, banks, read_ports, write_ports):
    seed = depth * 7 + banks * 3 + read_ports
    rng = random.Random(seed)
    init_words = [random_word(rng, shape) for _ in range(depth - 3)]
    dut = Scratchpad(shape, depth, read_ports=read_ports, write_ports=write_ports, banks=banks,
                     init=init_words)
    addr_width = dut.addr_width
    reads = [[rng.randrange(depth) for _ in range(60)] for _ in range(read_ports)]
    writes = [[(rng.randrange(depth), random_word(rng, shape)) for _ in range(60)]
              for _ in range(write_ports)]
    write_layout = dut.write[0].payload.shape() if write_ports else None
    inputs = {f"read__{p}__req": reads[p] for p in range(read_ports)}
    inputs.update({f"write__{q}": [bits(write_layout, {"addr": a, "data": w}) for a, w in ws]
                   for q, ws in enumerate(writes)})
    outputs = {f"read__{p}__resp": len(reads[p]) for p in range(read_ports)}
    streams = [*(f"read__{p}__{side}" for p in range(read_ports) for side in ("req", "resp")),
               *(f"write__{q}" for q in range(write_ports))]
    log = run_streams(dut, "scratchpad", tmp_path,
                      [{"inputs": inputs, "outputs": outputs, "quiet": 4}],
                      seed=seed, idle=0.3, backpressure=0.4, record=streams)
    cycles = log["cycles"]
    init = [word_bits(shape, w) for w in init_words]
    expected = replay(depth, init, cycles, read_ports, write_ports, addr_width)
    for p in range(read_ports):
        name = f"read__{p}__resp"
        assert [c[f"read__{p}__req"][2] for c in cycles
                if c[f"read__{p}__req"][0] and c[f"read__{p}__req"][1]] == reads[p]
        assert log["received"][0][name] == expected[p], f"{name} differs from the replay"
    assert sum(c[f"write__{q}"][0] and c[f"write__{q}"][1]
               for c in cycles for q in range(write_ports)) == 60 * write_ports
    conflicts, held = check_arbitration(cycles, banks, read_ports, write_ports, addr_width)
    # The stalls must actually have produced conflicts and held responses.
    assert held and (conflicts or read_ports == 1)
