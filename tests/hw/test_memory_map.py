# amaranth: UnusedElaboratable=no
"""The ECP5 block-RAM rule (:mod:`intar_hw.hw.memory_map`) against Yosys's ``synth_ecp5``."""

import json
import random
import subprocess

import pytest
from amaranth import *
from amaranth.lib import data

import intar_hw as ih
from intar_hw.flow.synth import tool
from intar_hw.flow.verilog import to_verilog
from intar_hw.hw.memory_map import MemoryMapping, ecp5_brams, ecp5_memory
from intar_hw.hw.scratchpad import Scratchpad
from intar_hw.hw.tech import Target
from intar_hw.schedule import Resources, schedule


def yosys_cells(component, work, platform=None):
    """``(DP16KD, TRELLIS_DPR16X4)`` cells of ``component`` after ``synth_ecp5``'s memory
    mapping (the flow's script, stopped before the flip-flop and LUT mapping)."""
    (work / "design.v").write_text(to_verilog(component, "top", platform))
    (work / "map.ys").write_text("read_verilog design.v\n"
                                 "synth_ecp5 -top top -run begin:map_ffram\n"
                                 "tee -q -o stat.json stat -json\n")
    subprocess.run([tool("yosys"), "-q", "map.ys"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
    return cells.get("DP16KD", 0), cells.get("TRELLIS_DPR16X4", 0)


def _words(width, depth):
    rng = random.Random(width * depth)
    return [rng.getrandbits(width) for _ in range(depth)]


# (width, depth, read_ports, write_ports, banks, slots): one each of LUT RAM, DP16KD, the
# 36-bit PDPW16KD, the LUT/block RAM boundary, slotted writes, banks, ROMs in block RAM and
# in logic.
# make test runs four (LUT RAM, the boundary, PDPW16KD, a ROM in block RAM), make bench all.
_BENCH = pytest.mark.slow
CASES = [
    ((8, 64, 1, 1, 1, 1), (0, 8)),
    pytest.param((16, 48, 1, 1, 1, 1), (0, 12), marks=_BENCH),
    ((16, 100, 1, 1, 1, 1), (1, 0)),
    ((36, 1024, 1, 1, 1, 1), (2, 0)),
    pytest.param((1024, 48, 1, 1, 1, 1), (29, 0), marks=_BENCH),
    pytest.param((96, 512, 2, 1, 1, 4), (3, 0), marks=_BENCH),
    pytest.param((64, 256, 1, 1, 2, 1), (4, 0), marks=_BENCH),
    ((64, 512, 2, 0, 1, 1), (2, 0)),
    pytest.param((256, 64, 1, 0, 1, 1), (0, 0), marks=_BENCH),
]


@pytest.mark.parametrize("params, cells", CASES)
def test_rule_matches_yosys(params, cells, tmp_path):
    width, depth, reads, writes, banks, slots = params
    shape = data.ArrayLayout(unsigned(width // slots), slots) if slots > 1 else unsigned(width)
    dut = Scratchpad(shape, depth, read_ports=reads, write_ports=writes, banks=banks,
                     slots=slots, init=() if writes else _words(width, depth))
    mapping = ecp5_memory(width, depth // banks, write_ports=writes, granules=slots)
    estimate = banks * mapping.cells
    assert yosys_cells(dut, tmp_path) == cells
    assert dut.brams == cells[0]
    assert (estimate if mapping.kind == "distributed" else 0) == cells[1]


@pytest.mark.parametrize("kwargs, mapping", [
    ({}, MemoryMapping("block", 4)),
    ({"sync_read": False}, MemoryMapping("distributed", 1024)),
    ({"write_ports": 2}, MemoryMapping("logic", 0)),
    ({"write_ports": 0, "read_ports": 3}, MemoryMapping("block", 8)),
])
def test_port_kinds(kwargs, mapping):
    assert ecp5_memory(64, 1024, **kwargs) == mapping


@pytest.mark.parametrize("kwargs, error, message", [
    ({"width": 0}, ValueError, r"^Memory width must be at least 1, not 0$"),
    ({"depth": 2.0}, TypeError, r"^Memory depth must be an integer, not 2\.0$"),
    ({"read_ports": 0}, ValueError, r"^Memory read_ports must be at least 1, not 0$"),
    ({"granules": 3}, ValueError, r"^Memory granules must divide width 64, not 3$"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ecp5_brams(**{"width": 64, "depth": 16, **kwargs})


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gating_net", "self_attention"])
def test_accelerator_estimate_matches_yosys(model, tmp_path, capsys):
    acc = ih.build(schedule(ih.model_graph(model, "small"), Resources.for_model(model, "small"),
                            "intar"))
    estimate = acc.brams
    brams, _ = yosys_cells(acc, tmp_path, Target("ecp5"))
    with capsys.disabled():
        print(f"\nsmall {model} (intar): {estimate} DP16KD estimated, Yosys {brams}")
    assert abs(estimate - brams) <= 0.15 * brams
