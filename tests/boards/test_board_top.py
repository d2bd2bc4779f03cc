# amaranth: UnusedElaboratable=no
"""BoardTop in simulation, driven by the same Host code as a real board through SimSerial: the
outputs equal the golden model's and the link's cycle count equals simulate()'s."""

import numpy as np
import pytest

import intar_hw as ih
from boards import BoardTop, SimSerial
from intar_hw.link import frames
from intar_hw.link.frames import Status
from intar_hw.link.host import Host


DIVISOR = 4


def board(one_layer):
    acc = one_layer()
    top = BoardTop(acc, DIVISOR)
    port = SimSerial(top, top.rx, top.tx, DIVISOR, timeout_cycles=2000)
    return acc, Host(port), port


def test_run_equals_reference_and_simulate(one_layer):
    acc, host, port = board(one_layer)
    g = acc.graph
    for seed in (0, 1):     # twice on one board: the second run reloads and restarts
        inputs, params = g.random_inputs(seed), g.random_parameters(seed)
        outputs, cycles = host.run(acc, inputs, params)
        golden = ih.reference(g, inputs, params)
        assert set(outputs) == {"fc"}
        np.testing.assert_array_equal(outputs["fc"], golden["fc"])
        assert outputs["fc"].dtype == golden["fc"].dtype
        assert cycles == ih.simulate(one_layer(), inputs, params).cycles == 33
        assert host.status() == (False, True)


def test_byte_lanes(one_layer):
    """A one-byte write changes one byte lane of its word (read-modify-write)."""
    acc, host, _ = board(one_layer)
    data = bytes(range(1, 13))
    host.write(0, data)
    assert host.read(0, 12) == data
    host.write(5, b"\xee")
    host.write(11, b"\xdd\xcc")     # crosses into the next word
    expected = bytearray(data) + b"\x00"
    expected[5], expected[11], expected[12] = 0xEE, 0xDD, 0xCC
    assert host.read(0, 13) == bytes(expected)
    assert host.read(6, 1) == bytes(expected[6:7])


def test_corrupted_write_changes_nothing(one_layer):
    acc, host, port = board(one_layer)
    host.write(0, bytes(range(8)))
    frame = bytearray(frames.write(2, b"\xff\xff"))
    frame[6] ^= 0x10        # a data bit of the address
    port.write(frame)
    header = port.read(frames.HEADER_SIZE)
    response = header + port.read(frames.frame_size(header) - frames.HEADER_SIZE)
    assert frames.decode_response(response) == (Status.BAD_CRC, b"", b"")
    assert host.read(0, 8) == bytes(range(8))


def test_parameter_errors(one_layer):
    acc = one_layer(used=True)
    with pytest.raises(TypeError, match=r"^BoardTop accelerator must be an Accelerator from "
                                        r"build\(\), not 'acc'$"):
        BoardTop("acc", DIVISOR)
    with pytest.raises(ValueError, match=r"^BoardTop accelerator must be built with "
                                         r"offchip=True, not False$"):
        BoardTop(one_layer(offchip=False, used=True), DIVISOR)
    with pytest.raises(ValueError, match=r"^BoardTop accelerator bus_bytes must be a power of "
                                         r"two, not 3$"):
        BoardTop(one_layer(bytes_per_cycle=3, used=True), DIVISOR)
    with pytest.raises(ValueError, match=r"^BoardTop divisor must be an integer of at least 4, "
                                         r"not 3$"):
        BoardTop(acc, 3)
    with pytest.raises(TypeError, match=r"^BoardTop max_payload must be an integer from 1 to "
                                        r"65531, not None$"):
        BoardTop(acc, DIVISOR, max_payload=None)
    with pytest.raises(ValueError, match=r"^BoardTop max_payload must be an integer from 1 to "
                                         r"65531, not 0$"):
        BoardTop(acc, DIVISOR, max_payload=0)


def test_attributes(one_layer):
    top = BoardTop(one_layer(used=True), 217, max_payload=64)
    assert (top.divisor, top.max_payload, top.memory_words, top.addr_width, top.memory) == (
        217, 64, 15, 6, None)
