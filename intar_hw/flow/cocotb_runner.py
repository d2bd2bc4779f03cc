"""Run cocotb testbenches against the exported Verilog of a component with Icarus Verilog."""

import json
import os
import shutil
import sys
from pathlib import Path

from .verilog import to_verilog


__all__ = ["run_cocotb"]


def run_cocotb(component, *, toplevel, test_module, test_dir, build_dir, parameters=None,
               platform=None, sources=()):
    """Export ``component`` as ``toplevel``, build it with Icarus and run ``test_module``.

    Parameters
    ----------
    component : wiring.Component
        The design; its ports become the Verilog module's ports.
    toplevel : str
        Verilog module name.
    test_module : str
        Name of the cocotb test module, found in ``test_dir``.
    test_dir : path-like
        Directory holding ``test_module``.
    build_dir : path-like
        Scratch directory for the Verilog, the Icarus build and the results file.
    parameters : dict or None
        JSON-serialisable test data passed to the cocotb module in the environment variable
        ``INTAR_COCOTB_PARAMS``.
    platform : optional
        Passed to the export (:func:`.verilog.to_verilog`): a target whose primitives the
        design may instantiate.
    sources : sequence of path-like
        Further Verilog files, such as simulation models of those primitives.

    Raises
    ------
    RuntimeError
        If Icarus Verilog is not installed.
    AssertionError
        If any cocotb test fails.
    """
    from cocotb_tools.runner import get_runner

    if shutil.which("iverilog") is None:
        raise RuntimeError("Icarus Verilog (iverilog) is not installed; run `make tools`")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    source.write_text(to_verilog(component, name=toplevel, platform=platform))
    runner = get_runner("icarus")
    # The runner passes -g2012; Yosys' initial triggers for `always @*` need -g2005 (it wins).
    runner.build(sources=[source, *map(Path, sources)], hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=["-g2005"], timescale=("1ns", "1ps"), always=True)
    env = {"INTAR_COCOTB_PARAMS": json.dumps(parameters or {}),
           "PYTHONPATH": os.pathsep.join([str(test_dir), *sys.path])}
    try:
        # Run inside build_dir so results and logs stay out of the source tree.
        runner.test(hdl_toplevel=toplevel, test_module=test_module, test_dir=build_dir,
                    build_dir=build_dir, extra_env=env)
    except SystemExit:
        # The runner exits the interpreter on a failed test; report it as a test failure.
        raise AssertionError(f"cocotb tests of {toplevel!r} failed; see the log above") from None
