# amaranth: UnusedElaboratable=no
"""Board wrappers without the tools: divisors, argument errors, and the pins PlatformTop uses
(the bitstream builds themselves are manual checks, see boards.build)."""

import pytest
from amaranth.build import ResourceError
from amaranth.hdl import Fragment

from boards.build import BOARDS, build
from boards.platform_top import PlatformTop, baud_divisor


def test_baud_divisor():
    assert baud_divisor(25e6, 115200) == 217
    assert baud_divisor(12e6, 115200) == 104
    assert baud_divisor(12e6, 3e6) == 4
    with pytest.raises(TypeError, match=r"^Baud rate must be a positive number, not '9600'$"):
        baud_divisor(12e6, "9600")
    with pytest.raises(ValueError, match=r"^Baud rate must be a positive number, not 0$"):
        baud_divisor(12e6, 0)
    with pytest.raises(ValueError, match=r"^Baud rate must be at most a quarter of the 12 MHz "
                                         r"clock, not 4000000$"):
        baud_divisor(12e6, 4_000_000)
    with pytest.raises(ValueError, match=r"^Baud rate must be within 2% of 12 MHz / an integer, "
                                         r"not 2600000 \(7\.7% off at divisor 5\)$"):
        baud_divisor(12e6, 2_600_000)


def test_build_errors(tmp_path, one_layer):
    acc = one_layer(used=True)
    assert sorted(BOARDS) == ["icebreaker", "ulx3s-85f"]
    with pytest.raises(TypeError, match=r"^Board must be a string, not 1$"):
        build(acc, 1, tmp_path)
    with pytest.raises(ValueError, match=r"^Board must be one of ulx3s-85f, icebreaker, "
                                         r"not 'arty'$"):
        build(acc, "arty", tmp_path)
    with pytest.raises(ValueError, match=r"^Clock frequency of ulx3s-85f must be its "
                                         r"oscillator's 25 MHz \(no PLL yet\), not 50$"):
        build(acc, "ulx3s-85f", tmp_path, freq_mhz=50)
    with pytest.raises(ValueError, match=r"^Baud rate must be at most a quarter of the 12 MHz "
                                         r"clock, not 12000000$"):
        build(acc, "icebreaker", tmp_path, baud=12_000_000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_platform_top_pins(board, one_layer):
    """The design elaborates on each platform and takes the pins it documents."""
    platform = BOARDS[board].platform()
    Fragment.get(PlatformTop(one_layer(used=True)), platform)
    for name, number in [("uart", 0), ("led", 0), ("led", 1), ("button", 0)]:
        with pytest.raises(ResourceError, match=r"already been requested"):
            platform.request(name, number)
