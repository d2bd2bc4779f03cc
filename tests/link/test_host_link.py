# amaranth: UnusedElaboratable=no
"""HostLink end to end in simulation: a host drives ``rx`` bit by bit with :mod:`frames` requests
and decodes ``tx`` with a software UART, against a RAM model on the memory ports (random stalls
and read latencies) and an accelerator model on start/busy/done."""

import random

import pytest

from intar_hw.link import HostLink, frames
from intar_hw.link.frames import Command, Status
from intar_hw.testbench import run, seeded


DIVISOR = 4
ADDR_WIDTH = 10
MAX_PAYLOAD = 16


def character(byte):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


class Bench:
    """A HostLink with its environment: host, RAM and accelerator models, all in Python.

    ``ram`` maps every address to a byte; ``writes`` lists ``(cycle, addr, data)`` of the
    transfers on ``mem_write``; ``starts`` the cycles in which ``start`` was high.
    """

    def __init__(self, *, seed=0, run_cycles=100):
        self.dut = HostLink(DIVISOR, ADDR_WIDTH, MAX_PAYLOAD)
        rng = random.Random(seed)
        self.ram = {a: rng.randrange(256) for a in range(1 << ADDR_WIDTH)}
        self.writes = []
        self.starts = []
        self.received = bytearray()
        self.cycle = 0
        self.run_cycles = run_cycles
        self.finished = False
        self._rng = seeded(seed + 1)

    def run(self, host, deadline):
        run(self.dut, host, processes=[self._ram, self._decoder, self._accelerator],
            deadline=deadline)

    async def send(self, ctx, data, *, gaps=True):
        """Drive the bytes ``data`` on ``rx``, with random idle gaps of up to 3 bit times."""
        for byte in data:
            if gaps:
                for _ in range(self._rng.randrange(4) * DIVISOR):
                    ctx.set(self.dut.rx, 1)
                    await ctx.tick()
            for level in character(byte):
                ctx.set(self.dut.rx, level)
                await ctx.tick().repeat(DIVISOR)
        ctx.set(self.dut.rx, 1)

    async def response(self, ctx, *, limit=None):
        """Wait for one whole response frame on ``tx``; return ``(status, payload)``."""
        limit = limit or 40 * DIVISOR * (MAX_PAYLOAD + 8)
        for _ in range(limit):
            if len(self.received) >= frames.HEADER_SIZE and \
                    len(self.received) >= frames.frame_size(self.received):
                break
            await ctx.tick()
        else:
            raise AssertionError(f"No whole response within {limit} cycles: "
                                 f"{bytes(self.received).hex()}")
        status, payload, rest = frames.decode_response(self.received)
        self.received[:] = rest
        return status, payload

    async def request(self, ctx, data):
        await self.send(ctx, data)
        return await self.response(ctx)

    async def _decoder(self, ctx):
        """Software UART on ``tx``: sample each bit in its middle; check start and stop bits."""
        since = None
        bits = []
        async for _, _, tx in ctx.tick().sample(self.dut.tx):
            if since is None:
                if not tx:
                    since, bits = 0, []
                continue
            since += 1
            if since % DIVISOR == DIVISOR // 2:
                bits.append(tx)
                if len(bits) == 10:
                    assert bits[0] == 0 and bits[9] == 1, f"bad character on tx: {bits}"
                    self.received.append(sum(b << i for i, b in enumerate(bits[1:9])))
                    since = None

    async def _ram(self, ctx):
        """Byte RAM behind ``mem_write``/``mem_read``, ready 70% of cycles, read latency 1-3."""
        dut, rng = self.dut, seeded(99)
        pending = None      # (data, first cycle it is valid)
        while True:
            write_ready = rng.random() < 0.7
            read_ready = pending is None and rng.random() < 0.7
            ctx.set(dut.mem_write.ready, write_ready)
            ctx.set(dut.mem_read.req.ready, read_ready)
            respond = pending is not None and self.cycle >= pending[1]
            ctx.set(dut.mem_read.resp.valid, respond)
            if respond:
                ctx.set(dut.mem_read.resp.payload.data, pending[0])
            _, _, w_valid, w_addr, w_data, r_valid, r_addr, resp_ready = await ctx.tick().sample(
                dut.mem_write.valid, dut.mem_write.payload.addr, dut.mem_write.payload.data,
                dut.mem_read.req.valid, dut.mem_read.req.payload.addr, dut.mem_read.resp.ready)
            if write_ready and w_valid:
                self.ram[w_addr] = w_data
                self.writes.append((self.cycle, w_addr, w_data))
            if respond and resp_ready:
                pending = None
            if read_ready and r_valid:
                pending = (self.ram[r_addr], self.cycle + 1 + rng.randrange(3))
            self.cycle += 1

    async def _accelerator(self, ctx):
        """Busy from the cycle after ``start``; ``done`` (a level) ``run_cycles`` after it."""
        left = None
        async for _, _, start in ctx.tick().sample(self.dut.start):
            if start:
                self.starts.append(self.cycle)
                self.finished = False
                ctx.set(self.dut.busy, 1)
                ctx.set(self.dut.done, 0)
                # Set after the tick that ends the start cycle S and counted down one per
                # tick: done is high from cycle S + run_cycles (run_cycles >= 2).
                left = self.run_cycles - 2
            elif left is not None:
                if left == 0:
                    ctx.set(self.dut.busy, 0)
                    ctx.set(self.dut.done, 1)
                    self.finished = True
                    left = None
                else:
                    left -= 1


def test_write_then_read():
    bench = Bench(seed=1)
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(MAX_PAYLOAD))
    wrapped = bytes([0xA5, 0x5A, 0x00, 0xFF, 0x13])
    before = dict(bench.ram)
    crc_sent = []

    async def host(ctx):
        frame = frames.write(0x123, data, max_payload=MAX_PAYLOAD)
        await bench.send(ctx, frame[:-1])
        crc_sent.append(bench.cycle)
        assert await bench.request(ctx, frame[-1:]) == (Status.OK, b"")
        assert await bench.request(ctx, frames.read(0x123, MAX_PAYLOAD,
                                                    max_payload=MAX_PAYLOAD)) == (Status.OK, data)
        # Neighbours untouched; addresses wrap modulo 2 ** ADDR_WIDTH, high bits are ignored.
        assert await bench.request(ctx, frames.read(0x122, 1)) == (Status.OK,
                                                                    bytes([before[0x122]]))
        assert await bench.request(ctx, frames.write(0xFFFF_FFFE, wrapped)) == (Status.OK, b"")
        assert await bench.request(ctx, frames.read(0x3FE, 5)) == (Status.OK, wrapped)

    bench.run(host, deadline=8000)
    first = [(a, d) for c, a, d in bench.writes[:MAX_PAYLOAD]]
    assert first == [(0x123 + n, b) for n, b in enumerate(data)]
    # Written only after the CRC byte has fully arrived (its stop bit).
    assert bench.writes[0][0] > crc_sent[0] + 9 * DIVISOR
    assert [a for _, a, _ in bench.writes[MAX_PAYLOAD:]] == [0x3FE, 0x3FF, 0, 1, 2]
    expected = dict(before)
    expected.update({0x123 + n: b for n, b in enumerate(data)})
    expected.update({a: b for a, b in zip([0x3FE, 0x3FF, 0, 1, 2], wrapped)})
    assert bench.ram == expected
    assert not bench.starts


def test_start_status_cycles():
    run_cycles = 1200
    bench = Bench(seed=2, run_cycles=run_cycles)

    async def host(ctx):
        assert await bench.request(ctx, frames.start()) == (Status.OK, b"")
        status, payload = await bench.request(ctx, frames.status())
        assert status == Status.OK and frames.status_flags(payload) == (True, False)
        status, payload = await bench.request(ctx, frames.cycles())
        assert status == Status.OK and 0 < frames.cycle_count(payload) < run_cycles
        while not bench.finished:
            await ctx.tick()
        status, payload = await bench.request(ctx, frames.status())
        assert status == Status.OK and frames.status_flags(payload) == (False, True)
        status, payload = await bench.request(ctx, frames.cycles())
        # The start pulse's cycle counts 0, the cycle done rises run_cycles.
        assert status == Status.OK and frames.cycle_count(payload) == run_cycles
        # A second START clears the done flag.
        assert await bench.request(ctx, frames.start()) == (Status.OK, b"")
        status, payload = await bench.request(ctx, frames.status())
        assert frames.status_flags(payload) == (True, False)

    bench.run(host, deadline=6000)
    assert len(bench.starts) == 2
    assert not bench.writes


def _write_frame():
    frame = frames.write(0x40, b"\x11\x22\x33\x44\x55", max_payload=MAX_PAYLOAD)
    assert 0xA5 not in frame[1:]
    return frame


def _flip(frame, index, bit):
    frame = bytearray(frame)
    frame[index] ^= 1 << bit
    return bytes(frame)


def _length_down():
    frame = _flip(_write_frame(), 2, 0)         # length 9 -> 8: the last data byte is taken
    assert frame[-2] != frames.crc8(frame[1:-2])  # as the CRC, and does not match it
    return frame


def _address_count(count):
    return (0x40).to_bytes(4, "little") + count.to_bytes(2, "little")


CORRUPTED = {
    "payload_bit": (lambda: _flip(_write_frame(), 9, 3), Status.BAD_CRC),
    "crc_bit": (lambda: _flip(_write_frame(), -1, 7), Status.BAD_CRC),
    "length_bit_down": (_length_down, Status.BAD_CRC),
    "length_bit_up": (lambda: _flip(_write_frame(), 2, 4), Status.TRUNCATED),
    "truncated": (lambda: _write_frame()[:7], Status.TRUNCATED),
    "unknown_command": (lambda: frames.encode_request(0x66, b"\x01\x02"), Status.BAD_COMMAND),
    "write_too_long": (lambda: frames.encode_request(
        Command.WRITE, bytes(4) + bytes(range(1, MAX_PAYLOAD + 2))), Status.BAD_LENGTH),
    "write_no_data": (lambda: frames.encode_request(Command.WRITE, bytes(4)), Status.BAD_LENGTH),
    "read_count_zero": (lambda: frames.encode_request(Command.READ, _address_count(0)),
                        Status.BAD_LENGTH),
    "read_count_too_big": (lambda: frames.encode_request(
        Command.READ, _address_count(MAX_PAYLOAD + 1)), Status.BAD_LENGTH),
    "read_short": (lambda: frames.encode_request(Command.READ, _address_count(1)[:5]),
                   Status.BAD_LENGTH),
    "start_with_payload": (lambda: frames.encode_request(Command.START, b"\x00"),
                           Status.BAD_LENGTH),
    "status_with_payload": (lambda: frames.encode_request(Command.STATUS, b"\x00"),
                            Status.BAD_LENGTH),
}


@pytest.mark.parametrize("case", list(CORRUPTED))
def test_bad_request_changes_nothing(case):
    make, expected = CORRUPTED[case]
    bench = Bench(seed=3)
    before = dict(bench.ram)

    async def host(ctx):
        assert await bench.request(ctx, make()) == (expected, b"")
        # The link is back in sync: the next request is served.
        status, payload = await bench.request(ctx, frames.status())
        assert status == Status.OK and frames.status_flags(payload) == (False, False)

    bench.run(host, deadline=3000)
    assert bench.ram == before
    assert not bench.writes and not bench.starts
    assert not bench.received


def test_bytes_before_sync_are_skipped():
    bench = Bench(seed=4)

    async def host(ctx):
        await bench.send(ctx, b"\x00\x5A\xFF\x13")
        assert await bench.request(ctx, frames.write(0x10, b"\x01\x02")) == (Status.OK, b"")
        assert await bench.request(ctx, frames.read(0x10, 2)) == (Status.OK, b"\x01\x02")

    bench.run(host, deadline=3000)
    assert [(a, d) for _, a, d in bench.writes] == [(0x10, 1), (0x11, 2)]


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^HostLink divisor must be an integer of at least 4, "
                                         r"not 2$"):
        HostLink(2, 10)
    with pytest.raises(ValueError, match=r"^HostLink addr_width must be an integer from 1 to 32, "
                                         r"not 33$"):
        HostLink(4, 33)
    with pytest.raises(TypeError, match=r"^HostLink addr_width must be an integer from 1 to 32, "
                                        r"not None$"):
        HostLink(4, None)
    with pytest.raises(ValueError, match=r"^HostLink max_payload must be an integer from 1 to "
                                         r"65531, not 0$"):
        HostLink(4, 10, 0)
    with pytest.raises(ValueError, match=r"^HostLink timeout_bits must be a positive integer, "
                                         r"not 0$"):
        HostLink(4, 10, timeout_bits=0)


def test_attributes():
    link = HostLink(217, 20)
    assert (link.divisor, link.addr_width, link.max_payload, link.timeout_bits) == \
        (217, 20, frames.MAX_PAYLOAD, frames.TIMEOUT_BITS)
    assert link.buffer_depth == 256
    assert HostLink(4, 8, 100).buffer_depth == 128
