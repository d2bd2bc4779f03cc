"""The timing facts are one module both sides import: the blocks know nothing of the scheduler."""

import ast
import pathlib

import intar_hw
from intar_hw import timing
from intar_hw.integers import cdiv
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


def _tiles_one_by_one(tiles):
    """The hardware's tile recurrence, tile by tile: (finish, drain end) of each tile."""
    finish, ends = None, []
    for kb, rows in tiles:
        before = ends[-2] if len(ends) > 1 else -10**9
        finish = kb if finish is None else max(finish + kb, before + 1)
        ends.append(max(finish, ends[-1] if ends else -10**9) + rows)
    return ends[-1]


def test_tiles_of_equal_rows_cost_the_larger_of_beats_and_rows():
    for kb, rows, tiles in ((3, 8, 5), (8, 3, 5), (4, 4, 7), (1, 1, 1)):
        cycles, _ = timing.core_cycles((rows, 4, 1), "MN", 1, rows, 4 * tiles, kb)
        assert cycles == kb + (tiles - 1) * max(kb, rows) + rows


def test_the_array_runs_a_tile_ahead_of_the_drain():
    # "NM" on an 8x8 array, N = 17: P tiles of 8, 8 and 1 rows, each over two Q tiles of M = 12.
    # With one result register the tiles would cost 6 + 8 + 8 + 8 + 6 + 1 = 45 cycles.
    cycles, loops = timing.core_cycles((8, 8, 1), "NM", 1, 12, 17, 6)
    assert loops == (2, 3, 6)
    assert cycles == _tiles_one_by_one([(6, 8)] * 4 + [(6, 1)] * 2) == 40


def test_long_runs_are_shifted_not_stepped():
    # Thousands of tiles, batches and reduction chunks: the same as stepping tile by tile.
    for args, chunk in (((4, 2, 1), "MN", 3, 37, 50, 9), None), (((8, 8, 2), "NM", 2, 300, 70,
                                                                  40), 16):
        pea, orientation, batch, M, N, K = args
        cycles, _ = timing.core_cycles(pea, orientation, batch, M, N, K, chunk)
        d1, d2, d3 = pea
        p_len, q_len = (M, N) if orientation == "MN" else (N, M)
        p_tiles, q_tiles = cdiv(p_len, d1), cdiv(q_len, d2)
        rows = [min(d1, p_len - p * d1) for p in range(p_tiles)]
        sizes = [K] if chunk is None else [min(chunk, K - c) for c in range(0, K, chunk)]
        tiles = [(cdiv(size, d3), rows[p]) for size in sizes for _ in range(batch)
                 for p in range(p_tiles) for _ in range(q_tiles)]
        assert cycles == _tiles_one_by_one(tiles)


def test_drain_after_the_last_operand():
    # The tile the last word completes drains 8 rows; the next two take 3 beats and 1 row each.
    assert timing.drain_after(3, 8, [(1, 2)]) == 10
    assert timing.drain_after(3, 1, []) == 1
