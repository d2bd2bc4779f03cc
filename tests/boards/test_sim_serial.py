# amaranth: UnusedElaboratable=no
"""SimSerial against a UART loopback: what is written comes back; a silent line times out."""

import pytest
from amaranth import Module, Signal

from boards import SimSerial


def loopback():
    m = Module()
    rx, tx = Signal(init=1), Signal(init=1)
    delayed = Signal(init=1)
    m.d.sync += delayed.eq(rx)
    m.d.comb += tx.eq(delayed)
    return m, rx, tx


def test_loopback_and_timeout():
    m, rx, tx = loopback()
    port = SimSerial(m, rx, tx, 4, timeout_cycles=100)
    assert port.write(b"\x00\xa5\xff\x5a") == 4
    assert port.read(3) == b"\x00\xa5\xff"
    assert port.read(1) == b"\x5a"
    before = port.cycles
    assert port.read(2) == b""      # nothing more: returns after the timeout, like pyserial
    assert 100 <= port.cycles - before <= 100 + 40


def test_parameter_errors():
    m, rx, tx = loopback()
    with pytest.raises(TypeError, match=r"^SimSerial divisor must be a positive integer, "
                                        r"not 4\.0$"):
        SimSerial(m, rx, tx, 4.0)
    with pytest.raises(ValueError, match=r"^SimSerial timeout_cycles must be a positive "
                                         r"integer, not 0$"):
        SimSerial(m, rx, tx, 4, timeout_cycles=0)
