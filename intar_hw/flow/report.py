"""What synthesis and place-and-route found: resources, Fmax and the critical path.

:class:`SynthReport` is plain data (JSON round-trip); the functions below read the tools' own
outputs into it: Yosys's ``stat -json`` of the flattened netlist (cell counts), nextpnr's
``--report`` JSON (utilisation, Fmax, critical paths) and, when nextpnr stops early, its log
(the utilisation table it prints before placing, and its error line).
"""

import re
from dataclasses import asdict, dataclass, field


__all__ = ["Usage", "PathSummary", "SynthReport", "cell_counts", "module_areas",
           "nextpnr_usage", "logged_usage", "logged_error", "critical_path"]


@dataclass(frozen=True)
class Usage:
    """``used`` of ``available`` units of one resource kind."""
    used: int
    available: int

    @property
    def percent(self):
        return 100.0 * self.used / self.available if self.available else 0.0

    @property
    def overflows(self):
        return self.used > self.available


@dataclass(frozen=True)
class PathSummary:
    """The critical path: its delay split into logic and routing, and the blocks it crosses.

    Attributes
    ----------
    delay_ns, logic_ns, routing_ns : float
        The whole path (clock-to-out and setup included), its cell delays and its net delays.
    start, end : str
        The cells the path starts and ends at (Yosys's flattened names).
    blocks : tuple of str
        The blocks of the design it crosses, in order, each named by its instance path (at most
        two levels: ``core0.fetch``); ``top`` for the top level's own logic.
    """
    delay_ns: float
    logic_ns: float
    routing_ns: float
    start: str
    end: str
    blocks: tuple


@dataclass(frozen=True)
class SynthReport:
    """A design through Yosys and nextpnr on one device.

    Attributes
    ----------
    device : str
    top : str
        The module synthesised.
    fits : bool
        nextpnr placed and routed the design.
    resources : dict of str to Usage
        Per resource kind of the device (``logic``, ``ff``, ``dsp``, ``bram``, ...).
    cells : dict of str to int
        Yosys's counts of ``lut4`` and ``carry`` cells (and each kind's primitives).
    fmax_mhz : float or None
        Post-route Fmax of the design's clock (``None`` if it did not route).
    target_mhz : float
        The frequency nextpnr was asked for.
    seed : int
        nextpnr's placer seed (Fmax varies by seed) of the run reported.
    fmax_by_seed : dict of int to float or None
        With several seeds: each seed's Fmax (``None`` where it did not fit); the report is the
        run with the median Fmax.
    critical_path : PathSummary or None
    modules : dict of str to dict of str to int, or None
        With a hierarchical run: per instance path, the cells of each kind of the instance and
        everything below it.
    error : str or None
        Why the design does not fit (what overflowed, by how much) or nextpnr's error line.
    seconds : dict of str to float
        Wall time of each step (``export``, ``yosys``, ``nextpnr``, ``hierarchy``) when it ran.
    notes : tuple of str
        Facts that change how to read the figures (an out-of-context shell's flip-flops).
    cached : bool
        The report came from the cache; ``seconds`` are those of the run that made it.
    """
    device: str
    top: str
    fits: bool
    resources: dict
    cells: dict
    fmax_mhz: object
    target_mhz: float
    seed: int
    critical_path: object = None
    modules: object = None
    error: object = None
    seconds: dict = field(default_factory=dict)
    notes: tuple = ()
    cached: bool = False
    fmax_by_seed: dict = field(default_factory=dict)

    def to_dict(self):
        """A JSON-able dictionary; :meth:`from_dict` reads it back."""
        data = asdict(self)
        data["resources"] = {kind: {"used": u.used, "available": u.available,
                                    "percent": round(u.percent, 2)}
                             for kind, u in self.resources.items()}
        data["notes"] = list(self.notes)
        if self.critical_path is not None:
            data["critical_path"]["blocks"] = list(self.critical_path.blocks)
        return data

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["resources"] = {kind: Usage(u["used"], u["available"])
                             for kind, u in data["resources"].items()}
        if data.get("critical_path") is not None:
            path = dict(data["critical_path"])
            path["blocks"] = tuple(path["blocks"])
            data["critical_path"] = PathSummary(**path)
        data["notes"] = tuple(data.get("notes", ()))
        # JSON keys are strings.
        data["fmax_by_seed"] = {int(seed): fmax
                                for seed, fmax in data.get("fmax_by_seed", {}).items()}
        return cls(**data)

    def replace(self, **changes):
        return type(self)(**{**self.__dict__, **changes})

    def _seeds(self):
        """``seed N``, or the median's seed and every seed's Fmax."""
        if not self.fmax_by_seed:
            return f"seed {self.seed}"
        each = ", ".join(f"{fmax:.1f}" if fmax else "-" for fmax in self.fmax_by_seed.values())
        return (f"median of seeds {', '.join(map(str, self.fmax_by_seed))}: {each} MHz; "
                f"seed {self.seed} reported")

    def lines(self):
        """The report as text lines for a terminal."""
        head = (f"{self.top} on {self.device}: " +
                (f"Fmax {self.fmax_mhz:.1f} MHz (target {self.target_mhz:g} MHz, "
                 f"{self._seeds()})" if self.fits else f"does not fit: {self.error}"))
        out = [head]
        for kind, usage in self.resources.items():
            extra = ""
            if kind == "logic":
                extra = (f"  ({self.cells.get('lut4', 0):,} LUT4, "
                         f"{self.cells.get('carry', 0):,} carry cells)")
            out.append(f"  {kind:<7} {usage.used:>9,} of {usage.available:>9,} "
                       f"{usage.percent:6.1f}%{extra}")
        path = self.critical_path
        if path is not None:
            out.append(f"  critical path {path.delay_ns:.2f} ns ({path.logic_ns:.2f} logic, "
                       f"{path.routing_ns:.2f} routing): {' -> '.join(path.blocks)}")
        if self.modules:
            out.append("  area by block (hierarchical synthesis, before place-and-route):")
            width = max(len(name) for name in self.modules)
            for name, kinds in self.modules.items():
                out.append(f"    {name:<{width}}  " + ", ".join(
                    f"{count:,} {kind}" for kind, count in kinds.items() if count))
        times = ", ".join(f"{step} {secs:.1f} s" for step, secs in self.seconds.items())
        out.append(f"  tools: {times}" + (" (cached)" if self.cached else ""))
        out.extend(f"  note: {note}" for note in self.notes)
        return out


def _counts(stat_module, types):
    by_type = stat_module.get("num_cells_by_type", {})
    return sum(by_type.get(t, 0) for t in types)


def cell_counts(stat, cells):
    """Per kind of ``cells`` (a :attr:`.devices.Device.cells`), the cells of that kind in the
    design of a Yosys ``stat -json`` report."""
    design = stat.get("design") or next(iter(stat["modules"].values()))
    return {kind: _counts(design, types) for kind, types in cells.items()}


def module_areas(stat, cells, top, depth=2):
    """Per instance path (down to ``depth`` levels below ``top``), the cells of each kind of
    the instance and everything below it, from ``stat -json`` of a hierarchical netlist.

    Amaranth exports one module per instance, named by its path (``top.core0.fetch``), so the
    module names are the instance paths."""
    own = {name.lstrip("\\"): {kind: _counts(module, types) for kind, types in cells.items()}
           for name, module in stat["modules"].items()}
    areas = {}
    for name in sorted(own):
        if name == top or not name.startswith(top + "."):
            continue
        path = name[len(top) + 1:]
        if path.count(".") >= depth:
            continue
        below = [m for m in own if m == name or m.startswith(name + ".")]
        areas[path] = {kind: sum(own[m][kind] for m in below) for kind in cells}
    return areas


def nextpnr_usage(report, device):
    """Per resource kind of ``device`` with a nextpnr bel, its :class:`Usage` in nextpnr's
    ``--report`` JSON."""
    table = report["utilization"]
    return {kind: Usage(table[bel]["used"], table[bel]["available"])
            for kind, bel in device.bels.items() if bel in table}


_LOGGED = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def logged_usage(log, device):
    """As :func:`nextpnr_usage`, from the utilisation table in nextpnr's log (printed before
    placement, so present when the design does not fit)."""
    table = {bel: Usage(int(used), int(available))
             for bel, used, available in _LOGGED.findall(log)}
    return {kind: table[bel] for kind, bel in device.bels.items() if bel in table}


def logged_error(log):
    """nextpnr's first error line, or ``None``."""
    match = re.search(r"^ERROR: (.*)$", log, re.M)
    return match.group(1).strip() if match else None


def _block(cell, inside, depth=2):
    if inside and cell.startswith(inside + "."):
        cell = cell[len(inside) + 1:]
    parts = cell.split(".")
    if len(parts) == 1:
        return "top"
    return ".".join(parts[:min(depth, len(parts) - 1)])


def critical_path(report, inside=None):
    """The :class:`PathSummary` of the slowest clock-to-clock path in nextpnr's report;
    ``inside`` is the instance name of the design in a shell (dropped from block names)."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(step["delay"] for step in p["path"]))
    steps = worst["path"]
    blocks = []
    for step in steps:
        for end in ("from", "to"):
            cell = step[end]["cell"]
            if cell.startswith("$"):
                continue        # a cell Yosys or nextpnr made and named after no signal
            block = _block(cell, inside)
            if not blocks or blocks[-1] != block:
                blocks.append(block)
    kind = lambda *kinds: sum(s["delay"] for s in steps if s["type"] in kinds)  # noqa: E731
    return PathSummary(
        delay_ns=round(kind("clk-to-q", "logic", "routing", "setup"), 3),
        logic_ns=round(kind("clk-to-q", "logic", "setup"), 3),
        routing_ns=round(kind("routing"), 3),
        start=steps[0]["from"]["cell"], end=steps[-1]["to"]["cell"], blocks=tuple(blocks))
