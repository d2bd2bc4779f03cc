"""The host link protocol in plain Python: encoding, decoding, the CRC and the request helpers."""

import random

import pytest

from intar_hw.link import frames
from intar_hw.link.frames import Command, Status


def test_crc8_known_values():
    # CRC-8 (poly 0x07, init 0, no reflection, no final XOR) of "123456789" is 0xF4.
    assert frames.crc8(b"123456789") == 0xF4
    assert frames.crc8(b"") == 0
    assert frames.crc8(b"6789", frames.crc8(b"12345")) == 0xF4


def test_crc8_of_a_message_and_its_crc_is_zero():
    rng = random.Random(3)
    for size in range(1, 40):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert frames.crc8(data + bytes([frames.crc8(data)])) == 0


def test_request_layout():
    frame = frames.write(0x12345678, b"\x01\x02")
    body = bytes([Command.WRITE, 6, 0, 0x78, 0x56, 0x34, 0x12, 1, 2])
    assert frame == bytes([0xA5]) + body + bytes([frames.crc8(body)])
    assert frames.frame_size(frame) == len(frame) == 11
    assert frames.read(0x10, 300, max_payload=512)[1:10] == bytes([2, 6, 0, 0x10, 0, 0, 0,
                                                                   0x2C, 0x01])
    for helper, command in [(frames.start, Command.START), (frames.status, Command.STATUS),
                            (frames.cycles, Command.CYCLES)]:
        assert helper() == bytes([0xA5, command, 0, 0, frames.crc8(bytes([command, 0, 0]))])


@pytest.mark.parametrize("size", [0, 1, 7, 256, 1000])
def test_round_trip(size):
    rng = random.Random(size)
    payload = bytes(rng.randrange(256) for _ in range(size))
    tail = b"\x00\xA5"
    for status in Status:
        data = payload if status == Status.OK else b""
        assert frames.decode_response(frames.encode_response(status, data) + tail) == \
            (status, data, tail)
    for command in Command:
        assert frames.decode_request(frames.encode_request(command, payload) + tail) == \
            (command, payload, tail)
    assert frames.decode_request(frames.encode_request(0x77, payload)) == (0x77, payload, b"")


def test_helpers_decode_back():
    command, payload, rest = frames.decode_request(frames.write(7, b"abc"))
    assert (command, payload, rest) == (Command.WRITE, b"\x07\x00\x00\x00abc", b"")
    assert frames.status_flags(b"\x03") == (True, True)
    assert frames.status_flags(b"\x02") == (False, True)
    assert frames.cycle_count((123456789012).to_bytes(8, "little")) == 123456789012


def test_decode_response_errors():
    good = frames.encode_response(Status.OK, b"xyz")
    with pytest.raises(ValueError, match=r"^Response frame is empty$"):
        frames.decode_response(b"")
    with pytest.raises(ValueError, match=r"^Response frame must begin with sync byte 0x5a, "
                                         r"not 0xa5$"):
        frames.decode_response(b"\xA5" + good[1:])
    with pytest.raises(ValueError, match=r"^Response frame is truncated: 3 bytes, shorter than "
                                         r"a header and CRC$"):
        frames.decode_response(good[:3])
    with pytest.raises(ValueError, match=r"^Response frame is truncated: 7 bytes of 8$"):
        frames.decode_response(good[:-1])
    bad = good[:-1] + bytes([good[-1] ^ 0x10])
    with pytest.raises(ValueError, match=rf"^Response frame CRC must be {good[-1]:#04x}, "
                                         rf"not {bad[-1]:#04x}$"):
        frames.decode_response(bad)
    with pytest.raises(ValueError, match=r"^Response status must be one of OK \(0\), "
                                         r"BAD_CRC \(1\), .*, TRUNCATED \(4\), not 9$"):
        frames.decode_response(frames.encode_response(9))
    with pytest.raises(ValueError, match=r"^Response BAD_CRC must have an empty payload, "
                                         r"not 2 bytes$"):
        frames.decode_response(frames.encode_response(Status.BAD_CRC, b"no"))


def test_encoder_errors():
    with pytest.raises(ValueError, match=r"^Write data must be 1 to 256 bytes, not 257$"):
        frames.write(0, bytes(257))
    with pytest.raises(ValueError, match=r"^Write data must be 1 to 256 bytes, not 0$"):
        frames.write(0, b"")
    with pytest.raises(ValueError, match=r"^Read count must be from 1 to 16, not 17$"):
        frames.read(0, 17, max_payload=16)
    with pytest.raises(ValueError, match=r"^Address must be from 0 to 4294967295, "
                                         r"not 4294967296$"):
        frames.read(1 << 32, 1)
    with pytest.raises(TypeError, match=r"^Address must be an integer, not 1\.5$"):
        frames.write(1.5, b"x")
    with pytest.raises(ValueError, match=r"^Command must be from 0 to 255, not 256$"):
        frames.encode_request(256)
    with pytest.raises(ValueError, match=r"^Payload must be at most 65535 bytes, not 65536$"):
        frames.encode_request(Command.WRITE, bytes(65536))
    with pytest.raises(ValueError, match=r"^Frame header must be at least 4 bytes, not 2$"):
        frames.frame_size(b"\xA5\x01")
    with pytest.raises(ValueError, match=r"^STATUS payload must be 1 byte, not 0$"):
        frames.status_flags(b"")
    with pytest.raises(ValueError, match=r"^CYCLES payload must be 8 bytes, not 4$"):
        frames.cycle_count(bytes(4))


def test_frames_module_imports_no_amaranth():
    import subprocess
    import sys
    code = ("import sys, intar_hw.link.frames; "
            "print(any(m.startswith('amaranth') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
