"""The top-level accelerator: computing cores and their mode controller, built from a schedule."""

import math

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from ..graph import Graph
from ..hw.core import ComputingCore, memory_words, result_word
from ..hw.core.core import array_multipliers, core_multipliers
from ..hw.memory_map import design_brams
from ..hw.offchip import BurstBeat, BurstRequest
from ..hw.scratchpad import WriteRequest
from ..schedule import Schedule
from .controller import ModeController
from .layout import onchip_cycles
from .planner import plan
from .loader import Loader
from .storer import Storer


__all__ = ["Accelerator", "build", "MAX_BURST"]


#: Largest off-chip burst the loader requests.
MAX_BURST = 256


class Accelerator(wiring.Component):
    """The accelerator a schedule describes.

    One :class:`~intar_hw.hw.core.ComputingCore` per schedule core that does work (a core no
    stage gives work to is not built), each holding one program per stage it takes part in; a
    :class:`.ModeController` with one state per stage; and, with ``offchip`` (the default), a
    :class:`.Loader` streaming every stage's off-chip operands (graph inputs, weights, biases)
    into the cores' memories while they compute and a :class:`.Storer` writing the graph outputs
    back after their stage (built only if some stage has outputs). A core reading another core's
    one-row result gets a read port on that core's result memory (a mux input exists only if a
    stage uses it); memories a core's programs do not use are not built (see :mod:`.layout` for
    what is supported). A task the schedule deals over several cores runs as one program on each
    (its tiles, round-robin): the loader broadcasts a shared graph input to all of them, and the
    next task or the storer gathers the result from their result memories.

    Protocol with ``offchip``: the off-chip memory (an :class:`~intar_hw.hw.offchip.OffchipPort`
    in simulation) holds :meth:`.layout.Plan.offchip_image` from word 0; the host raises
    ``start`` for a cycle and waits for ``done``; the graph outputs are then in the off-chip
    memory from word :attr:`output_base` (:meth:`.layout.Plan.outputs_from_offchip`). Without
    ``offchip`` the host first loads every core's memories through the ``*_write`` ports
    (:meth:`.layout.Plan.images`), reads the outputs through ``core<c>_results_read``
    (:meth:`.layout.Plan.outputs`), and the run takes exactly :attr:`onchip_cycles`.

    Parameters
    ----------
    schedule : Schedule
    graph : Graph, optional
        The graph the schedule was made for; by default the one it carries
        (:attr:`~intar_hw.schedule.Schedule.graph`).
    offchip : bool
        Stream operands from off-chip (default) or have the host preload them.

    Members
    -------
    start : In(1)
        Runs the schedule; honoured when ``busy`` is low.
    busy : Out(1)
        High from the cycle after an honoured ``start`` to the cycle of ``done``, included.
    done : Out(1)
        High for one cycle, when the last stage's last result is written.
    offchip_read_req : Out(stream.Signature(BurstRequest(addr_width, count_width)))
        With ``offchip``: burst reads of the off-chip memory.
    offchip_read_data : In(stream.Signature(BurstBeat(unsigned(8 * bus_bytes))))
        With ``offchip``: the words read.
    offchip_write : Out(stream.Signature(WriteRequest(addr_width, unsigned(8 * bus_bytes))))
        With ``offchip``: the graph outputs written back.
    core<c>_<memory>_write : In(stream.Signature(WriteRequest(...)))
        Without ``offchip``: host writes to core ``c``'s ``activations``, ``weights`` and
        ``biases`` memories (those that exist).
    core<c>_results_read : In(ReadPortSignature(...))
        Without ``offchip``: host reads of core ``c``'s result memory, while ``busy`` is low.

    Attributes
    ----------
    plan : Plan
        Programs and memory layout (:mod:`.layout`).
    cores : dict of int to ComputingCore
        The built cores by schedule core index.
    bus_bytes : int
        Bytes per off-chip word: the budget's bytes per cycle, rounded up.
    offchip_words : int
        Words of off-chip memory the schedule reads and writes.
    output_base : int
        First off-chip word of the graph outputs.
    predicted_cycles : int
        The schedule's cycles (:attr:`~intar_hw.schedule.Schedule.cycles`), off-chip included.
    onchip_cycles : int
        The schedule's cycles without its off-chip terms (:func:`.layout.onchip_cycles`).

    Raises
    ------
    TypeError
        If ``schedule`` is not a Schedule or ``graph`` not a Graph.
    ValueError
        If the graph does not match the schedule, the schedule needs something the generator
        does not support yet (the message says what), or the design needs more multipliers
        (:attr:`multipliers`) than the budget's device has.
    """

    def __init__(self, schedule, graph=None, *, offchip=True):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"Schedule must be a Schedule, not {schedule!r}")
        graph = _graph(schedule, graph)
        if not isinstance(offchip, bool):
            raise TypeError(f"Offchip must be a bool, not {offchip!r}")
        self._plan = plan(schedule, graph)
        self._offchip = offchip
        programs = self._plan.programs
        _check_multipliers(schedule.resources, programs)
        peers = self._plan.peers
        join_peers = self._plan.join_peers
        b_peers = self._plan.b_peers
        # Per producer core, its readers: (consumer core, the consumer's port prefix).
        self._shares = {c: sorted([(k, "peer") for k, v in peers.items() if v == c]
                                  + [(k, "b_peer") for k, v in b_peers.items() if v == c]
                                  + [(k, "join") for k, v in join_peers.items() if v == c])
                        for c in programs}

        def result_memory(c):
            """``(shape, depth, slots)`` of core ``c``'s result memory, as the core builds it."""
            return (result_word(programs[c]), max(2, memory_words(programs[c])["results"]),
                    programs[c][0].slots)

        def result_port(c):
            """``(addr_width, lanes)`` of core ``c``'s result memory."""
            shape, depth, _ = result_memory(c)
            return ceil_log2(depth), shape.length

        def join_port(c):
            shape, _, _ = result_memory(c)
            return result_port(c) + (shape.elem_shape.width,)

        window_peers = self._plan.window_peers

        self._cores = {c: ComputingCore(programs[c], operand_width=self._plan.operand_bits,
                                        gated=offchip, shares=len(self._shares[c]),
                                        peer=result_port(peers[c]) if c in peers else None,
                                        b_peer=(result_port(b_peers[c]) if c in b_peers
                                                else None),
                                        join_peer=(join_port(join_peers[c])
                                                   if c in join_peers else None),
                                        window_peer=(result_memory(window_peers[c])
                                                     if c in window_peers else None),
                                        mirrored=c in window_peers.values())
                       for c in self._plan.cores}
        self._bus_bytes = max(1, math.ceil(schedule.resources.offchip_bytes_per_cycle))
        self._loader_stages = self._plan.loader_stages(self._bus_bytes)
        self._output_base = sum(st.words for st in self._loader_stages)
        self._storer_stages = self._plan.storer_stages(self._bus_bytes, self._output_base)
        self._offchip_words = self._output_base + sum(st.words for st in self._storer_stages)
        members = {"start": In(1), "busy": Out(1), "done": Out(1)}
        if offchip:
            addr_width = ceil_log2(max(2, self._offchip_words))
            members["offchip_read_req"] = Out(stream.Signature(
                BurstRequest(addr_width, bits_for(MAX_BURST))))
            members["offchip_read_data"] = In(stream.Signature(
                BurstBeat(unsigned(8 * self._bus_bytes))))
            members["offchip_write"] = Out(stream.Signature(
                WriteRequest(addr_width, unsigned(8 * self._bus_bytes))))
        for c, core in self._cores.items():
            for name, member in core.signature.members.items():
                if not offchip and (name.endswith("_write") or name == "results_read"):
                    members[f"core{c}_{name}"] = member
        super().__init__(members)

    @property
    def plan(self):
        return self._plan

    @property
    def schedule(self):
        return self._plan.schedule

    @property
    def graph(self):
        return self._plan.graph

    @property
    def offchip(self):
        return self._offchip

    @property
    def cores(self):
        return dict(self._cores)

    @property
    def multipliers(self):
        """Multipliers the cores build, one DSP block each on a device with them: the MAC
        arrays' and the special-function units' (:meth:`ComputingCore.multipliers`)."""
        return sum(core.multipliers for core in self._cores.values())

    @property
    def array_multipliers(self):
        """Multipliers of the cores' MAC arrays (one per PE some program reaches)."""
        return sum(core.array_multipliers for core in self._cores.values())

    @property
    def brams(self):
        """ECP5 block RAMs (DP16KD) Yosys 0.70's ``synth_ecp5`` maps the design's memories to
        (:func:`~intar_hw.hw.memory_map.design_brams`): the cores' scratchpads, replicas, window
        reader copies and special-function tables, and the loader's ring (read asynchronously,
        so never block RAM). Elaborates the design (about a second for small ones). Counts a
        result memory nobody reads (only mirrored into a peer's window copy), which Yosys
        removes: an upper bound for such chains (CNN, VAE)."""
        return design_brams(self)

    @property
    def bus_bytes(self):
        return self._bus_bytes

    @property
    def offchip_words(self):
        return self._offchip_words

    @property
    def output_base(self):
        return self._output_base

    @property
    def predicted_cycles(self):
        return self._plan.schedule.cycles

    @property
    def onchip_cycles(self):
        return onchip_cycles(self._plan)

    def elaborate(self, platform):
        m = Module()
        order = self._plan.cores
        index = {c: n for n, c in enumerate(order)}
        stages = tuple(tuple((index[c], p) for c, p in stage) for stage in self._plan.stages)
        writeback = tuple(self._offchip and st.words > 0 for st in self._storer_stages)
        m.submodules.controller = controller = ModeController(
            len(order), tuple(len(self._plan.programs[c]) for c in order), stages,
            writeback=writeback)
        m.d.comb += [
            controller.start.eq(self.start),
            self.busy.eq(controller.busy),
            self.done.eq(controller.done),
        ]
        # The cycle after a run: every level (what a memory's readers may read) back to 0, so
        # the next run, launched a cycle after its start at the earliest, waits for its own data.
        finished = Signal()
        m.d.sync += finished.eq(controller.done)
        for c, core in self._cores.items():
            n = index[c]
            m.submodules[f"core{c}"] = core
            # Each core's start is its own register, fed a cycle early by the controller: placed
            # beside the core's logic (the core's busy in it keeps synthesis from merging the
            # cores' registers into one driving them all across the chip; the controller arms
            # only idle cores, so it changes nothing).
            start = Signal(name=f"core{c}_start")
            m.d.sync += start.eq(controller.core_arm[n] & ~core.busy)
            m.d.comb += [
                core.clear.eq(finished),
                core.start.eq(start),
                core.stage.eq(controller.core_stage[n]),
                controller.core_done[n].eq(core.done),
            ]
            for name in core.signature.members:
                if not self._offchip and (name.endswith("_write") or name == "results_read"):
                    wiring.connect(m, wiring.flipped(getattr(self, f"core{c}_{name}")),
                                   getattr(core, name))
        for producer, consumers in self._shares.items():
            for i, (consumer, port) in enumerate(consumers):
                wiring.connect(m, getattr(self._cores[consumer], f"{port}_read"),
                               getattr(self._cores[producer], f"results_share{i}"))
                m.d.comb += getattr(self._cores[consumer], f"{port}_level").eq(
                    self._cores[producer].results_level)
        for consumer, producer in self._plan.window_peers.items():
            # A convolution's window reader keeps a copy of its peer's result memory.
            wiring.connect(m, self._cores[producer].results_mirror,
                           self._cores[consumer].window_peer_write)
            m.d.comb += self._cores[consumer].window_peer_level.eq(
                self._cores[producer].results_level)
        if self._offchip:
            # The cores' write ports are In members: the loader drives the unflipped signature.
            targets = {f"core{c}_{memory}":
                       self._cores[c].signature.members[f"{memory}_write"].signature.flip()
                       for c, memory in self._plan.targets()}
            m.submodules.loader = loader = Loader(
                targets, self._loader_stages, bus_bytes=self._bus_bytes,
                addr_width=len(self.offchip_read_req.payload.addr),
                count_width=len(self.offchip_read_req.payload.count), max_burst=MAX_BURST)
            m.d.comb += [loader.start.eq(controller.launch), loader.stage.eq(controller.current),
                         loader.clear.eq(finished)]
            wiring.connect(m, wiring.flipped(self.offchip_read_req), loader.read_req)
            wiring.connect(m, wiring.flipped(self.offchip_read_data), loader.read_data)
            for c, memory in self._plan.targets():
                core = self._cores[c]
                wiring.connect(m, getattr(loader, f"core{c}_{memory}"),
                               getattr(core, f"{memory}_write"))
                m.d.comb += getattr(core, f"{memory}_level").eq(
                    getattr(loader, f"core{c}_{memory}_level"))
            if any(writeback):
                sources = {f"core{c}_results":
                           self._cores[c].signature.members["results_read"].signature.flip()
                           for c in self._plan.result_sources()}
                m.submodules.storer = storer = Storer(
                    sources, self._storer_stages, bus_bytes=self._bus_bytes,
                    addr_width=len(self.offchip_write.payload.addr))
                m.d.comb += [storer.start.eq(controller.store),
                             storer.stage.eq(controller.current),
                             controller.store_busy.eq(storer.busy)]
                wiring.connect(m, wiring.flipped(self.offchip_write), storer.write)
                for c in self._plan.result_sources():
                    wiring.connect(m, getattr(storer, f"core{c}_results"),
                                   self._cores[c].results_read)
        return m


def build(schedule, graph=None, *, offchip=True):
    """The :class:`Accelerator` of ``schedule`` (see there for ``graph`` and ``offchip``).

    Arguments are checked before the component exists, so a failed build leaves no unused
    elaboratable behind.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"Schedule must be a Schedule, not {schedule!r}")
    graph = _graph(schedule, graph)
    _check_multipliers(schedule.resources, plan(schedule, graph).programs)
    return Accelerator(schedule, graph, offchip=offchip)


def _check_multipliers(resources, programs):
    """Refuse a design needing more multipliers than the budget's device has (before any part
    of it is built)."""
    if resources.device is None:
        return
    from ..flow.devices import DEVICES
    available = DEVICES[resources.device].capacity["dsp"]
    arrays = sum(array_multipliers(p) for p in programs.values())
    total = sum(core_multipliers(p) for p in programs.values())
    if total > available:
        raise ValueError(f"The accelerator needs {total} multipliers ({arrays} in its PE arrays, "
                         f"{total - arrays} in its special-function units) but "
                         f"{resources.device} has {available}")


def _graph(schedule, graph):
    """The graph to build ``schedule`` for: ``graph``, else the one the schedule carries."""
    if graph is None:
        graph = schedule.graph
        if graph is None:
            raise ValueError(f"Schedule of model {schedule.model!r} carries no graph (it was not "
                             f"made by intar_hw.schedule from a Graph); pass graph=")
    if not isinstance(graph, Graph):
        raise TypeError(f"Graph must be a Graph, not {graph!r}")
    return graph
