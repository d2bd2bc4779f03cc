import json
import textwrap

import pytest

from intar_hw.cli import main
from intar_hw.schedule import Schedule


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_schedule_table(capsys):
    status, out, err = run(capsys, "schedule", "mlp", "--scale", "tiny")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == ("mlp (tiny, int8): intar schedule on 3 cores: 0 of 1x32x1 PEs, "
                        "1 of 3x21x1 PEs, 2 of 3x10x1 PEs")
    assert lines[1].startswith("budget: 2 x 1x64x1 PEs")
    assert lines[2].split()[:3] == ["stage", "pattern", "task"]
    assert lines[2].endswith("off-chip bytes")
    assert lines[-1].startswith("total ")
    assert sum(1 for line in lines if "fc" in line) == 3


def test_schedule_json(capsys):
    status, out, _ = run(capsys, "schedule", "cnn4l", "--scale", "small", "--policy",
                         "dataflow", "--json")
    assert status == 0
    s = Schedule.from_json(out)
    assert s.policy == "dataflow" and s.model == "cnn4l"


def test_schedule_plot(capsys, tmp_path):
    path = tmp_path / "timeline.png"
    status, out, _ = run(capsys, "schedule", "vae", "--scale", "tiny", "--plot", str(path))
    assert status == 0
    assert out.splitlines()[-1] == f"timeline written to {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_overrides(capsys):
    status, out, _ = run(capsys, "schedule", "gating_net", "--scale", "tiny", "--json",
                         "--ccs", "3", "--pea", "2x2", "--scratchpad-kib", "32",
                         "--offchip-bpc", "4")
    assert status == 0
    resources = json.loads(out)["resources"]
    assert resources["ccs"] == 3 and resources["pea"] == [2, 2, 1]
    assert resources["scratchpad_kib"] == 32 and resources["offchip_bytes_per_cycle"] == 4
    status, out, _ = run(capsys, "schedule", "mlp", "--scale", "tiny", "--json",
                         "--resources", "ice40_up5k")
    assert json.loads(out)["resources"]["pea"] == [2, 2, 1]


def test_compare_at_paper_scale(capsys):
    status, out, _ = run(capsys, "compare", "mlp", "--scale", "paper", "--fmt", "int16")
    assert status == 0
    lines = out.splitlines()
    assert "paper ms" in lines[1] and "paper speedup" in lines[1]
    assert [line.split()[0] for line in lines[3:6]] == ["sequential", "dataflow", "intar"]
    assert "0.582" in lines[5]
    assert lines[-1].startswith("paper: measured")


def test_compare_at_small_scale_has_no_paper_column(capsys):
    status, out, _ = run(capsys, "compare", "self_attention", "--scale", "tiny")
    assert status == 0
    assert "paper" not in out


def test_model_file_brings_its_budget(capsys, tmp_path):
    model = tmp_path / "tiny_mlp.py"
    model.write_text(textwrap.dedent("""
        import intar_hw as ih

        def graph(scale):
            g = ih.Graph("tiny_mlp")
            x = g.input("x", (1, 8))
            g.output(g.linear(x, 4, name="fc"))
            return g

        def resources(scale):
            return ih.Resources(ccs=1, pea=(1, 4), name="own")
    """))
    status, out, _ = run(capsys, "schedule", str(model), "--scale", "tiny", "--json")
    assert status == 0
    assert json.loads(out)["resources"]["name"] == "own"


@pytest.mark.parametrize("argv, message", [
    (["schedule", "mlp", "--scale", "paper", "--scratchpad-kib", "0.125"],
     "Task 'fc1' needs 0.25 KiB of scratchpad for its input row tile of 'x' but each CC has "
     "0.125 KiB (0.125 KiB short)"),
    (["schedule", "mlp", "--pea", "4"], "PE array shape must look like 4x4 or 1x16x9, not '4'"),
    (["schedule", "mlp", "--ccs", "0"], "Number of CCs must be at least 1, not 0"),
    (["schedule", "mlp", "--scale", "small", "--pea", "1x200x1"],
     "PE arrays of 400 MACs do not fit ecp5-85k: it has 156 multipliers (one per MAC)"),
    (["compare", "vae", "--scale", "paper", "--ccs", "3"],
     "--ccs on a budget with unequal cores needs --pea as well"),
    (["schedule", "mlp", "--resources", "u280"], "Unknown resource preset 'u280'; known: "),
    (["compare", "self_attention", "--scale", "paper"],
     "The sequential schedule of 'self_attention' cannot be generated: The generator does not "
     "support a result of several rows as the A of a task dealt by rows (task 'attn' reads "
     "'softmax') yet (--explore schedules it in the cost model alone)"),
    (["schedule", "mlp", "--scale", "huge"], "Scale must be one of tiny, small, paper, "
                                             "not 'huge'"),
])
def test_errors_are_one_line(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith(f"intar {argv[0]}: error: {message}")
    assert err.count("\n") == 1


def test_unknown_policy_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["schedule", "mlp", "--policy", "greedy"])
    assert exit_info.value.code == 2


def test_explore_schedules_what_the_generator_cannot_build(capsys):
    status, out, err = run(capsys, "schedule", "self_attention", "--scale", "paper", "--explore")
    assert status == 0 and err == ""
    assert out.splitlines()[-1].startswith("total 29,623,619 cycles")
