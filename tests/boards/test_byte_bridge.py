# amaranth: UnusedElaboratable=no
"""ByteBridge against an OffchipPort: byte writes land in one lane of their word, byte reads
return it, with random idles on the byte streams. (BoardTop's tests run it end to end.)"""

import random

import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring

from boards import ByteBridge
from intar_hw.hw.offchip import OffchipPort, read_back
from intar_hw.testbench import get, put, run


def test_bytes_in_lanes():
    memory = OffchipPort(unsigned(32), 6, bandwidth=3, latency=3, max_burst=4,
                         init=[0x44332211, 0x88776655])
    bridge = ByteBridge(memory.addr_width, memory.count_width, 4)
    m = Module()
    m.submodules.memory, m.submodules.bridge = memory, bridge
    wiring.connect(m, bridge.read_req, memory.read_req)
    wiring.connect(m, memory.read_data, bridge.read_data)
    wiring.connect(m, bridge.write, memory.write)
    rng = random.Random(3)
    writes = [(1, 0xAA), (6, 0xBB), (23, 0xCC), (4, 0xDD)]
    found = {}

    async def bench(ctx):
        await put(ctx, bridge.byte_write, [{"addr": a, "data": d} for a, d in writes],
                  rng=rng, idle=0.5)
        for addr in range(0, 24, 3):
            await put(ctx, bridge.byte_read.req, [{"addr": addr}], rng=rng, idle=0.5)
            found[addr], = [beat.data for beat in await get(ctx, bridge.byte_read.resp, 1,
                                                            rng=rng, backpressure=0.5)]
        found["words"] = read_back(ctx, memory)

    run(m, bench, deadline=2000)
    assert found["words"] == [0x4433AA11, 0x88BB66DD, 0, 0, 0, 0xCC000000]
    image = b"".join(w.to_bytes(4, "little") for w in found["words"])
    assert {a: found[a] for a in range(0, 24, 3)} == {a: image[a] for a in range(0, 24, 3)}


def test_parameter_errors():
    with pytest.raises(TypeError, match=r"^ByteBridge word_addr_width must be an integer from "
                                        r"1 to 32, not 1\.5$"):
        ByteBridge(1.5, 9, 4)
    with pytest.raises(ValueError, match=r"^ByteBridge count_width must be an integer from 1 "
                                         r"to 32, not 0$"):
        ByteBridge(4, 0, 4)
    with pytest.raises(ValueError, match=r"^ByteBridge bus_bytes must be an integer from 1 to "
                                         r"256, not 512$"):
        ByteBridge(4, 9, 512)
    with pytest.raises(ValueError, match=r"^ByteBridge bus_bytes must be a power of two, "
                                         r"not 6$"):
        ByteBridge(4, 9, 6)


def test_attributes():
    bridge = ByteBridge(5, 9, 8)
    assert (bridge.word_addr_width, bridge.count_width, bridge.bus_bytes,
            bridge.addr_width) == (5, 9, 8, 8)
    assert ByteBridge(5, 9, 1).addr_width == 5
