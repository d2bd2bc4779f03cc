"""Host against a board model in Python (:mod:`frames` on both sides): framing of writes and
reads, decoded results, and a LinkError naming the request for every failed exchange."""

import pytest

from intar_hw.link import frames
from intar_hw.link.frames import Command, Status
from intar_hw.link.host import Host, LinkError


class FakeBoard:
    """A byte port answering requests from a dict memory; ``requests`` lists them decoded.

    ``reply`` replaces the response to the next request when set (raw bytes).
    """

    def __init__(self, *, done_after=1):
        self.memory = {}
        self.requests = []
        self.pending = bytearray()
        self.reply = None
        self.polls = 0
        self.done_after = done_after

    def write(self, data):
        command, payload, rest = frames.decode_request(data)
        assert rest == b""
        self.requests.append((command, bytes(payload)))
        if self.reply is not None:
            self.pending += self.reply
            self.reply = None
            return
        answer = b""
        if command == Command.WRITE:
            address = int.from_bytes(payload[:4], "little")
            for i, byte in enumerate(payload[4:]):
                self.memory[address + i] = byte
        elif command == Command.READ:
            address = int.from_bytes(payload[:4], "little")
            count = int.from_bytes(payload[4:], "little")
            answer = bytes(self.memory.get(address + i, 0) for i in range(count))
        elif command == Command.STATUS:
            self.polls += 1
            done = self.done_after is not None and self.polls >= self.done_after
            answer = bytes([frames.STATUS_DONE if done else frames.STATUS_BUSY])
        elif command == Command.CYCLES:
            answer = (123456789).to_bytes(8, "little")
        self.pending += frames.encode_response(Status.OK, answer)

    def read(self, n):
        data = bytes(self.pending[:n])
        del self.pending[:n]
        return data


def test_write_and_read_split_into_frames():
    board = FakeBoard()
    host = Host(board, max_payload=4)
    host.write(0x10, bytes(range(10)))
    assert [(c, p[:4]) for c, p in board.requests] == [
        (Command.WRITE, (0x10).to_bytes(4, "little")),
        (Command.WRITE, (0x14).to_bytes(4, "little")),
        (Command.WRITE, (0x18).to_bytes(4, "little")),
    ]
    assert [len(p) - 4 for _, p in board.requests] == [4, 4, 2]
    assert host.read(0x11, 9) == bytes(range(1, 10))
    assert [len(board.requests), board.requests[-1][1]] == [
        6, (0x19).to_bytes(4, "little") + (1).to_bytes(2, "little")]
    assert host.read(0, 0) == b""


def test_start_status_cycles():
    board = FakeBoard(done_after=2)
    host = Host(board)
    host.start()
    assert host.status() == (True, False)
    assert host.status() == (False, True)
    assert host.cycles() == 123456789
    assert [c for c, _ in board.requests] == [Command.START, Command.STATUS, Command.STATUS,
                                              Command.CYCLES]


def test_status_not_ok():
    board = FakeBoard()
    board.reply = frames.encode_response(Status.BAD_CRC)
    with pytest.raises(LinkError, match=r"^Request WRITE of 2 bytes at 0x20 failed with status "
                                        r"BAD_CRC$"):
        Host(board).write(0x20, b"ab")


@pytest.mark.parametrize("reply, message", [
    (b"", r"^No response to START: 0 of 4 bytes received \(nothing\)$"),
    (b"\x5a\x00\x00", r"^No response to START: 3 of 4 bytes received \(5a0000\)$"),
    (b"\x00\x00\x00\x00\x00", r"^Malformed response to START: sync byte 0x00, expected 0x5a$"),
    (frames.encode_response(Status.OK)[:-1] + b"\x01",
     r"^Malformed response to START: Response frame CRC must be 0x00, not 0x01$"),
    (frames.encode_response(Status.OK, b"x"),
     r"^Malformed response to START: 1 payload bytes, expected 0$"),
])
def test_malformed_response(reply, message):
    board = FakeBoard()
    board.reply = reply
    with pytest.raises(LinkError, match=message):
        Host(board).start()


def test_run_loads_image_and_times_out(one_layer):
    acc = one_layer(used=True)
    g = acc.graph
    board = FakeBoard(done_after=None)
    inputs, params = g.random_inputs(0), g.random_parameters(0)
    with pytest.raises(TimeoutError, match=r"^The board was not done within 0 seconds$"):
        Host(board).run(acc, inputs, params, timeout=0)
    image = acc.plan.offchip_image(inputs, params, acc.bus_bytes)
    assert bytes(board.memory[a] for a in range(4 * len(image))) == b"".join(
        w.to_bytes(4, "little") for w in image)
    assert [c for c, _ in board.requests][-2:] == [Command.START, Command.STATUS]


def test_parameter_errors():
    class WriteOnly:
        def write(self, data):
            pass

        def __repr__(self):
            return "WriteOnly()"

    with pytest.raises(TypeError, match=r"^Host port must have read\(n\) and write\(data\) "
                                        r"methods, not WriteOnly\(\)$"):
        Host(WriteOnly())
    with pytest.raises(TypeError, match=r"^Host max_payload must be an integer from 1 to 65531, "
                                        r"not 2\.0$"):
        Host(FakeBoard(), max_payload=2.0)
    with pytest.raises(ValueError, match=r"^Host max_payload must be an integer from 1 to "
                                         r"65531, not 0$"):
        Host(FakeBoard(), max_payload=0)
    with pytest.raises(ValueError, match=r"^Read count must be a non-negative integer, "
                                         r"not -1$"):
        Host(FakeBoard()).read(0, -1)
    with pytest.raises(TypeError, match=r"^Read count must be a non-negative integer, "
                                        r"not '1'$"):
        Host(FakeBoard()).read(0, "1")
    with pytest.raises(ValueError, match=r"^Address must be from 0 to 4294967295, not -1$"):
        Host(FakeBoard()).write(-1, b"a")
