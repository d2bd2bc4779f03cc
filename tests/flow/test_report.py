"""Reading the tools' outputs into a SynthReport (no tools run here)."""

import pytest

from intar_hw.flow.devices import DEVICES
from intar_hw.flow.report import (PathSummary, SynthReport, Usage, critical_path, logged_error,
                                  logged_usage, module_areas)

ECP5 = DEVICES["ecp5-85k"]

LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:       0/    365     0%
Info: \t              DP16KD:      29/    208    13%
Info: \t          MULT18X18D:     123/    156    78%
Info: \t          TRELLIS_FF:   30012/  83640    35%
Info: \t        TRELLIS_COMB:   92831/  83640   110%
Info: \t        TRELLIS_RAMW:      12/  10455     0%
ERROR: Unable to find legal placement for all cells, design is probably at utilisation limit.
"""


def test_logged_usage_and_error():
    assert logged_usage(LOG, ECP5) == {
        "logic": Usage(92831, 83640), "ff": Usage(30012, 83640), "dsp": Usage(123, 156),
        "bram": Usage(29, 208), "lutram": Usage(12, 10455)}
    assert logged_usage(LOG, ECP5)["logic"].overflows
    assert logged_error(LOG) == ("Unable to find legal placement for all cells, design is "
                                 "probably at utilisation limit.")
    assert logged_error("Info: fine\n") is None


def test_module_areas_sum_each_instance_and_what_is_below():
    cells = {"lut4": ("LUT4",), "dsp": ("MULT18X18D",)}
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"LUT4": 5, "\\top.core0": 1}},
        "\\top.core0": {"num_cells_by_type": {"LUT4": 10, "\\top.core0.mac": 1}},
        "\\top.core0.mac": {"num_cells_by_type": {"LUT4": 3, "MULT18X18D": 16}},
        "\\top.core0.mac.deep": {"num_cells_by_type": {"LUT4": 1}},
        "\\top.loader": {"num_cells_by_type": {"LUT4": 7}},
    }}
    assert module_areas(stat, cells, "top") == {
        "core0": {"lut4": 14, "dsp": 16}, "core0.mac": {"lut4": 4, "dsp": 16},
        "loader": {"lut4": 7, "dsp": 0}}


def _step(kind, delay, cell):
    return {"type": kind, "delay": delay, "from": {"cell": cell}, "to": {"cell": cell}}


def test_critical_path_names_the_blocks_it_crosses():
    report = {"critical_paths": [
        {"path": [_step("clk-to-q", 0.5, "a_FF")]},
        {"path": [_step("clk-to-q", 0.5, "loader.fill_FF"), _step("routing", 2.0, "x_LUT4"),
                  _step("logic", 0.25, "core0.fetch.step_LUT4"),
                  _step("logic", 0.0, "$abc$123$auto$lut"),
                  _step("routing", 1.0, "core0.fetch.more_LUT4"),
                  _step("setup", 0.25, "core1.mac.acc.bit_FF")]},
    ]}
    assert critical_path(report) == PathSummary(
        delay_ns=4.0, logic_ns=1.0, routing_ns=3.0, start="loader.fill_FF",
        end="core1.mac.acc.bit_FF", blocks=("loader", "top", "core0.fetch", "core1.mac"))
    assert critical_path({"critical_paths": []}) is None


def test_report_json_round_trip():
    report = SynthReport(
        device="ecp5-85k", top="top", fits=True, resources={"dsp": Usage(16, 156)},
        cells={"lut4": 340}, fmax_mhz=133.07, target_mhz=100, seed=1,
        critical_path=PathSummary(7.5, 4.5, 3.0, "a", "b", ("top",)),
        seconds={"yosys": 2.0}, notes=("n",))
    data = report.to_dict()
    assert data["resources"]["dsp"] == {"used": 16, "available": 156, "percent": 10.26}
    assert SynthReport.from_dict(data) == report
    assert report.lines()[0] == "top on ecp5-85k: Fmax 133.1 MHz (target 100 MHz, seed 1)"
    assert report.resources["dsp"].percent == pytest.approx(10.256, abs=1e-3)
