# amaranth: UnusedElaboratable=no
from pathlib import Path

import numpy as np
import pytest

from intar_hw.flow.cocotb_runner import run_cocotb
from intar_hw.hw.mac_array import MACArray
from intar_hw.hw.tech import Target


MODELS = Path(__file__).parent / "models"


@pytest.mark.parametrize("target", [None, "ecp5"])
@pytest.mark.parametrize("rows,cols,depth,width", [(2, 3, 1, 8), (4, 4, 2, 16)])
def test_mac_array_verilog_under_icarus(tmp_path, rows, cols, depth, width, target):
    """The portable array and the ECP5 one (MULT18X18D primitives, simulated by a model of the
    primitive) give the golden sums under the same stalls."""
    rng = np.random.default_rng(rows * cols + depth)
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    dut = MACArray(rows, cols, depth=depth, operand_width=width, max_reduction=8 * depth)
    i_layout, o_layout = dut.i.payload.shape(), dut.o.payload.shape()
    beats, expected = [], []
    for length in (1, 3, 8, 2, 5):
        a = rng.integers(lo, hi, (rows, length * depth))
        b = rng.integers(lo, hi, (cols, length * depth))
        a[0, :], b[0, :] = lo, lo  # the extreme products, at the longest reductions too
        for n in range(length):
            window = slice(n * depth, (n + 1) * depth)
            beats.append(i_layout.const({"a": a[:, window].tolist(), "b": b[:, window].tolist(),
                                         "last": int(n == length - 1)}).as_bits())
        expected.append(o_layout.const((a @ b.T).tolist()).as_bits())
    run_cocotb(dut, toplevel="mac_array", test_module="stream_cocotb",
               test_dir=Path(__file__).parent, build_dir=tmp_path,
               parameters={"beats": beats, "expected": expected, "seed": rows},
               platform=target and Target(target),
               sources=[MODELS / "MULT18X18D.v"] if target else [])
