"""The property behind "only buildable schedules are offered", on random small graphs and
budgets (:mod:`intar_hw.random_graphs`): every policy either refuses with one clear ValueError or
returns a schedule that builds, runs bit-exact and takes the predicted cycles (within 1%)."""

import pytest

from intar_hw.random_graphs import FAMILIES, check_case, random_budget, random_graph
from intar_hw.schedule import Resources

# Cases whose simulated cycles still differ from the prediction by more than 1%: the cost model's
# open errors this property found (the outputs are bit-exact in all of them), as "family, first
# policy off: simulated against predicted cycles". Strict: a fix makes the test say so.
OFF = {
    8: "attention, intar: 231 against 205 (softmax over 3-element rows behind q_proj)",
    23: "chain, sequential: 87 against 88",
    36: "gated, dataflow: 174 against 170 (KOUTER consumer: reduction chunks as one run)",
    46: "residual, sequential: 54 against 53",
    50: "attention, intar: 429 against 348",
    81: "chain, sequential: 41 against 39",
    86: "convolutions, sequential: 60 against 59",
    92: "residual, sequential: 321 against 326",
    95: "residual, sequential: 29 against 28",
    101: "gated, dataflow: 128 against 143",
    112: "chain, sequential: 139 against 141",
    116: "gated, sequential: 256 against 246",
    120: "gated, sequential: 95 against 94",
    122: "convolutions, sequential: 61 against 56",
    125: "residual, sequential: 38 against 37",
    129: "residual, sequential: 57 against 55",
    131: "residual, sequential: 69 against 67",
    133: "residual, dataflow: 47 against 46",
    147: "chain, dataflow: 238 against 275",
    155: "chain, intar: 125 against 114",
    157: "chain, sequential: 97 against 98",
    158: "residual, sequential: 33 against 32",
    159: "convolutions, dataflow: 155 against 159",
    161: "convolutions, dataflow: 320 against 327",
    172: "gated, dataflow: 1215 against 1199",
    180: "gated, sequential: 239 against 231",
    195: "gated, intar: 48 against 51",
}


def _seeds(seeds):
    return [pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=OFF[s])) if s in OFF
            else s for s in seeds]


def _check(seed):
    for outcome in check_case(seed):
        if outcome.status == "refused":
            # One clear line: which policy, which graph, what the generator lacks, by name.
            assert "\n" not in outcome.detail
            assert outcome.detail.startswith((f"The {outcome.policy} schedule of ",
                                              "No intar schedule of ")), outcome
            assert "cannot be generated: " in outcome.detail or "can be generated: " in \
                outcome.detail, outcome
        else:
            assert outcome.status == "ok", outcome


@pytest.mark.parametrize("seed", _seeds(range(8)))
def test_every_policy_builds_bit_exact_or_refuses(seed):
    _check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(range(8, 200)))
def test_every_policy_builds_bit_exact_or_refuses_more_cases(seed):
    _check(seed)


def test_random_graphs_are_reproducible_and_valid():
    for seed in range(40):
        g = random_graph(seed)
        assert g.to_dict() == random_graph(seed).to_dict()
        assert g.outputs and isinstance(random_budget(seed), Resources)
    assert {random_graph(s).name.split("_")[1] for s in range(40)} == set(FAMILIES)


def test_unknown_family():
    with pytest.raises(ValueError, match=r"^Graph family must be one of chain, gated, residual, "
                                         r"attention, convolutions, not 'rnn'$"):
        random_graph(0, "rnn")
