"""A schedule's timeline as a PNG: cores over time, coloured by pattern, with on-chip occupancy.

matplotlib is imported only when a plot is drawn, and only its object-oriented API with the Agg
canvas is used, so no global backend is switched and no display is needed.
"""

from .plan import Pattern


__all__ = ["COLOURS", "plot_timeline"]


#: Bar colour per pattern.
COLOURS = {
    Pattern.SEQUENTIAL: "#4C72B0",
    Pattern.TASK_PARALLEL: "#55A868",
    Pattern.TASK_PIPELINE: "#DD8452",
}


def plot_timeline(schedule, path, *, title=None):
    """Draw ``schedule`` to ``path`` (PNG).

    Top: one row per core; each task is a bar from its start to its end, coloured by its stage's
    pattern and labelled with its name where it is wide enough, over a pale band spanning its
    whole stage (a stage outlasts its tasks when off-chip traffic or fill bounds it). Every stage
    is numbered above the bars (``S3``, as in the stage table), with its bound when that is not
    compute; dotted lines mark stage boundaries. Bottom: on-chip occupancy per stage (resident
    tensors plus buffers) on a log scale, so a few KiB show beside a budget of hundreds, with the
    budget's capacity.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Patch

    cores = schedule.cores
    figure = Figure(figsize=(11, 2.2 + 0.45 * len(cores) + 1.8))
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 1, height_ratios=[max(2, len(cores)), 2], hspace=0.35)
    bars = figure.add_subplot(grid[0])
    memory = figure.add_subplot(grid[1], sharex=bars)
    total = max(schedule.cycles, 1)
    for stage in schedule.stages:
        colour = COLOURS[stage.pattern]
        for placement in stage.placements:
            for core in placement.cores:
                bars.broken_barh([(stage.start, stage.cycles)], (core - 0.45, 0.9),
                                 facecolors=colour, alpha=0.25, linewidth=0)
        wide = stage.cycles > total * 0.06
        label = f"S{stage.index}" + (f" {stage.bound}" if wide and stage.bound != "compute"
                                     else "")
        bars.text(stage.start + stage.cycles / 2, -0.62, label, ha="center", va="center",
                  fontsize=6 if wide else 5, rotation=0 if wide else 90, clip_on=True)
        for placement in stage.placements:
            begin = stage.start + placement.start
            width = max(placement.end - placement.start, total * 1e-4)
            for core in placement.cores:
                bars.broken_barh([(begin, width)], (core - 0.4, 0.8), facecolors=colour,
                                 edgecolors="black", linewidth=0.4)
                if width > total * 0.03:
                    bars.text(begin + width / 2, core, placement.task, ha="center",
                              va="center", fontsize=7, color="white", clip_on=True)
        bars.axvline(stage.start, color="grey", linestyle=":", linewidth=0.6)
    bars.set_yticks(range(len(cores)))
    bars.set_yticklabels([f"core {c.index}\n{'x'.join(map(str, c.pea))}" for c in cores],
                         fontsize=7)
    bars.set_ylim(-0.8, len(cores) - 0.4)
    bars.invert_yaxis()
    bars.set_xlim(0, total)
    bars.legend(handles=[Patch(color=c, label=p.value) for p, c in COLOURS.items()]
                + [Patch(color="grey", alpha=0.25, label="stage span\n(task bars inside)")],
                loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)
    bars.set_title(title or f"{schedule.model}: {schedule.policy}, {schedule.cycles:,} cycles",
                   fontsize=9)
    xs, ys = [], []
    for stage in schedule.stages:
        xs += [stage.start, stage.end]
        ys += [stage.scratchpad_bytes / 1024] * 2
    memory.plot(xs, ys, color="black", linewidth=1, label="on-chip used")
    memory.fill_between(xs, ys, alpha=0.2, color="black")
    resources = schedule.resources
    capacity = (resources.total_scratchpad_bytes + resources.fifo_bytes) / 1024
    memory.axhline(capacity, color="red", linestyle="--", linewidth=0.8, label="on-chip budget")
    memory.set_ylabel("on-chip KiB (log)", fontsize=8)
    memory.set_xlabel("cycle", fontsize=8)
    memory.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)
    used = [y for y in ys if y > 0]
    memory.set_yscale("log")
    memory.set_ylim(min(used + [capacity]) / 2, max(used + [capacity]) * 2)
    figure.subplots_adjust(left=0.08, right=0.86)
    figure.savefig(path, dpi=110)
    return path
