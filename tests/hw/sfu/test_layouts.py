import pytest

from intar_hw.hw.sfu.layouts import VectorLayout


def test_fields():
    layout = VectorLayout(8, 4)
    assert layout.size == 33 and layout.width == 8 and layout.lanes == 4
    assert repr(layout) == "VectorLayout(8, 4)"
    assert layout.const({"data": [-1, 2, -128, 127], "last": 1}).data[2] == -128


@pytest.mark.parametrize("args,error,message", [
    ((8.0, 4), TypeError, r"^VectorLayout width must be an integer, not 8\.0$"),
    ((1, 4), ValueError, r"^VectorLayout width must be at least 2, not 1$"),
    ((8, "4"), TypeError, r"^VectorLayout lanes must be an integer, not '4'$"),
    ((8, 0), ValueError, r"^VectorLayout lanes must be at least 1, not 0$"),
])
def test_errors(args, error, message):
    with pytest.raises(error, match=message):
        VectorLayout(*args)
