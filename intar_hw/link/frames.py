"""The host link's framed protocol: the contract between a host and :class:`.HostLink`.

Plain Python (no Amaranth): the host side uses it to talk to a board, the tests use it as the
reference, and :class:`.HostLink` takes its constants (codes, sync bytes, CRC polynomial) from it.

Framing
-------
All multi-byte integers are little-endian. A host sends one **request** and waits for its
**response** before sending the next (the link drops bytes that arrive while it executes a
request or sends a response).

Request::

    0xA5, command, length (2 bytes), payload (length bytes), crc8

Response::

    0x5A, status, length (2 bytes), payload (length bytes), crc8

``crc8`` is CRC-8 with polynomial 0x07 (x^8 + x^2 + x + 1), initial value 0, no reflection and
no final XOR, over every byte after the sync byte up to the end of the payload (code, length,
payload). Bytes received before a request's sync byte are skipped.

Commands
--------
``WRITE`` (0x01)
    Payload: a 4-byte byte address, then 1 to ``max_payload`` data bytes (:data:`MAX_PAYLOAD` by
    default) stored at consecutive addresses. The data are written to memory only once the whole
    frame has arrived and its CRC matched. Response payload: empty.
``READ`` (0x02)
    Payload: a 4-byte byte address and a 2-byte count, 1 to ``max_payload``. Response payload:
    the ``count`` bytes from consecutive addresses.
``START`` (0x03)
    Payload: empty. Pulses the accelerator's start and restarts the cycle counter. Response
    payload: empty.
``STATUS`` (0x04)
    Payload: empty. Response payload: one byte of flags, :data:`STATUS_BUSY` (the accelerator's
    busy input) and :data:`STATUS_DONE` (the accelerator finished since the last ``START``).
``CYCLES`` (0x05)
    Payload: empty. Response payload: the 8-byte cycle count of the last run, from the cycle of
    the start pulse to the cycle in which done rose (still counting while running).

Addresses are taken modulo the board memory's size (the link keeps the low address bits).

Status codes
------------
``OK`` (0)
    The request was executed; the payload is the command's result.
``BAD_CRC`` (1)
    The CRC did not match. Checked first: a request with a bad CRC changes nothing.
``BAD_COMMAND`` (2)
    Unknown command code (with a good CRC).
``BAD_LENGTH`` (3)
    The length (or a ``READ`` count) is not allowed for the command, e.g. a ``WRITE`` of more than
    ``max_payload`` data bytes.
``TRUNCATED`` (4)
    The line went idle for more than :data:`TIMEOUT_BITS` bit times inside a request; the bytes
    received so far are dropped. A length field corrupted to a larger value ends this way.

Every response but ``OK`` has an empty payload, and no request that is not answered ``OK``
changes memory or starts the accelerator.
"""

import enum


__all__ = ["REQUEST_SYNC", "RESPONSE_SYNC", "POLYNOMIAL", "MAX_PAYLOAD", "TIMEOUT_BITS",
           "HEADER_SIZE", "STATUS_BUSY", "STATUS_DONE", "Command", "Status", "crc8",
           "frame_size", "encode_request", "encode_response", "decode_request",
           "decode_response", "write", "read", "start", "status", "cycles", "status_flags",
           "cycle_count", "PAYLOAD_LIMIT", "check_max_payload"]


#: First byte of a request frame.
REQUEST_SYNC = 0xA5
#: First byte of a response frame.
RESPONSE_SYNC = 0x5A
#: CRC-8 generator polynomial without its x^8 term.
POLYNOMIAL = 0x07
#: Default largest number of data bytes in one ``WRITE`` or ``READ``.
MAX_PAYLOAD = 256
#: Default idle time, in bit times, after which the link drops a request cut short.
TIMEOUT_BITS = 20
#: Bytes of a frame before its payload: sync, code and the two length bytes.
HEADER_SIZE = 4
#: ``STATUS`` flag: the accelerator's busy input is high.
STATUS_BUSY = 0x01
#: ``STATUS`` flag: the accelerator's done rose since the last ``START``.
STATUS_DONE = 0x02

_ADDRESS_SIZE = 4
_COUNT_SIZE = 2
_LENGTH_LIMIT = 0xFFFF
#: The largest ``max_payload`` a link can take: a ``WRITE``'s address and data fit the length.
PAYLOAD_LIMIT = _LENGTH_LIMIT - _ADDRESS_SIZE


def check_max_payload(owner, value):
    """Raise :class:`TypeError`/:class:`ValueError` (naming ``owner``) unless ``value`` is a
    ``max_payload``: an integer from 1 to :data:`PAYLOAD_LIMIT`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} max_payload must be an integer from 1 to {PAYLOAD_LIMIT}, "
                        f"not {value!r}")
    if not 1 <= value <= PAYLOAD_LIMIT:
        raise ValueError(f"{owner} max_payload must be an integer from 1 to {PAYLOAD_LIMIT}, "
                         f"not {value!r}")


class Command(enum.IntEnum):
    """Request command codes."""
    WRITE = 0x01
    READ = 0x02
    START = 0x03
    STATUS = 0x04
    CYCLES = 0x05


class Status(enum.IntEnum):
    """Response status codes."""
    OK = 0
    BAD_CRC = 1
    BAD_COMMAND = 2
    BAD_LENGTH = 3
    TRUNCATED = 4


def _crc8_byte(crc, byte):
    crc ^= byte
    for _ in range(8):
        crc = ((crc << 1) ^ POLYNOMIAL if crc & 0x80 else crc << 1) & 0xFF
    return crc


def crc8(data, crc=0):
    """CRC-8 (polynomial :data:`POLYNOMIAL`, MSB first, no final XOR) of the bytes ``data``,
    continuing from ``crc`` (0 to start)."""
    for byte in bytes(data):
        crc = _crc8_byte(crc, byte)
    return crc


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, not {value!r}")


def _encode(sync, code, payload):
    payload = bytes(payload)
    if len(payload) > _LENGTH_LIMIT:
        raise ValueError(f"Payload must be at most {_LENGTH_LIMIT} bytes, not {len(payload)}")
    body = bytes([code]) + len(payload).to_bytes(2, "little") + payload
    return bytes([sync]) + body + bytes([crc8(body)])


def frame_size(header):
    """Total size in bytes of the frame (request or response) whose header begins ``header``.

    ``header`` holds at least :data:`HEADER_SIZE` bytes; a host reads these first, then the
    rest of the frame. Raises :class:`ValueError` if fewer bytes are given.
    """
    header = bytes(header)
    if len(header) < HEADER_SIZE:
        raise ValueError(f"Frame header must be at least {HEADER_SIZE} bytes, not {len(header)}")
    return HEADER_SIZE + int.from_bytes(header[2:4], "little") + 1


def encode_request(command, payload=b""):
    """The request frame for ``command`` (a :class:`Command` or any byte, so that tests can
    send unknown codes) with ``payload``. No check that the payload suits the command."""
    _check_int("Command", command, 0, 0xFF)
    return _encode(REQUEST_SYNC, command, payload)


def encode_response(status, payload=b""):
    """The response frame of ``status`` (a :class:`Status` or any byte) with ``payload``."""
    _check_int("Status", status, 0, 0xFF)
    return _encode(RESPONSE_SYNC, status, payload)


def _decode(data, sync, kind):
    data = bytes(data)
    if not data:
        raise ValueError(f"{kind} frame is empty")
    if data[0] != sync:
        raise ValueError(f"{kind} frame must begin with sync byte {sync:#04x}, not {data[0]:#04x}")
    if len(data) < HEADER_SIZE + 1:
        raise ValueError(f"{kind} frame is truncated: {len(data)} bytes, shorter than a header "
                         f"and CRC")
    size = frame_size(data)
    if len(data) < size:
        raise ValueError(f"{kind} frame is truncated: {len(data)} bytes of {size}")
    expected = crc8(data[1:size - 1])
    if data[size - 1] != expected:
        raise ValueError(f"{kind} frame CRC must be {expected:#04x}, not {data[size - 1]:#04x}")
    return data[1], data[HEADER_SIZE:size - 1], data[size:]


def decode_request(data):
    """Split the request frame at the start of ``data``: ``(command, payload, rest)``.

    ``command`` is a :class:`Command` when the code is known, else the plain integer; ``rest``
    holds the bytes after the frame. Raises :class:`ValueError` if the frame is malformed
    (wrong sync byte, truncated, bad CRC).
    """
    code, payload, rest = _decode(data, REQUEST_SYNC, "Request")
    try:
        code = Command(code)
    except ValueError:
        pass
    return code, payload, rest


def decode_response(data):
    """Split the response frame at the start of ``data``: ``(status, payload, rest)``.

    ``status`` is a :class:`Status`; ``rest`` holds the bytes after the frame. Raises
    :class:`ValueError` if the frame is malformed: wrong sync byte, truncated, bad CRC, unknown
    status, or a payload on a response other than ``OK``.
    """
    code, payload, rest = _decode(data, RESPONSE_SYNC, "Response")
    try:
        status = Status(code)
    except ValueError:
        raise ValueError(f"Response status must be one of "
                         f"{', '.join(f'{s.name} ({s.value})' for s in Status)}, "
                         f"not {code}") from None
    if status != Status.OK and payload:
        raise ValueError(f"Response {status.name} must have an empty payload, "
                         f"not {len(payload)} bytes")
    return status, payload, rest


def write(address, data, *, max_payload=MAX_PAYLOAD):
    """A ``WRITE`` request storing the bytes ``data`` (1 to ``max_payload``) from ``address``."""
    _check_int("Address", address, 0, (1 << 32) - 1)
    data = bytes(data)
    if not 1 <= len(data) <= max_payload:
        raise ValueError(f"Write data must be 1 to {max_payload} bytes, not {len(data)}")
    return encode_request(Command.WRITE, address.to_bytes(_ADDRESS_SIZE, "little") + data)


def read(address, count, *, max_payload=MAX_PAYLOAD):
    """A ``READ`` request for ``count`` bytes (1 to ``max_payload``) from ``address``."""
    _check_int("Address", address, 0, (1 << 32) - 1)
    _check_int("Read count", count, 1, max_payload)
    return encode_request(Command.READ, address.to_bytes(_ADDRESS_SIZE, "little") +
                          count.to_bytes(_COUNT_SIZE, "little"))


def start():
    """A ``START`` request."""
    return encode_request(Command.START)


def status():
    """A ``STATUS`` request."""
    return encode_request(Command.STATUS)


def cycles():
    """A ``CYCLES`` request."""
    return encode_request(Command.CYCLES)


def status_flags(payload):
    """``(busy, done)`` from the payload of a ``STATUS`` response."""
    payload = bytes(payload)
    if len(payload) != 1:
        raise ValueError(f"STATUS payload must be 1 byte, not {len(payload)}")
    return bool(payload[0] & STATUS_BUSY), bool(payload[0] & STATUS_DONE)


def cycle_count(payload):
    """The cycle count from the payload of a ``CYCLES`` response."""
    payload = bytes(payload)
    if len(payload) != 8:
        raise ValueError(f"CYCLES payload must be 8 bytes, not {len(payload)}")
    return int.from_bytes(payload, "little")
