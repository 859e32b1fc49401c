"""The pictures of docs/performance.rst: one per question a reader asks.

    python bench/plots.py   # redraw docs/img/ from bench/results.json and bench/long_poll.json

``bench/run.py`` and ``bench/long_poll.py`` draw them at the end of a run.
Each shows ratios (1: as fast as what it is compared with) against N, the
targets of ``bench/targets.toml`` dashed. The colour is the backend, the line
style the request. Needs matplotlib (the ``bench`` extra): without it,
nothing is drawn.
"""

import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import BACKEND_NAMES, TARGETS  # noqa: E402


IMAGES = ROOT / "docs" / "img"
COLORS = {"memory": "tab:orange", "postgresql": "tab:blue"}
STYLES = ("-", ":")  # The line styles of a picture's first and second request.
SIZE = (6.4, 3.6)  # inches, saved at 100 dpi
LOG_TICKS = [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
# bench/long_poll.py's target; docs/performance.rst states it (targets.toml
# holds bench/run.py's).
IDLE_WAITERS_TARGET = 0.9


def pyplot():
    """matplotlib's pyplot, drawing to files; None when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    return plt


class Ratios:
    """The ratios of a ``bench/run.py`` run (the dict of its JSON file)."""

    def __init__(self, data: dict):
        self.sizes = data["meta"]["sizes"]
        self.backends = [b for b in COLORS if any(s["backend"] == b for s in data["samples"])]
        self.values = {
            (s["backend"], s["n"], s["metric"], s["variant"]): s["ratio"] for s in data["samples"]
        }

    def points(self, backend: str, key: tuple[str, str]) -> tuple[list, list]:
        found = [(n, self.values.get((backend, n, *key))) for n in self.sizes]
        return [n for n, r in found if r is not None], [r for _, r in found if r is not None]


def draw_bench(data: dict, directory: Path = IMAGES) -> list[Path]:
    """The pictures of a ``bench/run.py`` run, into ``directory``."""
    plt = pyplot()
    if plt is None:
        return []
    ratios = Ratios(data)
    directory.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, draw in PICTURES.items():
        figure = draw(plt, ratios)
        figure.savefig(directory / name, dpi=100)
        plt.close(figure)
        drawn.append(directory / name)
    return drawn


def lines(axis, ratios: Ratios, styles: dict[str, tuple[str, str]]) -> None:
    """One line per backend and ``styles`` entry (label -> (metric, variant)),
    then the targets of these rows."""
    for backend in ratios.backends:
        for key, style in zip(styles.values(), STYLES, strict=False):
            xs, ys = ratios.points(backend, key)
            axis.plot(xs, ys, style, marker="o", color=COLORS[backend], linewidth=2)
    for key in styles.values():
        targets(axis, ratios.backends, key)


def targets(axis, backends: list[str], key: tuple[str, str]) -> None:
    """The dashed lines of targets.toml for this row (checked at the largest N)."""
    for target in TARGETS:
        if (target["metric"], target["variant"]) == key and target["backend"] in backends:
            sign = "≤" if target.get("at_most") else "≥"
            target_line(axis, target["threshold"], sign, COLORS[target["backend"]])


def target_line(axis, threshold: float, sign: str, color: str) -> None:
    """Dashed, its value at the right end, past the points."""
    axis.axhline(threshold, linestyle="--", linewidth=1.2, color=color)
    axis.annotate(
        f"{sign} {threshold}",
        (1, threshold),
        xycoords=("axes fraction", "data"),
        xytext=(-3, 2),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize="small",
        color=color,
    )


def ratio_axis(axis, sizes: list[int], ylabel: str, log: bool = False) -> None:
    """N on a log axis, a line at 1, the ratio's meaning on the y axis."""
    axis.axhline(1, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xticks(sizes, [f"{n:,}" for n in sizes])
    # Room at the right for the targets' values.
    axis.set_xlim(sizes[0] / 1.6, sizes[-1] * 4)
    if log:
        log_y(axis)
    axis.minorticks_off()
    axis.set_xlabel("N (monitored collections)")
    axis.set_ylabel(ylabel)
    axis.grid(True, alpha=0.3)


def log_y(axis) -> None:
    """A log y axis labelled with plain numbers."""
    axis.set_yscale("log")
    low, high = axis.get_ylim()
    axis.set_yticks([t for t in LOG_TICKS if low <= t <= high])
    axis.yaxis.set_major_formatter(lambda value, _: f"{value:g}")
    axis.minorticks_off()


def legend(figure, backends: dict[str, str], styles: list[str], target: bool = True) -> None:
    """Under the panels, in one row: colour = backend, line style = request."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS[b], linewidth=6) for b in backends]
    handles += [
        Line2D([], [], color="dimgray", linestyle=style, marker="o", linewidth=2)
        for style in STYLES[: len(styles)]
    ]
    labels = [*backends.values(), *styles]
    if target:
        handles.append(Line2D([], [], color="dimgray", linestyle="--", linewidth=1.2))
        labels.append("target")
    figure.legend(
        handles,
        labels,
        loc="lower center",
        ncol=len(handles),
        fontsize="small",
        frameon=False,
        handlelength=2.2,
        columnspacing=1.2,
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))


def names(backends: list[str]) -> dict[str, str]:
    return {b: BACKEND_NAMES[b] for b in backends}


def poll_cost(plt, ratios: Ratios):
    figure, axis = plt.subplots(figsize=SIZE)
    styles = {"_since=<ETag>": ("since", "list"), "304 Not Modified": ("notmod", "list")}
    lines(axis, ratios, styles)
    ratio_axis(axis, ratios.sizes, f"req/s at N ÷ at N = {ratios.sizes[0]:,}", log=True)
    axis.set_title("Does a poll slow down as N grows?")
    legend(figure, names(ratios.backends), list(styles))
    return figure


def list_cost(plt, ratios: Ratios):
    figure, axis = plt.subplots(figsize=SIZE)
    styles = {"the whole list": ("full", "list"), "its changeset": ("changeset", "list")}
    lines(axis, ratios, styles)
    ratio_axis(axis, ratios.sizes, "req/s ÷ GET /records of N", log=True)
    axis.set_title("What does the whole list cost, against Kinto's /records?")
    legend(figure, names(ratios.backends), list(styles))
    return figure


def writer_cost(plt, ratios: Ratios):
    figure, axes = plt.subplots(1, 2, figsize=SIZE, sharey=True)
    for axis, (clients, metric) in zip(axes, {1: "write-1", 8: "write-8"}.items(), strict=True):
        styles = {"configured": (metric, "plugin"), "nothing configured": (metric, "default")}
        lines(axis, ratios, styles)
        ratio_axis(axis, ratios.sizes, "")
        axis.set_title(f"{clients} client{'s' if clients > 1 else ''}", fontsize="medium")
    axes[0].set_ylabel("writes/s, plugin ÷ no plugin")
    figure.suptitle("What does the plugin cost a writer?")
    legend(figure, names(ratios.backends), list(styles))
    return figure


def reader_cost(plt, ratios: Ratios):
    figure, axis = plt.subplots(figsize=SIZE)
    styles = {
        "whole list": ("private", "full, reader"),
        "_since=<ETag>": ("private", "since, reader"),
    }
    lines(axis, ratios, styles)
    ratio_axis(axis, ratios.sizes, "req/s, reader ÷ anonymous (N entries)", log=True)
    axis.set_title("What does a reader who may read 100 collections pay?")
    legend(figure, names(ratios.backends), list(styles), target=False)
    return figure


PICTURES = {
    "poll-cost.png": poll_cost,
    "list-cost.png": list_cost,
    "writer-cost.png": writer_cost,
    "reader-cost.png": reader_cost,
}


def draw_long_poll(runs: list[dict], path: Path = IMAGES / "long-poll.png") -> Path | None:
    """Wake latency and idle waiters' cost, from ``bench/long_poll.json``."""
    plt = pyplot()
    if plt is None:
        return None
    figure, (wake, idle) = plt.subplots(1, 2, figsize=SIZE, width_ratios=[1.7, 1])
    wake_latency(wake, runs)
    idle_waiters(idle, runs)
    figure.suptitle("How fast does a waiter wake?")
    backends = {
        backend_of(run): run["backend"].replace("postgresql", "PostgreSQL") for run in runs
    }
    legend(figure, backends, ["median", "p99"])
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def backend_of(run: dict) -> str:
    return "postgresql" if run["backend"].startswith("postgresql") else "memory"


def wake_latency(axis, runs: list[dict]) -> None:
    """Per backend, median and p99 against the number of waiters."""
    keys = [key for key in runs[0] if key.startswith("wake_ms_")]
    waiters = [int(key.removeprefix("wake_ms_")) for key in keys]
    for run in runs:
        for style, stat in zip(STYLES, ("median", "p99"), strict=True):
            ys = [run[key][stat] for key in keys]
            axis.plot(waiters, ys, style, marker="o", color=COLORS[backend_of(run)], linewidth=2)
    axis.set_xscale("log")
    axis.set_xticks(waiters, [str(w) for w in waiters])
    axis.set_xlim(waiters[0] / 1.6, waiters[-1] * 1.6)
    log_y(axis)
    axis.set_xlabel("waiters woken by one write")
    axis.set_ylabel("ms from the write's answer")
    axis.set_title("Wake latency", fontsize="medium")
    axis.grid(True, alpha=0.3)


def idle_waiters(axis, runs: list[dict]) -> None:
    """Writes/s with idle waiters ÷ without, per backend."""
    xs = range(len(runs))
    colors = [COLORS[backend_of(run)] for run in runs]
    axis.bar(xs, [run["idle_waiters_write_ratio"] for run in runs], 0.5, color=colors)
    axis.axhline(1, color="black", linewidth=0.8)
    target_line(axis, IDLE_WAITERS_TARGET, "≥", "black")
    axis.set_xlim(-0.5, len(runs) - 0.1)
    axis.set_xticks(xs, [BACKEND_NAMES[backend_of(run)] for run in runs])
    axis.set_ylabel("writes/s, 50 idle waiters ÷ none")
    axis.set_title("What idle waiters cost", fontsize="medium")


def main() -> int:
    drawn = draw_bench(json.loads((ROOT / "bench" / "results.json").read_text()))
    long_poll = ROOT / "bench" / "long_poll.json"
    if drawn and long_poll.exists():
        drawn.append(draw_long_poll(json.loads(long_poll.read_text())))
    for path in drawn:
        print(path.relative_to(ROOT))
    if not drawn:
        print("matplotlib is not installed: pip install -e '.[bench]'", file=sys.stderr)
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
