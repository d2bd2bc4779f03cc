import numpy as np
from amaranth import Signal

from intar_hw.integers import cdiv, is_int


def test_cdiv_rounds_up_on_any_integers():
    assert [cdiv(a, 4) for a in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert cdiv(np.int64(9), 3) == 3
    assert np.array_equal(cdiv(np.array([1, 7, 9]), 3), [1, 3, 3])
    assert cdiv(Signal(8), 3).shape().width >= 8        # an Amaranth expression


def test_is_int_takes_numpy_integers_never_bools():
    assert is_int(3) and is_int(np.int32(3)) and is_int(np.uint8(0))
    assert not any(is_int(v) for v in (True, np.bool_(True), 3.0, "3", None))
