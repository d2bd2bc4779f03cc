"""The timing facts are one module both sides import: the blocks know nothing of the scheduler."""

import ast
import pathlib

import intar_hw
from intar_hw import timing
from intar_hw.schedule import cost


PACKAGE = pathlib.Path(intar_hw.__file__).parent


def _imports(path):
    """Absolute module names a source file imports (relative imports resolved)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level] if node.level else ()
            module = ".".join(base + ((node.module,) if node.module else ()))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_hardware_blocks_import_no_scheduler_graph_or_golden():
    for path in sorted((PACKAGE / "hw").rglob("*.py")):
        bad = {name for name in _imports(path)
               if name.startswith(("intar_hw.schedule", "intar_hw.graph", "intar_hw.golden"))}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_timing_imports_neither_amaranth_nor_the_scheduler():
    names = _imports(PACKAGE / "timing.py")
    # Only the integer helpers, themselves free of both.
    assert {n for n in names if n.startswith(("amaranth", "intar_hw"))} == {
        "intar_hw.integers", "intar_hw.integers.cdiv"}
    assert not {n for n in _imports(PACKAGE / "integers.py") if n.startswith("intar_hw")}


def test_the_cost_model_uses_the_same_facts():
    for name in timing.__all__:
        assert getattr(cost, name) is getattr(timing, name)
