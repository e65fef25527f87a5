"""Charts of a run and of a comparison, as PNG and SVG (matplotlib, no display needed)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

# Figure without pyplot: no GUI backend and no global state, so it works on a headless controller.
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files

FORMATS = ("png", "svg")


def _save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg atomically."""
    written = []
    for fmt in FORMATS:
        target = stem.with_suffix(f".{fmt}")
        # No date and fixed ids in the SVG: the same raw files always give the same file.
        with files.atomic_target(target) as tmp, rc_context({"svg.hashsalt": "netlab"}):
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else None)
        written.append(target)
    return written


def _model_note(fig: Figure, text: str = "local lab: datapath model on one machine, not a real cluster") -> None:
    # Below the axis label; bbox_inches="tight" grows the image to keep it.
    fig.text(0.01, -0.04, text, fontsize=7)


def _error_bars(results: list[dict[str, Any]]) -> tuple[list[float], list[list[float]]]:
    """Medians and (median - min, max - median) error bars; tests without result draw nothing."""
    medians = [r["gbps_median"] or 0.0 for r in results]
    low = [(r["gbps_median"] - r["gbps_min"]) if r["gbps_median"] is not None else 0.0 for r in results]
    high = [(r["gbps_max"] - r["gbps_median"]) if r["gbps_median"] is not None else 0.0 for r in results]
    return medians, [low, high]


def _panel(ax: Any, results: list[dict[str, Any]], bars: tuple[list[float], list[list[float]]],
           color: str, xlabel: str, digits: int) -> None:
    """Tests as horizontal bars with error bars on one axis, each labelled with its median (the bar's
    value; "-" for a test without result) right of its whisker, and "CPU-bound" where the sender's CPU
    bounded it (summary.cpu_limited)."""
    positions = list(range(len(results)))
    ax.barh(positions, bars[0], xerr=bars[1], capsize=4, color=color)
    figures = [r["gbps_median"] if r.get("tool", "iperf3") == "iperf3" else r.get("p50_us") for r in results]
    for position, result, value, bar, high in zip(positions, results, figures, bars[0], bars[1][1], strict=True):
        label = files.fmt(value, digits) + (" CPU-bound" if result.get("cpu_limited") else "")
        ax.annotate(label, (bar + high, position), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(positions, [r["scenario"] for r in results])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    # Room right of the longest whisker for its label.
    ax.margins(x=0.12)


def _offered(ax: Any, summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """The rate each UDP test offered (matrix.offered_gbps), a dashed mark across its bar: a UDP figure cannot
    exceed it, whatever the datapath could carry."""
    entries = {e.get("name"): e for e in summary.get("matrix") or []}
    offered = [(position, matrix.offered_gbps(entries[r["scenario"]], summary.get("settings") or {}))
               for position, r in enumerate(results) if r["scenario"] in entries]
    drawn = [(position, rate) for position, rate in offered if rate is not None]
    if drawn:
        ax.vlines([rate for _, rate in drawn], [p - 0.4 for p, _ in drawn], [p + 0.4 for p, _ in drawn],
                  colors="#c44e52", linestyles="--", label="offered rate")
        ax.legend(loc="lower right", fontsize=7)


def _title(summary: dict[str, Any], suffix: str = "") -> str:
    return f"{files.run_label(summary)} - run {summary['run_id']}{suffix}"


def run_figure(summary: dict[str, Any]) -> Figure:
    """Throughput per test of one run (iperf3 tests): median bars with min-max range, each labelled with its
    median; UDP tests on an axis of their own, with the rate they were offered."""
    tests = [r for r in summary["results"] if r.get("tool", "iperf3") == "iperf3"]
    groups = [(group, udp) for group, udp in (([r for r in tests if r["protocol"] != "udp"], False),
                                              ([r for r in tests if r["protocol"] == "udp"], True)) if group]
    fig = Figure(figsize=(8, 0.5 * len(tests) + 1.6 * len(groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [len(group) + 1 for group, _ in groups]})[:, 0]
    for ax, (group, udp) in zip(axes, groups, strict=True):
        label = ("UDP Gbit/s received (median, bar: min-max of repeats; dashed: offered)" if udp
                 else "Gbit/s (median, bar: min-max of repeats)")
        # UDP rates are often below 1 Gbit/s: two decimals.
        _panel(ax, group, _error_bars(group), "#8172b2" if udp else "#4c72b0", label, 2 if udp else 1)
        if udp:
            _offered(ax, summary, group)
    axes[0].set_title(_title(summary))
    fig.set_layout_engine("constrained")
    if summary.get("provider") == "local":
        _model_note(fig)
    return fig


def run_chart(summary: dict[str, Any], stem: Path) -> list[Path]:
    """run_figure as stem.png and stem.svg."""
    return _save(run_figure(summary), stem)


def latency_figure(summary: dict[str, Any]) -> Figure:
    """netperf latency per test of one run: the median p50 as the bar (labelled), whisker to the median p99."""
    results = [r for r in summary["results"] if r.get("tool") == "netperf"]
    p50 = [r["p50_us"] or 0.0 for r in results]
    p99 = [(r["p99_us"] - r["p50_us"]) if r["p50_us"] is not None and r["p99_us"] is not None else 0.0
           for r in results]
    fig = Figure(figsize=(8, 0.5 * len(results) + 1.6))
    ax = fig.subplots()
    _panel(ax, results, (p50, [[0.0] * len(results), p99]), "#55a868",
           "microseconds per transaction (bar: p50, whisker: p99; medians of repeats)", 0)
    ax.set_title(_title(summary, ": netperf latency"))
    if summary.get("provider") == "local":
        _model_note(fig)
    return fig


def latency_chart(summary: dict[str, Any], stem: Path) -> list[Path]:
    """latency_figure as stem.png and stem.svg."""
    return _save(latency_figure(summary), stem)


# One colour per run of a comparison or per line of a trend (matplotlib's tab10, which has ten).
COLOURS = ("#dd8452", "#4c72b0", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd")


def _grouped_bars(ax: Any, comparison: dict[str, Any], rows: list[dict[str, Any]], digits: int) -> None:
    """One group per test, one bar per run with its value; whisker: the median's confidence interval where known."""
    runs = comparison["runs"]
    height = 0.8 / len(runs)
    for j, run in enumerate(runs):
        entries = [row["runs"][j] or {} for row in rows]
        medians = [e.get("median") or 0.0 for e in entries]
        low = [m - e["ci_low"] if e.get("ci_low") is not None else 0.0 for m, e in zip(medians, entries, strict=True)]
        high = [e["ci_high"] - m if e.get("ci_high") is not None else 0.0
                for m, e in zip(medians, entries, strict=True)]
        bars = ax.barh([i + (j - (len(runs) - 1) / 2) * height for i in range(len(rows))], medians, height=height,
                       xerr=[low, high], capsize=2, color=COLOURS[j % len(COLOURS)], label=run["label"])
        ax.bar_label(bars, labels=["" if e.get("median") is None else f"{e['median']:.{digits}f}" for e in entries],
                     padding=3, fontsize=6)
    ax.set_yticks(list(range(len(rows))), [row["scenario"] for row in rows])
    ax.invert_yaxis()
    ax.margins(x=0.12)


def comparison_chart(comparison: dict[str, Any], stem: Path) -> list[Path]:
    """Each test's headline median, one group of bars per test and one bar per run: throughput (iperf3)
    and transaction rate (netperf) on panels of their own."""
    panels = [(unit, digits, [row for row in comparison["rows"] if row["unit"] == unit])
              for unit, digits in (("Gbit/s", 2), ("trans/s", 0))]
    panels = [panel for panel in panels if panel[2]]
    sizes = [0.18 * len(rows) * len(comparison["runs"]) + 0.8 for _, _, rows in panels]
    fig = Figure(figsize=(9, sum(sizes) + 1.2))
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})[:, 0]
    for ax, (unit, digits, rows) in zip(axes, panels, strict=True):
        _grouped_bars(ax, comparison, rows, digits)
        ax.set_xlabel(f"{unit} (median; whisker: its confidence interval where known)")
    axes[0].set_title(f"{len(comparison['runs'])} runs, baseline "
                      f"{comparison['runs'][comparison['baseline']]['label']}")
    axes[0].legend(loc="best", fontsize=7)
    if "local" in comparison["providers"]:
        _model_note(fig)
    return _save(fig, stem)


def scale_chart(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], stem: Path) -> list[Path]:
    """Latency (p50, p99) and update times against the number of Services, one colour per CNI and structure."""
    fig = Figure(figsize=(11, 4.2))
    latency, update = fig.subplots(1, 2)
    for (meta, records), color in zip(runs, ("#dd8452", "#4c72b0", "#55a868"), strict=False):
        label = f"{meta['cni']} ({meta['model']})"
        counts = [r["services"] for r in records]
        latency.plot(counts, [r["latency_us"]["p50"] for r in records], "o-", color=color, label=f"{label} p50")
        latency.plot(counts, [r["latency_us"]["p99"] for r in records], "s--", color=color, label=f"{label} p99")
        update.plot(counts, [r["update_ms"] for r in records], "o-", color=color, label=f"{label} add Service")
        update.plot(counts, [r["reachable_ms"] for r in records], "s--", color=color, label=f"{label} answers after")
    latency.set_title("New-connection latency through the last Service")
    latency.set_ylabel("microseconds")
    update.set_title("Adding one Service")
    update.set_ylabel("milliseconds")
    for ax in (latency, update):
        ax.set_xlabel("Services")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _model_note(fig, "local lab: model of the lookup structures on one machine's kernel, "
                "not kube-proxy or Cilium themselves")
    return _save(fig, stem)


def _started(run: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(run.get("started") or "")
    except ValueError:
        return None


def trend_chart(index: dict[str, Any], provider: str | None, stem: Path) -> list[Path]:
    """Each test's headline median over time in one lab (the runs of ``provider`` in the history index),
    one panel per test (throughput tests first, then the netperf rates), one line per CNI and profile.
    Runs without a readable start time are left out; nothing is drawn without a point."""
    runs = [run for run in index["runs"] if run.get("provider") == provider and _started(run)]
    tests: dict[tuple[str, str], dict[str, list[tuple[datetime, float]]]] = {}
    for run in runs:
        line = f"{run['cni']}/{run['profile']}" if run.get("profile") else str(run.get("cni"))
        for test in run["tests"]:
            if test["median"] is not None:
                points = tests.setdefault((test["unit"], test["scenario"]), {}).setdefault(line, [])
                points.append((_started(run), test["median"]))
    if not tests:
        return []
    panels = sorted(tests, key=lambda key: key[0] != "Gbit/s")  # stable: each group keeps the runs' test order
    lines = sorted({line for points in tests.values() for line in points})
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    # Constrained layout keeps the title, the panels, their date ticks and the legend beside them apart.
    fig = Figure(figsize=(4.2 * columns, 2.6 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, key in zip(axes, panels, strict=False):
        for line, points in sorted(tests[key].items()):
            ax.plot(*zip(*points, strict=True), "o-", markersize=3, color=COLOURS[lines.index(line) % len(COLOURS)],
                    label=line)
        ax.set_title(f"{key[1]} ({key[0]})", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.tick_params(labelsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker="o", color=COLOURS[i % len(COLOURS)], label=line) for i, line in enumerate(lines)]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"Headline median per test over time, lab {provider}")
    if provider == "local":
        _model_note(fig)
    return _save(fig, stem)


def mesh_figure(found: dict[str, Any], summary: dict[str, Any]) -> Figure:
    """A mesh test's pairs as a heatmap: rows the client, columns the server, each cell its figure against the
    median of all pairs (mesh.matrices' item); same-machine pairs hatched, the slowest framed."""
    nodes = found["nodes"]
    median = found["median"] or 1.0
    grid = [[(found["cells"][c].get(s) / median) if c != s and found["cells"][c].get(s) is not None else float("nan")
             for s in nodes] for c in nodes]
    size = 1.2 + 0.9 * len(nodes)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0.5, vmax=1.5)
    ax.set_xticks(range(len(nodes)), labels=nodes, rotation=30, ha="right")
    ax.set_yticks(range(len(nodes)), labels=nodes)
    ax.set_xlabel("server")
    ax.set_ylabel("client")
    same = {tuple(pair) for pair in found["same_host"]}
    slow = found["slowest"] or {}
    for i, client in enumerate(nodes):
        for j, server in enumerate(nodes):
            value = found["cells"][client].get(server)
            if client == server or value is None:
                continue
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
            if (client, server) in same:
                ax.add_patch(_cell_box(j, i, hatch="//", edgecolor="grey", linewidth=0))
            if (client, server) == (slow.get("client"), slow.get("server")):
                ax.add_patch(_cell_box(j, i, edgecolor="black", linewidth=2))
    fig.colorbar(image, ax=ax, label="against the median of all pairs")
    fig.text(0.01, -0.08 if summary.get("provider") == "local" else -0.04,
             "framed: the slowest pair; hatched: both nodes on one machine", fontsize=7)
    ax.set_title(_title(summary, f" mesh: {found['test']} ({found['unit']})"), fontsize=9)
    if summary.get("provider") == "local":
        _model_note(fig)
    return fig


def _cell_box(x: int, y: int, **style: Any) -> Rectangle:
    """An unfilled box over the heatmap's cell (x, y): hatched for a same-machine pair, framed for the slowest."""
    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, **style)


def mesh_chart(found: dict[str, Any], summary: dict[str, Any], stem: Path) -> list[Path]:
    return _save(mesh_figure(found, summary), stem)
