import numpy as np
import pytest

from intar_hw import demo


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
    result = demo.gemm(a, b, rows=rows, cols=cols, depth=depth, operand_width=width)
    assert result.c.shape == (m, n)
    assert np.array_equal(result.c, a @ b)
    assert result.macs == m * n * k
    assert result.mac_units == rows * cols * depth


def test_gemm_utilisation_of_a_full_throughput_run():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (8, 16), dtype=np.int8)
    b = rng.integers(-128, 128, (16, 8), dtype=np.int8)
    result = demo.gemm(a, b)
    assert np.array_equal(result.c, a.astype(np.int64) @ b.astype(np.int64))
    # 4 tiles of 16 beats, one beat per cycle, then the pipeline drains.
    assert result.cycles == 4 * 16 + 3
    assert result.utilisation == 8 * 8 * 16 / (16 * result.cycles)


def test_main_reports_a_match(capsys, tmp_path, monkeypatch):
    # `make demo` runs every kernel at small scale; two at tiny scale keep this test quick
    # (tests/test_sim.py simulates every kernel under every policy).
    monkeypatch.chdir(tmp_path)
    assert demo.main("tiny", synthesis=False, models=("mlp", "gating_net")) == 0
    out = capsys.readouterr().out
    assert "geomean" in out
    lines = out.splitlines()
    for model in ("mlp", "gating_net"):
        for policy in ("sequential", "dataflow", "intar"):
            row = next(line for line in lines if line.split()[:2] == [model, policy])
            assert row.split()[-2] == "True"        # match
    assert "not generated" not in out
    assert "bit-exact" in lines[-1]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "cnn4l.png", "gating_net.png", "mlp.png", "self_attention.png", "vae.png"]


def test_gemm_demo_reports_a_match(capsys):
    assert demo.gemm_demo() == 0
    out = capsys.readouterr().out
    assert "match: True" in out
    assert "cycles simulated:" in out and "cycles/s" in out


def test_gemm_operand_type_error():
    with pytest.raises(TypeError, match=r"^GEMM operand A must be an integer numpy array, "
                                        r"not \[\[1\]\]$"):
        demo.gemm([[1]], np.ones((1, 1), dtype=np.int64))


def test_gemm_inner_dimension_error():
    with pytest.raises(ValueError, match=r"^GEMM inner dimensions must agree, "
                                         r"not \(2, 3\) and \(4, 2\)$"):
        demo.gemm(np.ones((2, 3), dtype=np.int64), np.ones((4, 2), dtype=np.int64))


def test_gemm_range_error():
    with pytest.raises(ValueError, match=r"^GEMM operand B must lie in \[-8, 7\] for 4-bit "
                                         r"operands, not \[1, 8\]$"):
        demo.gemm(np.ones((2, 2), dtype=np.int64), np.array([[1, 8], [1, 1]]), operand_width=4)
