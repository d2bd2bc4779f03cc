"""The host's side of the link: requests to a board over any byte port, checked responses.

Plain Python (no Amaranth): ``port`` is anything with ``write(bytes)`` and ``read(n) -> bytes``,
such as a ``serial.Serial`` from pyserial (whose ``read`` returns fewer bytes on a timeout) or a
simulated serial line.
"""

import time

import numpy as np

from . import frames
from .frames import Command, Status


__all__ = ["LinkError", "Host"]


class LinkError(RuntimeError):
    """A request was not answered ``OK``, or its response was missing or malformed."""


class Host:
    """Runs :mod:`.frames` requests on a board's :class:`~intar_hw.link.HostLink`.

    Each method sends one request (:meth:`write` and :meth:`read` as many as their size needs),
    waits for the response and raises :class:`LinkError`, naming the request, if the response is
    short (the port's ``read`` returned fewer bytes), malformed or not ``OK``.

    Parameters
    ----------
    port : object
        Has callable ``write(bytes)`` and ``read(n) -> bytes``.
    max_payload : int
        The board link's ``max_payload``: the largest ``WRITE`` or ``READ`` sent, 1 to 65531.

    Raises
    ------
    TypeError
        If ``port`` lacks ``read`` or ``write``, or ``max_payload`` is not an integer.
    ValueError
        If ``max_payload`` is out of range.
    """

    def __init__(self, port, *, max_payload=frames.MAX_PAYLOAD):
        for method in ("read", "write"):
            if not callable(getattr(port, method, None)):
                raise TypeError(f"Host port must have read(n) and write(data) methods, "
                                f"not {port!r}")
        frames.check_max_payload("Host", max_payload)
        self._port = port
        self._max_payload = max_payload

    @property
    def port(self):
        return self._port

    @property
    def max_payload(self):
        return self._max_payload

    def _receive(self, n, what):
        data = bytes(self._port.read(n))
        if len(data) != n:
            raise LinkError(f"No response to {what}: {len(data)} of {n} bytes received "
                            f"({data.hex() or 'nothing'})")
        return data

    def _request(self, frame, what, expected_length):
        """Send ``frame``, return the payload of its ``OK`` response of ``expected_length``."""
        self._port.write(frame)
        header = self._receive(frames.HEADER_SIZE, what)
        if header[0] != frames.RESPONSE_SYNC:
            raise LinkError(f"Malformed response to {what}: sync byte {header[0]:#04x}, "
                            f"expected {frames.RESPONSE_SYNC:#04x}")
        rest = self._receive(frames.frame_size(header) - frames.HEADER_SIZE, what)
        try:
            status, payload, _ = frames.decode_response(header + rest)
        except ValueError as error:
            raise LinkError(f"Malformed response to {what}: {error}") from None
        if status != Status.OK:
            raise LinkError(f"Request {what} failed with status {status.name}")
        if len(payload) != expected_length:
            raise LinkError(f"Malformed response to {what}: {len(payload)} payload bytes, "
                            f"expected {expected_length}")
        return payload

    def write(self, address, data):
        """Store the bytes ``data`` from byte ``address``, ``max_payload`` bytes per request."""
        data = bytes(data)
        for offset in range(0, len(data), self._max_payload):
            chunk = data[offset:offset + self._max_payload]
            frame = frames.write(address + offset, chunk, max_payload=self._max_payload)
            self._request(frame, f"{Command.WRITE.name} of {len(chunk)} bytes at "
                                 f"{address + offset:#x}", 0)

    def read(self, address, count):
        """``count`` bytes from byte ``address``, ``max_payload`` bytes per request."""
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"Read count must be a non-negative integer, not {count!r}")
        if count < 0:
            raise ValueError(f"Read count must be a non-negative integer, not {count!r}")
        data = bytearray()
        for offset in range(0, count, self._max_payload):
            n = min(self._max_payload, count - offset)
            frame = frames.read(address + offset, n, max_payload=self._max_payload)
            data += self._request(frame, f"{Command.READ.name} of {n} bytes at "
                                         f"{address + offset:#x}", n)
        return bytes(data)

    def start(self):
        """Start the accelerator (and restart the board's cycle counter)."""
        self._request(frames.start(), Command.START.name, 0)

    def status(self):
        """``(busy, done)``: the accelerator is running; it finished since the last start."""
        return frames.status_flags(self._request(frames.status(), Command.STATUS.name, 1))

    def cycles(self):
        """The board's cycle count: from the start pulse to the cycle of done (see
        :class:`~intar_hw.link.HostLink`), or so far while running."""
        return frames.cycle_count(self._request(frames.cycles(), Command.CYCLES.name, 8))

    def run(self, acc, inputs, params, *, timeout=10.0, poll=0.0):
        """Run ``acc`` (the board's accelerator) on these data; return ``(outputs, cycles)``.

        Writes :meth:`~intar_hw.compose.layout.Plan.offchip_image` from byte 0 (each word
        little-endian), starts, polls ``STATUS`` until done, then reads the cycle count and the
        output words (from word ``acc.output_base`` to ``acc.offchip_words``). ``outputs`` are
        decoded as :func:`intar_hw.simulate` decodes them (a dict of arrays by output name);
        ``cycles`` are the board's count, which :func:`intar_hw.simulate` measures as
        :attr:`~intar_hw.sim.SimResult.cycles`.

        Parameters
        ----------
        acc : Accelerator
            The accelerator the board was built with (``offchip=True``).
        inputs, params : dict of str to array
            As :func:`intar_hw.reference` takes them.
        timeout : float
            Seconds to wait for done after the start.
        poll : float
            Seconds to sleep between ``STATUS`` requests.

        Raises
        ------
        TypeError, ValueError
            For inputs or parameters the graph rejects.
        TimeoutError
            If the board is not done within ``timeout`` seconds.
        LinkError
            If a request fails.
        """
        graph, plan, bus_bytes = acc.graph, acc.plan, acc.bus_bytes
        inputs = {k: v.astype(np.int64) for k, v in graph.checked_inputs(inputs).items()}
        params = {k: v.astype(np.int64) for k, v in graph.checked_parameters(params).items()}
        image = plan.offchip_image(inputs, params, bus_bytes)
        self.write(0, b"".join(word.to_bytes(bus_bytes, "little") for word in image))
        self.start()
        deadline = time.monotonic() + timeout
        while not self.status()[1]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"The board was not done within {timeout} seconds")
            time.sleep(poll)
        cycles = self.cycles()
        data = self.read(acc.output_base * bus_bytes,
                         (acc.offchip_words - acc.output_base) * bus_bytes)
        words = [0] * acc.output_base + [int.from_bytes(data[i:i + bus_bytes], "little")
                                         for i in range(0, len(data), bus_bytes)]
        return plan.outputs_from_offchip(words, bus_bytes, acc.output_base), cycles
