"""Charts of a run and of a comparison, as PNG and SVG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib import rc_context

# Figure without pyplot: no GUI backend and no global state, so it works on a headless controller.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import matrix, report_files
from .report_files import atomic_target
from .results import run_label

FORMATS = ("png", "svg")


def _save(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg atomically."""
    written = []
    for fmt in FORMATS:
        target = stem.with_suffix(f".{fmt}")
        # No date and fixed ids in the SVG: the same raw files always give the same file.
        with atomic_target(target) as tmp, rc_context({"svg.hashsalt": "netlab"}):
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
    bounded it (results.cpu_limited)."""
    positions = list(range(len(results)))
    ax.barh(positions, bars[0], xerr=bars[1], capsize=4, color=color)
    figures = [r["gbps_median"] if r.get("tool", "iperf3") == "iperf3" else r.get("p50_us") for r in results]
    for position, result, value, bar, high in zip(positions, results, figures, bars[0], bars[1][1], strict=True):
        label = report_files.fmt(value, digits) + (" CPU-bound" if result.get("cpu_limited") else "")
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
    return f"{run_label(summary)} - run {summary['run_id']}{suffix}"


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


def comparison_chart(comparison: dict[str, Any], stem: Path) -> list[Path]:
    """Throughput per test (iperf3 tests) of two runs side by side."""
    rows = [row for row in comparison["rows"] if row.get("tool", "iperf3") == "iperf3"]
    labels = comparison["labels"]
    fig = Figure(figsize=(8, 0.8 * len(rows) + 1.6))
    ax = fig.subplots()
    height = 0.38
    for offset, side, color in ((-height / 2, "a", "#dd8452"), (height / 2, "b", "#4c72b0")):
        stats = [row[side] or {"gbps_median": None, "gbps_min": None, "gbps_max": None} for row in rows]
        medians, errors = _error_bars(stats)
        ax.barh([i + offset for i in range(len(rows))], medians, height=height, xerr=errors, capsize=3,
                color=color, label=labels[side])
    ax.set_yticks(list(range(len(rows))), [row["scenario"] for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel("Gbit/s (median, bar: min-max of repeats)")
    ax.set_title(f"{labels['a']} vs {labels['b']}")
    ax.legend(loc="lower right")
    if "local" in comparison["providers"]:
        _model_note(fig)
    return _save(fig, stem)


def scale_chart(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], stem: Path) -> list[Path]:
    """Latency (p50, p99) and update times against the number of Services, one colour per CNI."""
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
    _model_note(fig, "local lab: model of the two lookup structures on one machine's kernel, "
                "not kube-proxy or Cilium themselves")
    return _save(fig, stem)
