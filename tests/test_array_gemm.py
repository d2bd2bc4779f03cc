import numpy as np
import pytest

from intar_hw.array_gemm import gemm


@pytest.mark.parametrize("m,k,n,rows,cols,depth,width", [
    (4, 8, 4, 4, 4, 1, 8),      # one tile
    (5, 7, 6, 2, 3, 2, 4),      # every dimension padded
    (3, 6, 8, 1, 4, 3, 16),
])
def test_gemm_matches_numpy(m, k, n, rows, cols, depth, width):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    a = rng.integers(lo, hi, (m, k))
    b = rng.integers(lo, hi, (k, n))
    a[0, :] = lo  # extremes at the full reduction length
    b[:, 0] = lo
    result = gemm(a, b, rows=rows, cols=cols, depth=depth, operand_width=width)
    assert result.c.shape == (m, n)
    assert np.array_equal(result.c, a @ b)
    assert result.macs == m * n * k
    assert result.mac_units == rows * cols * depth


def test_gemm_utilisation_of_a_full_throughput_run():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (8, 16), dtype=np.int8)
    b = rng.integers(-128, 128, (16, 8), dtype=np.int8)
    result = gemm(a, b)
    assert np.array_equal(result.c, a.astype(np.int64) @ b.astype(np.int64))
    # 4 tiles of 16 beats, one beat per cycle, then the pipeline drains.
    assert result.cycles == 4 * 16 + 3
    assert result.utilisation == 8 * 8 * 16 / (16 * result.cycles)


def test_gemm_operand_type_error():
    with pytest.raises(TypeError, match=r"^GEMM operand A must be an integer numpy array, "
                                        r"not \[\[1\]\]$"):
        gemm([[1]], np.ones((1, 1), dtype=np.int64))


def test_gemm_inner_dimension_error():
    with pytest.raises(ValueError, match=r"^GEMM inner dimensions must agree, "
                                         r"not \(2, 3\) and \(4, 2\)$"):
        gemm(np.ones((2, 3), dtype=np.int64), np.ones((4, 2), dtype=np.int64))


def test_gemm_range_error():
    with pytest.raises(ValueError, match=r"^GEMM operand B must lie in \[-8, 7\] for 4-bit "
                                         r"operands, not \[1, 8\]$"):
        gemm(np.ones((2, 2), dtype=np.int64), np.array([[1, 8], [1, 1]]), operand_width=4)
