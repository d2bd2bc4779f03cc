"""The mode controller: a finite-state machine generated from the schedule's stages."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..timing import RECONFIG_CYCLES
from ..integers import is_int


__all__ = ["ModeController"]


class ModeController(wiring.Component):
    """Steps the cores through the schedule's stages, one FSM state per stage.

    In state ``STAGE_<s>`` every core working in stage ``s`` is started on its program for that
    stage (a constant of the state) as the stage starts; the state ends in the cycle after the
    last of them raises ``done`` (a stage barrier: the cost model's stages run one after the
    other, so stage ``s + 1`` waits on every core of stage ``s``; the cores' ``done`` are
    registered on the way in, so no core's logic reaches the FSM, the store or the next stage's
    start). Stage ``s + 1`` starts ``reconfig`` cycles after the cycle stage ``s``'s last core
    raised ``done`` (``RECONFIG_<s>`` states), exactly as :mod:`intar_hw.schedule.cost` adds
    ``RECONFIG_CYCLES`` per stage boundary. Stage 0 starts the cycle after ``start`` is honoured
    (every core's ``start`` comes from a register, so the FSM's decode never reaches the cores,
    at the first stage as at the others) and ``done`` follows the last stage's cores a cycle
    late: a run takes :data:`~intar_hw.timing.RUN_OVERHEAD` = 2 cycles beyond its stages.

    Parameters
    ----------
    cores : int
        Number of cores it controls.
    programs : tuple of int
        Per core, its number of programs.
    stages : tuple of tuple of (int, int)
        Per stage, ``(core, program)`` of every core working in it; at least one per stage.
    reconfig : int
        Cycles between stages, at least 2 (the barrier is seen a cycle after the cores' ``done``,
        and the next stage's ``start`` is a register); default
        :data:`~intar_hw.timing.RECONFIG_CYCLES`.
    writeback : tuple of bool, optional
        Per stage, whether results leave for off-chip after its cores are done: ``store`` is
        raised in the barrier's cycle and the stage ends in the first later cycle
        ``store_busy`` is low (state ``WRITEBACK_<s>``), the next starting ``reconfig - 1``
        cycles after that. Default: no stage writes back.

    Members
    -------
    start : In(1)
        Runs the schedule; honoured when ``busy`` is low.
    busy : Out(1)
        High from the cycle after an honoured ``start`` up to the cycle of ``done``, included.
    done : Out(1)
        High for one cycle: the cycle after the last core of the last stage raises ``done`` (or,
        when the last stage writes back, the cycle the store is seen finished).
    core_start : Out(cores)
        Per core, its ``start`` (a register).
    core_arm : Out(cores)
        ``core_start`` a cycle early (what that register takes), for a start register placed
        beside each core.
    core_stage : Out(range(max programs)).array(cores)
        Per core, the program of its next stage: set in the cycle after the previous stage's
        launch (stage 0's after the last's, and from reset), so it is steady in the cycles before
        the stage's start (a stage lasts longer than a cycle).
    core_done : In(cores)
        Per core, its ``done``.
    launch : Out(1)
        High in the cycle a stage's cores are started (for the stage's other units).
    current : Out(range(len(stages)))
        The stage being launched, run or written back.
    store : Out(1)
        Starts the write-back of stage ``current``.
    store_busy : In(1)
        The write-back is under way.

    Raises
    ------
    TypeError
        If a parameter is of the wrong kind.
    ValueError
        If a stage is empty, names a core or program out of range or a core twice, or
        ``reconfig`` is below 1.
    """

    def __init__(self, cores, programs, stages, *, reconfig=RECONFIG_CYCLES, writeback=None):
        if not is_int(cores):
            raise TypeError(f"ModeController cores must be an integer, not {cores!r}")
        if cores < 1:
            raise ValueError(f"ModeController cores must be at least 1, not {cores!r}")
        if (not isinstance(programs, tuple) or len(programs) != cores
                or not all(is_int(p) and p >= 1 for p in programs)):
            raise ValueError(f"ModeController programs must be a tuple of {cores} positive "
                             f"integers, not {programs!r}")
        if not isinstance(stages, tuple) or not stages:
            raise ValueError(f"ModeController stages must be a non-empty tuple, not {stages!r}")
        for s, stage in enumerate(stages):
            if not isinstance(stage, tuple) or not stage:
                raise ValueError(f"ModeController stage {s} must name at least one core, "
                                 f"not {stage!r}")
            used = [c for c, _ in stage]
            if len(set(used)) != len(used):
                raise ValueError(f"ModeController stage {s} names a core twice: {stage!r}")
            for core, program in stage:
                if not (is_int(core) and 0 <= core < cores
                        and is_int(program) and 0 <= program < programs[core]):
                    raise ValueError(f"ModeController stage {s} names core {core!r} program "
                                     f"{program!r}, out of range")
        if not is_int(reconfig):
            raise TypeError(f"ModeController reconfig must be an integer, not {reconfig!r}")
        if reconfig < 2:
            raise ValueError(f"ModeController reconfig must be at least 2, not {reconfig!r}")
        if writeback is None:
            writeback = (False,) * len(stages)
        if (not isinstance(writeback, tuple) or len(writeback) != len(stages)
                or not all(isinstance(w, bool) for w in writeback)):
            raise ValueError(f"ModeController writeback must be a tuple of {len(stages)} bools, "
                             f"not {writeback!r}")
        self._writeback = writeback
        self._cores = cores
        self._programs = programs
        self._stages = stages
        self._reconfig = reconfig
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "core_start": Out(cores),
            "core_arm": Out(cores),
            "core_stage": Out(range(max(programs))).array(cores),
            "core_done": In(cores),
            "launch": Out(1),
            "current": Out(range(max(2, len(stages)))),
            "store": Out(1),
            "store_busy": In(1),
        })

    @property
    def stages(self):
        return self._stages

    @property
    def reconfig(self):
        return self._reconfig

    def elaborate(self, platform):
        m = Module()
        stages = self._stages
        finished = Signal(self._cores)      # cores of the current stage done in earlier cycles
        done = Signal(self._cores)          # the cores' done, a cycle late
        m.d.sync += done.eq(self.core_done)
        # Cycles from the barrier (seen a cycle after the last core's done) to the next start.
        reconfig = self._reconfig - 1
        wait = Signal(range(reconfig + 1))

        # The outputs to the cores and units are registers, set the cycle before they change
        # (the FSM's decode and the reconfiguration count stay off the cores' paths).
        programs = [0] * self._cores
        for core, program in stages[0]:
            programs[core] = program
        program_regs = [Signal(range(max(self._programs)), name=f"program_{core}",
                               init=programs[core]) for core in range(self._cores)]
        start_regs = Signal(self._cores, name="start_regs")
        launch_reg = Signal(name="launch_reg")
        current_reg = Signal.like(self.current, name="current_reg")
        m.d.sync += [start_regs.eq(self.core_arm), launch_reg.eq(0)]
        m.d.comb += [
            self.core_start.eq(start_regs),
            self.launch.eq(launch_reg),
            self.current.eq(current_reg),
        ]
        m.d.comb += [self.core_stage[core].eq(reg) for core, reg in enumerate(program_regs)]
        # The programs of the next stage are set as a stage launches (its cores have taken theirs),
        # so they are steady long before the next launch: a core may sample its program a cycle
        # before its start, beside its own logic.
        with m.If(launch_reg):
            with m.Switch(current_reg):
                for s in range(len(stages)):
                    with m.Case(s):
                        m.d.sync += [program_regs[core].eq(program)
                                     for core, program in stages[(s + 1) % len(stages)]]

        def arm(s):
            """Launch stage ``s`` in the next cycle."""
            m.d.comb += self.core_arm.eq(sum(1 << core for core, _ in stages[s]))
            m.d.sync += launch_reg.eq(1)

        def barrier_of(s):
            mask = sum(1 << core for core, _ in stages[s])
            seen = finished | done
            return (seen & mask) == mask, seen

        with m.FSM(name="mode"):
            with m.State("IDLE"):
                with m.If(self.start):
                    arm(0)
                    m.next = "STAGE_0"
            for s in range(len(stages)):
                def finish(s=s):
                    if s == len(stages) - 1:
                        m.d.comb += self.done.eq(1)
                        m.d.sync += current_reg.eq(0)
                        m.next = "IDLE"
                    else:
                        m.d.sync += [current_reg.eq(s + 1), wait.eq(reconfig - 1)]
                        if reconfig == 1:
                            arm(s + 1)
                        m.next = f"RECONFIG_{s + 1}"

                with m.State(f"STAGE_{s}"):
                    m.d.comb += self.busy.eq(1)
                    barrier, seen = barrier_of(s)
                    m.d.sync += finished.eq(seen)
                    with m.If(barrier):
                        m.d.sync += finished.eq(0)
                        if self._writeback[s]:
                            m.d.comb += self.store.eq(1)
                            m.next = f"WRITEBACK_{s}"
                        else:
                            finish()
                if self._writeback[s]:
                    with m.State(f"WRITEBACK_{s}"):
                        m.d.comb += self.busy.eq(1)
                        with m.If(~self.store_busy):
                            finish()
                if s + 1 < len(stages):
                    with m.State(f"RECONFIG_{s + 1}"):
                        m.d.comb += self.busy.eq(1)
                        with m.If(wait == 0):
                            m.next = f"STAGE_{s + 1}"
                        with m.Else():
                            m.d.sync += wait.eq(wait - 1)
                            with m.If(wait == 1):
                                arm(s + 1)
        return m
