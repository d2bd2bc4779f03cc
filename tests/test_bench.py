# amaranth: UnusedElaboratable=no
import pytest

from intar_hw import bench
from intar_hw.cli import main


def test_hardware_blocks_measure_full_throughput():
    figures = {what: figure for what, figure, _ in bench.hardware_blocks()}
    assert figures["Queue throughput, depth 1"] == pytest.approx(0.5, abs=0.01)
    assert figures["Queue throughput, depth 3"] == 1.0
    assert figures["MACArray 4x4 int8 throughput, reductions of 1"] == 1.0
    assert figures["MACArray 4x4 int8 throughput, reductions of 32"] == 1.0


def test_unknown_suite_is_one_line_and_exit_2(capsys):
    assert main(["bench", "nope"]) == 2
    assert capsys.readouterr().err == (
        "intar bench: error: Benchmark suite must be one of hw, random, synth, not 'nope'\n")


def test_random_graphs_counts_every_outcome(capsys):
    rows = bench.random_graphs(cases=2, first=2)         # cases every policy refuses: quick
    assert sum(n for _, n, _ in rows) == 2 * 3           # two cases, three policies
    assert rows[1][1] == 6
    assert [unit for _, _, unit in rows] == ["outcomes"] * 4
