# amaranth: UnusedElaboratable=no
"""The generator subcommands (``sim``, ``verilog``, ``synth``): bad input is one line and exit
status 2, found before any long work."""

import pytest

from intar_hw.cli import main


@pytest.mark.parametrize("argv, message", [
    (["verilog", "mlp", "-o", "/nonexistent/x.v"],
     "intar verilog: error: Verilog output must be a file path in a writable folder, not "
     "'/nonexistent/x.v'"),
    (["sim", "mlp", "--vcd", "/nonexistent/x.vcd"],
     "intar sim: error: VCD output must be a file path in a writable folder, not "
     "'/nonexistent/x.vcd'"),
    (["sim", "mlp", "--seed", "-1"], "intar sim: error: Seed must be in [0, 2**32), not -1"),
    (["synth", "mlp", "--device", "xc7"],
     "intar synth: error: Device must be one of ecp5-85k, ecp5-45k, ecp5-25k, ice40-up5k, "
     "not 'xc7'"),
    (["synth", "mlp", "--freq", "0"],
     "intar synth: error: Target frequency must be in (0, 1000] MHz, not 0.0"),
    (["synth", "mlp", "--pea", "4by4"],
     "intar synth: error: PE array shape must look like 4x4 or 1x16x9, not '4by4'"),
    (["synth", "mlp", "--seed", "1,x"],
     "intar synth: error: Seed must be an integer or integers joined by commas, not '1,x'"),
    (["synth", "mlp", "--seed", "2,2"],
     "intar synth: error: Seeds must be a non-empty tuple of distinct integers, not (2, 2)"),
    (["synth", "mlp", "--keep", "/proc/version/work"],
     "intar synth: error: Keep folder '/proc/version/work' cannot be made: Not a directory"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == message + "\n"


def test_verilog_takes_a_budget(tmp_path, capsys):
    out = tmp_path / "mlp.v"
    assert main(["verilog", "mlp", "--scale", "tiny", "--pea", "1x16", "--ccs", "1", "-o",
                 str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: ")
    assert "module top(" in out.read_text()
