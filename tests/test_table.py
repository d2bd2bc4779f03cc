import pytest

from intar_hw.table import Column, Table, cell_text


def test_cells_by_type():
    assert cell_text(1234567) == "1,234,567"
    assert cell_text(0.5, ".1%") == "50.0%"
    assert cell_text(None) == "-"
    assert cell_text(True) == "True"
    assert cell_text("fc1") == "fc1"
    assert cell_text(12, "5d") == "   12"


def test_text_fits_columns_to_cells():
    table = Table(Column("task", "<"), Column("cycles"), Column("util", spec=".3f"))
    text = table.text([("encoder_block_fc1", 12345, 0.5), None, ("fc2", 7, 1.0)],
                      title="t", footer=["total"])
    assert text.splitlines() == [
        "t",
        "task               cycles   util",
        "--------------------------------",
        "encoder_block_fc1  12,345  0.500",
        "--------------------------------",
        "fc2                     7  1.000",
        "--------------------------------",
        "total"]


def test_rows_at_fixed_widths_and_notes():
    table = Table(Column("model", "<", width=6), Column("cycles", width=8), Column("match"))
    assert table.header().splitlines() == ["model     cycles  match", "-" * 23]
    assert table.row("mlp", 437, "yes") == "mlp          437    yes"
    assert table.row("mlp", note="not generated: why") == "mlp     not generated: why"
    # Nothing is cut: a long cell pushes the rest of its row to the right.
    assert table.row("self_attention", 1, "yes") == "self_attention         1    yes"


def test_errors():
    with pytest.raises(ValueError, match=r"^Table row must have 2 cells, not 1: \('a',\)$"):
        Table(Column("a"), Column("b")).row("a")
    with pytest.raises(ValueError, match=r"^Column 'a' alignment must be '<' or '>', not '\^'$"):
        Column("a", "^")
    with pytest.raises(TypeError, match=r"^Table columns must be Column objects, not \('a',\)$"):
        Table("a")
