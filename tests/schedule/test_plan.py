import dataclasses
import json

import pytest

from intar_hw.models import MODELS, model_graph
from intar_hw.schedule import (Resources, Schedule, Stage, Pattern, Location, Order, Core,
                               Operand, Result, Loop, Placement, Buffer, schedule)


def placement(task="fc1", cores=(0, 1), start=0, end=100, **changes):
    busy = max(end - start, 0)
    fields = dict(
        task=task, kind="linear", cores=cores, gemm=(1, 1, 32, 100), split="N",
        order=Order.ROWS, block=1,
        loops=tuple(Loop(core=c, orientation="MN", batch=1, i=1, j=1, k=100, cycles=busy)
                    for c in cores),
        operands=(Operand("x", "A", Location.OFFCHIP, None, 100, 100, 1),
                  Operand(f"{task}.weight", "weight", Location.OFFCHIP, None, 3200, 3200, 1)),
        results=(Result(f"{task}_out", Location.SCRATCHPAD, ("relu",), ("fc2",), 32, 0),),
        macs=3200, hw_macs=3200, start=start, end=end, busy=busy)
    fields.update(changes)
    return Placement(**fields)


def stage(index=0, start=0, placements=None, pattern=Pattern.SEQUENTIAL, **changes):
    placements = placements or (placement(),)
    pipeline = max(p.end for p in placements)
    fields = dict(index=index, pattern=pattern, placements=placements,
                  buffers=(Buffer("a_block", "x", "fc1", None, 200, 1),), start=start,
                  cycles=pipeline + 3 + (2 if index else 0), bound="compute", compute=pipeline,
                  pipeline=pipeline, offchip=50, scratchpad=10, fill=3,
                  reconfig=2 if index else 0, offchip_bytes=3332, scratchpad_bytes=232,
                  resident=("fc1_out",))
    fields.update(changes)
    return Stage(**fields)


def small_schedule():
    first = stage()
    second = stage(index=1, start=first.cycles, pattern=Pattern.TASK_PIPELINE, placements=(
        placement("fc2", cores=(0,)), placement("fc3", cores=(1,), start=10, end=120)))
    return Schedule(model="mlp", policy="intar", resources=Resources(),
                    cores=(Core(0, (4, 4, 1)), Core(1, (4, 4, 1))), stages=(first, second))


def test_totals():
    s = small_schedule()
    assert s.cycles == 103 + 125
    assert s.macs == 3 * 3200
    assert s.offchip_bytes == 2 * 3332
    assert s.utilisation == pytest.approx(9600 / (228 * 32))
    assert s.tasks == ("fc1", "fc2", "fc3")
    assert s.placement("fc3").end == 120
    assert s.peak_scratchpad_bytes == 232
    assert s.milliseconds() is None
    assert s.stages[1].end == 228
    assert s.placement("fc1").offchip_bytes == 3300


def test_json_round_trip():
    s = small_schedule()
    text = s.to_json()
    assert isinstance(json.loads(text), dict)
    assert Schedule.from_json(text) == s
    assert Schedule.from_dict(json.loads(s.to_json(indent=2))) == s


@pytest.mark.parametrize("model", MODELS)
def test_json_round_trip_of_real_schedules(model):
    graph = model_graph(model, "tiny")
    for policy in ("sequential", "dataflow", "intar"):
        s = schedule(graph, Resources.for_model(model, "tiny"), policy,
                     buildable=model != "gpt2_medium")
        assert Schedule.from_json(s.to_json()) == s


def test_frozen():
    s = small_schedule()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.policy = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.stages[0].cycles = 1


def test_table():
    text = small_schedule().table()
    assert "\nbudget: 2 x 4x4x1 PEs" in text
    assert "task_pipeline" in text and "fc3" in text
    assert text.splitlines()[-1].startswith("total 228 cycles, 9,600 MACs")


def test_stage_cycles_must_add_up():
    with pytest.raises(ValueError, match=r"^Stage 0 cycles \(7\) must be max\(pipeline, offchip, "
                                         r"scratchpad\) \+ fill \+ reconfig \(103\)$"):
        stage(cycles=7)


def test_sequential_has_one_task():
    with pytest.raises(ValueError, match=r"^Stage 0 is sequential but has 2 tasks$"):
        stage(placements=(placement("a", cores=(0,)), placement("b", cores=(1,))))


def test_cores_are_not_shared():
    with pytest.raises(ValueError, match=r"^Stage 0 gives a core to more than one task: "
                                         r"\[0, 0, 1\]$"):
        stage(pattern=Pattern.TASK_PARALLEL,
              placements=(placement("a", cores=(0,)), placement("b", cores=(0, 1))))


def test_task_ends_within_the_stage():
    with pytest.raises(ValueError, match=r"^Stage 0 has a task ending after its pipeline span "
                                         r"\(50\)$"):
        stage(pipeline=50, compute=50, cycles=53)


def test_bound_names():
    with pytest.raises(ValueError, match=r"^Stage 0 bound must be one of compute, "
                                         r"pipeline-fill, offchip, scratchpad, not 'memory'$"):
        stage(bound="memory")


def test_placement_validation():
    with pytest.raises(ValueError, match=r"^Placement 'fc1' needs one loop record per core, "
                                         r"in core order$"):
        placement(loops=())
    with pytest.raises(TypeError, match=r"^Placement 'fc1' order must be an Order, not 'rows'$"):
        placement(order="rows")
    with pytest.raises(ValueError, match=r"^Placement 'fc1' ends \(0\) before it starts \(5\)$"):
        placement(start=5, end=0, busy=0, loops=tuple(
            Loop(core=c, orientation="MN", batch=1, i=1, j=1, k=1, cycles=0) for c in (0, 1)))
    with pytest.raises(ValueError, match=r"^Placement 'fc1' split must be 'M' or 'N', not 'K'$"):
        placement(split="K")
    with pytest.raises(ValueError, match=r"^Placement 'fc1' gemm must be 4 positive integers "
                                         r"\(batch, M, N, K\), not \(1, 0, 1, 1\)$"):
        placement(gemm=(1, 0, 1, 1))


def test_record_validation():
    with pytest.raises(ValueError, match=r"^Operand 'x' spills 200 of only 100 bytes$"):
        Operand("x", "A", Location.OFFCHIP, None, 100, 200, 1)
    with pytest.raises(ValueError, match=r"^Operand 'x' role must be one of A, B, BT, window, "
                                         r"weight, side, not 'C'$"):
        Operand("x", "C", Location.OFFCHIP, None, 100, 100, 1)
    with pytest.raises(TypeError, match=r"^Result 'y' dest must be a Location, "
                                        r"not 'scratchpad'$"):
        Result("y", "scratchpad", (), (), 1, 0)
    with pytest.raises(ValueError, match=r"^Buffer kind must be one of "):
        Buffer("cache", "x", "fc1", None, 1, 1)
    with pytest.raises(ValueError, match=r"^Loop orientation must be 'MN' or 'NM', not 'KM'$"):
        Loop(0, "KM", 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"^Core 0 PE array dimensions must be at least 1, "
                                         r"not \(0, 1, 1\)$"):
        Core(0, (0, 1, 1))
    with pytest.raises(TypeError, match=r"^Operand 'x' bytes must be an integer, not 1\.5$"):
        Operand("x", "A", Location.OFFCHIP, None, 1.5, 0, 1)


def test_schedule_validation():
    s = small_schedule()
    with pytest.raises(ValueError, match=r"^Stage 1 starts at 0, not 103$"):
        dataclasses.replace(s, stages=(s.stages[0], dataclasses.replace(s.stages[1], start=0)))
    with pytest.raises(ValueError, match=r"^Task 'fc1' is scheduled twice$"):
        second = stage(index=1, start=103)
        dataclasses.replace(s, stages=(s.stages[0], second))
    with pytest.raises(ValueError, match=r"^Schedule cores have 64 MACs but the budget has 32$"):
        dataclasses.replace(s, cores=(Core(0, (4, 8, 1)), Core(1, (4, 8, 1))))
    with pytest.raises(ValueError, match=r"^Task 'fc1' uses core 1 but the schedule has 1$"):
        dataclasses.replace(s, cores=(Core(0, (4, 4, 1)),))
    with pytest.raises(ValueError, match=r"^Schedule stage 0 is numbered 1$"):
        dataclasses.replace(s, stages=(s.stages[1],))
    with pytest.raises(TypeError, match=r"^Schedule resources must be Resources, not None$"):
        dataclasses.replace(s, resources=None)


def test_from_dict_errors():
    data = small_schedule().to_dict()
    del data["stages"]
    with pytest.raises(ValueError, match=r"^Schedule data lacks stages$"):
        Schedule.from_dict(data)
    data = small_schedule().to_dict()
    data["stages"][0]["colour"] = "red"
    with pytest.raises(ValueError, match=r"^Stage data has unknown fields colour$"):
        Schedule.from_dict(data)
