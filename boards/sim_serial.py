"""A serial port whose far end is a design running in Amaranth's simulator."""

from collections import deque

from amaranth.sim import Simulator

from intar_hw.testbench import CLOCK_PERIOD


__all__ = ["SimSerial"]


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"SimSerial {name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"SimSerial {name} must be a positive integer, not {value!r}")


class SimSerial:
    """A byte port (``write``/``read`` like pyserial's ``Serial``) on a simulated design's UART.

    ``write`` queues 8N1 characters for the design's ``rx`` (one bit every ``divisor`` cycles,
    back to back) and returns at once; ``read(n)`` runs the simulation until ``n`` bytes have
    been decoded from ``tx`` (each bit sampled in its middle) or, like a serial timeout, until
    the line to the design is idle and ``timeout_cycles`` more cycles have passed, and returns
    the bytes it has (possibly fewer than ``n``). The simulation advances only inside ``read``.

    Parameters
    ----------
    design : Elaboratable
        Clocked by the ``sync`` domain.
    rx, tx : Signal
        The design's serial input (driven here) and output (decoded here).
    divisor : int
        Clock cycles per bit.
    timeout_cycles : int
        Cycles ``read`` waits after the last bit sent, at least 1.

    Attributes
    ----------
    cycles : int
        Clock cycles simulated so far.

    Raises
    ------
    TypeError, ValueError
        If ``divisor`` or ``timeout_cycles`` is not a positive integer.
    """

    def __init__(self, design, rx, tx, divisor, *, timeout_cycles=100_000):
        _check_positive("divisor", divisor)
        _check_positive("timeout_cycles", timeout_cycles)
        self._rx, self._tx = rx, tx
        self._divisor = divisor
        self._timeout_cycles = timeout_cycles
        self._levels = deque()
        self._received = bytearray()
        self._cycles = 0
        self._sim = Simulator(design)
        self._sim.add_clock(CLOCK_PERIOD)
        self._sim.add_process(self._drive)
        self._sim.add_process(self._listen)

    @property
    def cycles(self):
        return self._cycles

    def write(self, data):
        for byte in bytes(data):
            self._levels.extend([0] + [(byte >> i) & 1 for i in range(8)] + [1])
        return len(data)

    def read(self, n):
        limit = None
        while len(self._received) < n:
            if not self._levels:
                limit = self._cycles + self._timeout_cycles if limit is None else limit
                if self._cycles >= limit:
                    break
            # One character time at a time; run_until takes an absolute time in seconds.
            self._sim.run_until((self._cycles + 10 * self._divisor) * CLOCK_PERIOD)
        data = bytes(self._received[:n])
        del self._received[:n]
        return data

    async def _drive(self, ctx):
        while True:
            if self._levels:
                ctx.set(self._rx, self._levels.popleft())
                for _ in range(self._divisor):
                    await ctx.tick()
                    self._cycles += 1
            else:
                ctx.set(self._rx, 1)
                await ctx.tick()
                self._cycles += 1

    async def _listen(self, ctx):
        since = None
        bits = []
        async for _, _, tx in ctx.tick().sample(self._tx):
            if since is None:
                if not tx:
                    since, bits = 0, []
                continue
            since += 1
            if since % self._divisor == self._divisor // 2:
                bits.append(tx)
                if len(bits) == 10:
                    # A character without its stop bit is a framing error, dropped like a UART.
                    if bits[9]:
                        self._received.append(sum(b << i for i, b in enumerate(bits[1:9])))
                    since = None
