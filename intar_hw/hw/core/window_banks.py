"""Banking a window reader's memory: one copy of the input, read on one port per bank.

A :class:`~.window_read.WindowReader` serves, each cycle, a word of ``block x d3`` im2col
elements (times the pooled reads of each): up to a hundred element reads. A block RAM reads on
one port beside its write, so a memory read per element is a memory copy per element (the
small CNN's readers alone took more block RAMs than the device has). Yet the elements of one
request come from a few memory words: a convolution's window covers a small neighbourhood of
its input, and neighbouring taps share words.

:func:`plan_banks` finds, before any hardware is built, a *bank plan*: the memory's words dealt
over ``banks`` (a power of two) so that the words any request reads are in different banks.
Word ``w`` lives in bank ``(w + skew * (w >> log2(banks))) % banks`` at row ``w >> log2(banks)``
(a skewed cyclic layout: a row of banks is rotated by ``skew`` from the previous one, which
separates the rows of a 2-D window that a plain cyclic layout would put on the same banks).
Each bank is then read once a request, and each element port picks its element from the one
bank its word is in.

The plan is proved, not hoped for: every request every program can make (each ``(tile,
beat)`` of its operand) is enumerated through :meth:`.window.Window.locate` on numpy arrays, and
a layout is accepted only if no request reads two different words from one bank. Among the
accepted layouts, the plan takes the one needing the fewest multiplexer inputs: for each element
port, the ``(bank, element)`` pairs it ever reads (a port reads from a few banks when the
pattern is regular). Plain Python and numpy, no Amaranth.
"""

from dataclasses import dataclass

import numpy as np

from ...integers import cdiv


__all__ = ["BankPlan", "plan_banks", "window_reads", "banks_pay", "SEARCH_LIMIT"]


#: Element reads (requests times ports) above which no plan is searched (the reader keeps a
#: memory copy per two ports instead): the enumeration's numpy arrays and search time grow with it.
SEARCH_LIMIT = 2_000_000

# Element reads checked per number of banks in the search for a skew.
_CHECKS = 40_000_000


@dataclass(frozen=True)
class BankPlan:
    """Where each memory word lives and what each element port may read.

    Attributes
    ----------
    banks : int
        Banks (a power of two).
    skew : int
        Rotation of each row of banks from the previous one.
    pairs : tuple of tuple of (int, int)
        Per element port, the ``(bank, element)`` pairs it reads in some request (sorted).
    feeders : tuple of tuple of int
        Per bank, the element ports that read it in some request.
    """
    banks: int
    skew: int
    pairs: tuple
    feeders: tuple

    @property
    def shift(self):
        """``log2(banks)``: a word's row is ``word >> shift``."""
        return self.banks.bit_length() - 1

    def bank(self, word):
        """The bank of ``word`` (an integer, numpy array or Amaranth value)."""
        return (word + self.skew * (word >> self.shift)) & (self.banks - 1)

    def row(self, word):
        """The row of ``word`` in its bank."""
        return word >> self.shift

    def rows(self, depth):
        """Rows of each bank for a memory of ``depth`` words."""
        return max(1, cdiv(depth, self.banks))

    def deal(self, words, depth):
        """Per bank, its rows' initial contents from ``words`` (a memory's initial words, the
        rest zero)."""
        out = [[0] * self.rows(depth) for _ in range(self.banks)]
        for w, value in enumerate(words):
            out[self.bank(w)][self.row(w)] = value
        return out

    @property
    def inputs(self):
        """Multiplexer inputs of all element ports (the plan's cost)."""
        return sum(len(p) for p in self.pairs)


def window_reads(windows, d3, block, reads):
    """The element reads of every request, per program with a window.

    ``windows`` as :class:`~.window_read.WindowReader` takes them (``(window, block, kb)`` or
    ``None``); ``block`` and ``reads`` the reader's lanes and reads an element (the largest
    of the programs'). Returns a list of
    ``(words, elements)`` pairs of integer arrays, one pair per program with a window, each of
    shape ``(requests, ports)``: port ``(r * d3 + k) * reads + j`` is read ``j`` of lane ``r``,
    element ``k``; ``words`` is ``-1`` where the port reads nothing (a zero, a padding tap, an
    invalid pooled read).
    """
    out = []
    for entry in windows:
        if entry is None:
            continue
        window, rows, kb = entry
        tiles = cdiv(window.M, rows)
        tile, beat, lane, k = (a.reshape(tiles * kb, block * d3) for a in np.meshgrid(
            np.arange(tiles), np.arange(kb), np.arange(block), np.arange(d3), indexing="ij"))
        row = tile * rows + lane if window.rows is None else window.tile_row(tile, lane)
        col = beat * d3 + k
        real = (lane < rows) & (row < window.pixels) & (col < window.K)
        # Rows past the program's are never located (their arithmetic may leave the tensor).
        row, col = np.where(real, row, 0), np.where(real, col, 0)
        inside, located = window.locate(row, col)
        words = np.full((tiles * kb, block * d3, reads), -1, dtype=np.int64)
        elements = np.zeros_like(words)
        for j, (valid, word, element) in enumerate(located):
            used = np.broadcast_to(real & inside & valid, row.shape)
            words[:, :, j] = np.where(used, np.broadcast_to(word, row.shape), -1)
            elements[:, :, j] = np.where(used, np.broadcast_to(element, row.shape), 0)
        ports = block * d3 * reads
        out.append((words.reshape(-1, ports), elements.reshape(-1, ports)))
    return out


def _conflicts(words, plan_bank):
    """Whether some request reads two different words from one bank."""
    request = np.broadcast_to(np.arange(words.shape[0])[:, None], words.shape)
    used = words >= 0
    w, req = words[used], request[used]
    key = req * (1 << 20) + plan_bank(w)
    order = np.lexsort((w, key))
    key, w = key[order], w[order]
    return bool(np.any((key[1:] == key[:-1]) & (w[1:] != w[:-1])))


def _pairs(reads, plan_bank, elements_per_word, ports):
    """Per port, the sorted ``(bank, element)`` pairs it reads."""
    found = [set() for _ in range(ports)]
    for words, elements in reads:
        port = np.broadcast_to(np.arange(ports)[None, :], words.shape)
        used = words >= 0
        codes = np.unique((port[used] * (1 << 20) + plan_bank(words[used]) * elements_per_word
                           + elements[used]))
        for code in codes.tolist():
            p, rest = divmod(code, 1 << 20)
            found[p].add(divmod(rest, elements_per_word))
    return tuple(tuple(sorted(s)) for s in found)


def plan_banks(windows, *, d3, block, elements_per_word, max_banks=256, limit=SEARCH_LIMIT):
    """The cheapest conflict-free :class:`BankPlan` for a reader's programs, or ``None``.

    ``None`` when the enumeration would exceed ``limit`` element reads, or no layout of at most
    ``max_banks`` banks keeps every request's words apart. Candidates: each power of two from
    the most distinct words any request reads up to four times that (and ``max_banks``), each
    with every skew below it; the cheapest (fewest multiplexer inputs, then fewest banks) wins.
    """
    windows = [w for w in windows if w is not None]
    sizes = [cdiv(w.M, rows) * kb * block * d3 * max(w.reads for w, _, _ in windows)
             for w, rows, kb in windows]
    if sum(sizes) > limit:
        return None
    reads = window_reads(windows, d3, block, max(w.reads for w, _, _ in windows))
    ports = reads[0][0].shape[1]
    distinct = 1
    for words, _ in reads:
        ordered = np.sort(words, axis=1)
        new = np.concatenate([ordered[:, :1] >= 0,
                              (ordered[:, 1:] != ordered[:, :-1]) & (ordered[:, 1:] >= 0)],
                             axis=1)
        distinct = max(distinct, int(new.sum(axis=1).max()))
    banks = 1 << (distinct - 1).bit_length()
    checks = max(1, sum(words.size for words, _ in reads))
    best = None
    while banks <= min(max_banks, 4 * (1 << (distinct - 1).bit_length())):
        # Every skew of a small layout; of a large one as many as about _CHECKS element checks.
        for skew in range(max(1, min(banks, _CHECKS // checks))):
            trial = BankPlan(banks, skew, (), ())
            if any(_conflicts(words, trial.bank) for words, _ in reads):
                continue
            pairs = _pairs(reads, trial.bank, elements_per_word, ports)
            cost = (sum(len(p) for p in pairs), banks)
            if best is None or cost < best[0]:
                feeders = tuple(tuple(p for p in range(ports) if any(b == bank for b, _ in
                                                                     pairs[p]))
                                for bank in range(banks))
                best = (cost, BankPlan(banks, skew, pairs, feeders))
        banks *= 2
    return None if best is None else best[1]


#: Logic cells a block RAM is worth in :func:`banks_pay` (an ECP5-85F's 83,640 over its 208).
LOGIC_PER_BRAM = 400
# Words above which synthesis puts a memory copy in block RAM rather than LUT RAM.
_LUTRAM_DEPTH = 64


def _brams(depth, width):
    """18-kbit block RAMs (512 x 36 up to 16,384 x 1) holding ``depth`` words of ``width``."""
    return min(cdiv(width, w) * cdiv(depth, d)
               for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)))


def banks_pay(plan, *, ports, elements, width, depth):
    """Whether the banked copy costs less logic than a copy per two element reads.

    An estimate in logic cells: a multiplexer input bit costs about one; banked, each port
    selects among its :attr:`BankPlan.pairs`; copied, each picks one of ``elements`` from its
    copy's word, and each copy (two read ports and a write) costs its LUT RAM (``depth`` up to
    64 words: 16 x 4-bit cells, about six logic cells each as measured on the ECP5, doubled for
    the second read port) or its block RAMs (two, for the write beside two reads) at
    :data:`LOGIC_PER_BRAM`. Narrow words read by many ports favour banks; wide, shallow words of
    many elements come out about even (every element may sit in any bank's word: the small
    VAE's 43-element input reader measured 34,309 logic cells banked, 30,168 copied).
    """
    banked = plan.inputs * width
    total = elements * width
    if depth <= _LUTRAM_DEPTH:
        storage = 2 * cdiv(depth, 16) * cdiv(total, 4) * 6
    else:
        storage = 2 * _brams(depth, total) * LOGIC_PER_BRAM
    copied = ports * elements * width + cdiv(ports, 2) * storage
    return banked <= copied
