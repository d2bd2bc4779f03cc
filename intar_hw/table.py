"""Text tables: the one formatter behind every table ``intar`` prints.

A :class:`Table` is a list of :class:`Column` s. It renders either all rows at once, each column as
wide as its widest cell (:meth:`Table.text`), or one row at a time at fixed widths, for tables
printed while they are being measured (:meth:`Table.header` then :meth:`Table.row`). Cells are
formatted by their column: integers with thousands separators, floats by the column's format
spec, ``None`` as ``-``; strings as given. Nothing is cut: a cell wider than a fixed column pushes
the rest of its row to the right.
"""

from dataclasses import dataclass


__all__ = ["Column", "Table", "cell_text"]


@dataclass(frozen=True)
class Column:
    """One column: its title, alignment (``"<"`` left or ``">"`` right), a format spec for
    numbers (``",.3f"``, ``"+.2%"``; integers default to ``","``) and, for rows rendered one at a
    time, its width (default: the title's)."""

    title: str
    align: str = ">"
    spec: str = None
    width: int = 0

    def __post_init__(self):
        if self.align not in "<>" or len(self.align) != 1:
            raise ValueError(f"Column {self.title!r} alignment must be '<' or '>', "
                             f"not {self.align!r}")


def cell_text(value, spec=None):
    """``value`` as a table cell: ``None`` is ``-``; a number takes ``spec`` (integers default
    to thousands separators); anything else its ``str``."""
    if value is None:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return format(value, spec or ",")
    if isinstance(value, float):
        return format(value, spec or ",.3g")
    return str(value)


class Table:
    """Rows of cells under titled columns; see the module docstring."""

    def __init__(self, *columns):
        if not columns or not all(isinstance(c, Column) for c in columns):
            raise TypeError(f"Table columns must be Column objects, not {columns!r}")
        self.columns = columns

    def _cells(self, row, partial=False):
        if len(row) > len(self.columns) or (not partial and len(row) != len(self.columns)):
            raise ValueError(f"Table row must have {len(self.columns)} cells, not {len(row)}: "
                             f"{row!r}")
        return [cell_text(v, c.spec) for v, c in zip(row, self.columns)]

    @staticmethod
    def _join(cells, columns, widths):
        parts = [cell.ljust(w) if c.align == "<" else cell.rjust(w)
                 for cell, c, w in zip(cells, columns, widths)]
        return "  ".join(parts)

    @property
    def _fixed_widths(self):
        return [max(c.width, len(c.title)) for c in self.columns]

    def header(self):
        """The titles and a rule under them, at the columns' fixed widths."""
        titles = self._join([c.title for c in self.columns], self.columns,
                            self._fixed_widths).rstrip()
        return f"{titles}\n{'-' * len(titles)}"

    def row(self, *values, note=None):
        """One row at the columns' fixed widths (see :meth:`header`); with ``note``, ``values``
        may fill only the first columns and ``note`` (an error, a reason) follows them."""
        cells = self._cells(values, partial=note is not None)
        text = self._join(cells, self.columns[:len(cells)], self._fixed_widths[:len(cells)])
        return text.rstrip() if note is None else f"{text}  {note}"

    def text(self, rows, title=None, footer=()):
        """The whole table: an optional title line, titles, a rule, ``rows`` (sequences of
        values; ``None`` draws a rule), and ``footer`` lines under a closing rule."""
        cells = [None if r is None else self._cells(r) for r in rows]
        widths = [max([len(c.title)] + [len(r[i]) for r in cells if r is not None])
                  for i, c in enumerate(self.columns)]
        titles = self._join([c.title for c in self.columns], self.columns, widths).rstrip()
        rule = "-" * max(len(titles), sum(widths) + 2 * (len(widths) - 1))
        lines = [] if title is None else [title]
        lines += [titles, rule]
        lines += [rule if r is None else self._join(r, self.columns, widths).rstrip()
                  for r in cells]
        if footer:
            lines += [rule, *footer]
        return "\n".join(lines)
