import numpy as np
import pytest

from intar_hw.hw.core.window_banks import BankPlan, banks_pay, plan_banks, window_reads

from test_window_read import CASES, laid_out, stored_and_expected


def _program(case, layout, block, d3):
    rng = np.random.default_rng(1)
    window, S, _, _ = stored_and_expected(rng, CASES[case])
    window, words = laid_out(window, S, layout)
    return window, block, -(-window.K // d3), len(words), len(words[0])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout,block,d3", [("flat", 2, 4), ("NM", 3, 9), ("MN", 4, 5)])
def test_plan_keeps_each_request_on_distinct_banks(case, layout, block, d3):
    window, block, kb, depth, elements = _program(case, layout, block, d3)
    plan = plan_banks([(window, block, kb)], d3=d3, block=block, elements_per_word=elements)
    assert plan is not None
    assert plan.banks & (plan.banks - 1) == 0
    # Checked element by element with the integer arithmetic.
    for tile in range(-(-window.M // block)):
        for beat in range(kb):
            seen = {}
            for r in range(block):
                for k in range(d3):
                    row, col = tile * block + r, beat * d3 + k
                    if row >= window.pixels or col >= window.K:
                        continue
                    inside, reads = window.locate(row, col)
                    for j, (valid, word, element) in enumerate(reads):
                        if not (inside and valid):
                            continue
                        bank = plan.bank(word)
                        assert seen.setdefault(bank, word) == word
                        port = (r * d3 + k) * window.reads + j
                        assert (bank, element) in plan.pairs[port]
                        assert port in plan.feeders[bank]


def test_plan_places_every_word_once():
    plan = BankPlan(8, 3, (), ())
    depth = 100
    places = {(plan.bank(w), plan.row(w)) for w in range(depth)}
    assert len(places) == depth
    assert all(row < plan.rows(depth) for _, row in places)
    dealt = plan.deal(list(range(1, depth + 1)), depth)
    assert sorted(v for bank in dealt for v in bank if v) == list(range(1, depth + 1))
    assert dealt[plan.bank(37)][plan.row(37)] == 38


def test_plan_gives_way_past_the_search_limit():
    window, block, kb, _, elements = _program("same_3x3", "flat", 2, 4)
    assert plan_banks([(window, block, kb)], d3=4, block=block, elements_per_word=elements,
                      limit=10) is None


def test_reads_cover_every_program_with_the_reader_ports():
    # Programs reading once and four times an element share the reader's port numbering.
    plain = _program("same_3x3", "NM", 3, 9)[0]
    pooled = _program("pooled", "NM", 3, 9)[0]
    reads = window_reads([(plain, 3, 2), None, (pooled, 3, 2)], 9, 3, 4)
    assert [words.shape[1] for words, _ in reads] == [3 * 9 * 4] * 2
    plain_words = reads[0][0].reshape(-1, 27, 4)
    assert (plain_words[:, :, 1:] == -1).all() and (plain_words[:, :, 0] >= 0).any()


def test_banks_pay_for_narrow_words_read_by_many_ports():
    plan = BankPlan(8, 0, tuple(((0, 0), (1, 0)) for _ in range(81)), ())
    # Narrow words in block RAM: 41 copies of two block RAMs each against 162 multiplexer inputs.
    assert banks_pay(plan, ports=81, elements=2, width=8, depth=242)
    # A few wide words in LUT RAM, every port choosing among all of its 64 (bank, element)s.
    wide = BankPlan(8, 0, tuple(tuple((b, e) for b in range(8) for e in range(8))
                                for _ in range(4)), ())
    assert not banks_pay(wide, ports=4, elements=8, width=8, depth=10)
