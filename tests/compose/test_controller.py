# amaranth: UnusedElaboratable=no
import pytest

from intar_hw.compose import ModeController
from intar_hw.schedule.cost import RECONFIG_CYCLES, RUN_OVERHEAD
from intar_hw.testbench import run


def schedule_rtl(controller, durations):
    """Run ``controller`` against model cores: core ``c`` running program ``p`` raises ``done``
    ``durations[c][p]`` cycles after the cycle its ``start`` is high in. Returns the starts as
    ``(cycle, core, program)``, and the cycle of ``done``."""
    starts, finish = [], {}
    events = {}

    async def bench(ctx):
        ctx.set(controller.start, 1)
        cycle = 0
        while True:
            done = 0
            for core, at in list(events.items()):
                if at == cycle:
                    done |= 1 << core
                    del events[core]
            ctx.set(controller.core_done, done)
            for core in range(len(durations)):
                if ctx.get(controller.core_start) >> core & 1:
                    program = ctx.get(controller.core_stage[core])
                    starts.append((cycle, core, program))
                    events[core] = cycle + durations[core][program]
            if ctx.get(controller.done):
                finish["cycle"] = cycle
                assert ctx.get(controller.busy)
                return
            await ctx.tick()
            ctx.set(controller.start, 0)
            cycle += 1

    run(controller, bench, deadline=500)
    return starts, finish["cycle"]


def test_stages_barriers_and_reconfiguration():
    stages = (((0, 0),), ((0, 1), (1, 0)), ((1, 1),))
    controller = ModeController(2, (2, 2), stages)
    starts, done = schedule_rtl(controller, [[5, 9], [3, 4]])
    r = RECONFIG_CYCLES
    # Stage 0 starts a cycle after the run's start (registered, as every stage's start); stage
    # 1 starts r cycles after stage 0's done; stage 2 waits for the slower core 0; the run's
    # done comes a cycle after the last core's (registered).
    assert RUN_OVERHEAD == 2
    assert starts == [(1, 0, 0), (1 + 5 + r, 0, 1), (1 + 5 + r, 1, 0), (1 + 5 + r + 9 + r, 1, 1)]
    assert done == 5 + 9 + 4 + 2 * r + RUN_OVERHEAD


def test_one_stage():
    starts, done = schedule_rtl(ModeController(1, (1,), (((0, 0),),)), [[7]])
    assert starts == [(1, 0, 0)] and done == 9


def test_reconfig_of_three_cycles():
    controller = ModeController(1, (2,), (((0, 0),), ((0, 1),)), reconfig=3)
    starts, done = schedule_rtl(controller, [[4, 4]])
    assert starts == [(1, 0, 0), (8, 0, 1)] and done == 13


def test_a_core_done_reaches_nothing_in_its_cycle():
    # A core's done is seen by the controller a cycle later: neither the next stage's start nor
    # the run's done follow it in the same cycle.
    controller = ModeController(1, (2,), (((0, 0),), ((0, 1),)))

    async def bench(ctx):
        ctx.set(controller.start, 1)
        await ctx.tick()
        ctx.set(controller.start, 0)
        ctx.set(controller.core_done, 1)
        assert (ctx.get(controller.core_start), ctx.get(controller.store)) == (1, 0)
        await ctx.tick()
        ctx.set(controller.core_done, 0)
        assert ctx.get(controller.core_start) == 0
        await ctx.tick()
        assert ctx.get(controller.core_start) == 1       # RECONFIG_CYCLES after the done
        await ctx.tick()
        ctx.set(controller.core_done, 1)
        assert not ctx.get(controller.done)
        await ctx.tick()
        ctx.set(controller.core_done, 0)
        assert ctx.get(controller.done)
    run(controller, bench, deadline=20)


def test_launch_is_a_register():
    # Nothing reaches the cores in the cycle of the run's start: the FSM's decode is off their
    # paths.
    controller = ModeController(2, (1, 1), (((0, 0), (1, 0)),))

    async def bench(ctx):
        ctx.set(controller.start, 1)
        assert (ctx.get(controller.core_start), ctx.get(controller.launch)) == (0, 0)
        assert ctx.get(controller.core_arm) == 0b11         # core_start a cycle early
        await ctx.tick()
        ctx.set(controller.start, 0)
        assert (ctx.get(controller.core_start), ctx.get(controller.launch)) == (0b11, 1)
        await ctx.tick()
        assert (ctx.get(controller.core_start), ctx.get(controller.launch)) == (0, 0)
    run(controller, bench, deadline=10)


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((0, (), ((),)), {}, ValueError, r"ModeController cores must be at least 1, not 0"),
    (("2", (1,), ()), {}, TypeError, r"ModeController cores must be an integer, not '2'"),
    ((1, (0,), (((0, 0),),)), {}, ValueError,
     r"ModeController programs must be a tuple of 1 positive integers, not \(0,\)"),
    ((1, (1,), ()), {}, ValueError, r"ModeController stages must be a non-empty tuple, not \(\)"),
    ((1, (1,), ((),)), {}, ValueError,
     r"ModeController stage 0 must name at least one core, not \(\)"),
    ((1, (1,), (((0, 0), (0, 0)),)), {}, ValueError,
     r"ModeController stage 0 names a core twice: \(\(0, 0\), \(0, 0\)\)"),
    ((1, (1,), (((0, 1),),)), {}, ValueError,
     r"ModeController stage 0 names core 0 program 1, out of range"),
    ((1, (1,), (((0, 0),),)), {"reconfig": 1}, ValueError,
     r"ModeController reconfig must be at least 2, not 1"),
    ((1, (1,), (((0, 0),),)), {"reconfig": 1.0}, TypeError,
     r"ModeController reconfig must be an integer, not 1.0"),
])
def test_errors(args, kwargs, error, message):
    with pytest.raises(error, match=rf"^{message}$"):
        ModeController(*args, **kwargs)
