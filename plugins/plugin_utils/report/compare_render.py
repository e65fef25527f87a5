"""A comparison as the console shows it and as comparisons/<name>/ keeps it: comparison.json, .csv, .md and
the chart, from the runs' raw files (selection.py picks them, compare.py compares them). Pure functions plus
the writer; no Ansible imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import compare, files, run_report, selection
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary


def _mark(significant: bool | None) -> str:
    """* significant, nothing when not, ? when it cannot be told (fewer than two repeats)."""
    return {True: "*", False: "", None: "?"}[significant]


def _digits(row: dict[str, Any]) -> int:
    return 2 if row["unit"] == "Gbit/s" else 0


def text_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """Console: the median, and for a run other than the baseline its change: 13.40 (+28.1 %*)."""
    if not entry:
        return "-"
    median = files.fmt(entry["median"], _digits(row))
    if entry["change_percent"] is None:
        return median
    return f"{median} ({entry['change_percent']:+.1f} %{_mark(entry['significant'])})"


def host_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    if not entry or entry["host_change_percent"] is None:
        return "-"
    return f"{entry['host_change_percent']:+.1f} %"


def markdown_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """Markdown: median [confidence interval], change (significance), host-normalised change; netperf: p50/p99."""
    if not entry:
        return "-"
    digits = _digits(row)
    parts = [f"{files.fmt(entry['median'], digits)} [{run_report.ci_label(entry, digits)}]"]
    if entry["change_percent"] is not None:
        parts.append(f"{entry['change_percent']:+.1f} %{_mark(entry['significant'])}")
    if entry["host_change_percent"] is not None:
        parts.append(f"host-norm. {entry['host_change_percent']:+.1f} %")
    if row["tool"] == "netperf":
        parts.append(f"p50/p99 {files.fmt(entry['p50_us'], 0)}/{files.fmt(entry['p99_us'], 0)} us")
    return ", ".join(parts)


def _test_name(row: dict[str, Any]) -> str:
    return row["scenario"] + (" (same host)" if row.get("same_host") else "")


def run_table(comparison: dict[str, Any], tool: str | None, cell: Callable[[dict[str, Any], Any], str],
              markdown: bool = False) -> tuple[list[str], list[list[str]]]:
    """One row per test of ``tool`` (every test when None), one column per run, cells by ``cell(row, entry)``.
    The console's header says the unit; markdown's, under a titled section, which run is the baseline."""
    labels = [run["label"] + (" (baseline)" if markdown and i == comparison["baseline"] else "")
              for i, run in enumerate(comparison["runs"])]
    header = ["test" + (f" ({'Gbit/s' if tool == 'iperf3' else 'trans/s'})" if tool and not markdown else ""),
              *labels]
    rows = [[_test_name(row), *(cell(row, entry) for entry in row["runs"])]
            for row in comparison["rows"] if tool is None or row["tool"] == tool]
    return header, rows


def detail_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Every test of every run, one row each: the figures beside the headline one."""
    header = ["test", "run", "p", "retrans", "UDP loss %", "jitter ms", "CPU client %", "CPU s/Gbit",
              "CPU s/1k trans", "vs host", "noisy"]
    rows = []
    for row in comparison["rows"]:
        for run, entry in zip(comparison["runs"], row["runs"], strict=True):
            if not entry:
                continue
            fmt = files.fmt
            rows.append([_test_name(row), run["label"], fmt(entry["p"], 3), fmt(entry["retransmits"], 0),
                         fmt(entry["lost_percent"], 3), fmt(entry["jitter_ms"], 3),
                         fmt(entry["cpu_client_percent"], 0), fmt(entry["cpu_per_gbit"], 3),
                         fmt(entry["cpu_per_1k_trans"], 3), run_report.ratio(entry["host_ratio"]),
                         "yes" if entry["noisy"] else ""])
    return header, rows


def step_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The step table: per test the total along the chain and each step's share of it (* significant step)."""
    chain = comparison["steps"]
    header = ["test", "total", *(f"step {i}" for i in range(1, len(chain["chain"])))]
    rows = []
    for test in chain["tests"]:
        digits = 2 if test["unit"] == "Gbit/s" else 0
        total = "-" if test["total"] is None else f"{test['total']:+.{digits}f} {test['unit']}"
        if test["total_percent"] is not None:
            total += f" ({test['total_percent']:+.1f} %{_mark(test['total_significant'])})"
        if test["shares"] is None:
            cells = [test["verdict"], *[""] * (len(header) - 3)]
        else:
            cells = [f"{share:+.0f} %{_mark(sig)}"
                     for share, sig in zip(test["shares"], test["step_significant"], strict=True)]
        rows.append([test["scenario"], total, *cells])
    return header, rows


def step_legend(comparison: dict[str, Any]) -> list[str]:
    """What each step of the chain changes."""
    lines = []
    for i, step in enumerate(comparison["steps"]["settings"], 1):
        changes = step["changes"]
        said = ("settings not recorded" if changes is None else "; ".join(changes) or "no profile setting differs")
        lines.append(f"step {i}: {step['from']} -> {step['to']}: {said}")
    return lines


STEP_NOTE = ("total: the last run of the chain against the first; step i: (figure of run i - figure of run i-1) "
             "/ total, in percent. The shares sum to 100 %; a negative share is a step that goes against the "
             "total (another step then has more than 100 %). * the step's change (or the total) is significant, "
             f"? cannot be told. When the total is not significant, \"{compare.NO_TOTAL}\" stands instead of shares.")


SIDE_NOTE = ("Each side step changes one setting against a profile of the chain: its change is the second run's "
             "median against the first's, in percent; * significant, ? cannot be told.")


def side_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One column per side step (from -> to), one row per test: its change, with its significance."""
    found = comparison.get("side_steps") or []
    header = ["test", *(f"{step['chain'][0]} -> {step['chain'][1]}" for step in found)]
    rows = []
    for i, row in enumerate(comparison["rows"]):
        cells = []
        for step in found:
            test = step["tests"][i]
            mark = {True: "*", None: "?"}.get(test["total_significant"], "")
            cells.append("-" if test["total_percent"] is None else f"{test['total_percent']:+.1f} %{mark}")
        rows.append([row["scenario"], *cells])
    return header, rows


def side_legend(comparison: dict[str, Any]) -> list[str]:
    """What each side step changes."""
    lines = []
    for step in comparison.get("side_steps") or []:
        changes = step["settings"][0]["changes"]
        said = ", ".join(changes) if changes else ("no setting" if changes is not None else "settings not recorded")
        lines.append(f"{step['chain'][0]} -> {step['chain'][1]}: {said}")
    return lines


def _notes(comparison: dict[str, Any], markdown: bool = False) -> list[str]:
    """What the tables say; the markdown tables also give each median's confidence interval."""
    level = comparison["significance_level"]
    notes = [f"Each run against the baseline: the median (Gbit/s, or transactions per second for netperf tests) "
             f"and its change in percent; * the change is significant (Welch's t-test on the repeats' figures, "
             f"p < {level:g}), ? it cannot be told (fewer than two repeats), no mark: within the noise. "
             + ("In brackets the confidence interval of the median, 95 % unless its coverage is given (too few "
                "repeats for 95 %), - where the run has none. " if markdown else "")
             + "host-normalised (host-norm.): the change of each run's pod/host ratio (the pod test against its "
             "own host test), so a drift of the machine between runs cancels out."]
    if "local" in comparison["providers"]:
        notes.append(run_report.LOCAL_LAB_NOTE)
    notes += run_report.same_host_note([r["scenario"] for r in comparison["rows"] if r.get("same_host")])
    notes += [f"WARNING: {w}" for w in comparison["warnings"]]
    return notes


def _title(comparison: dict[str, Any]) -> str:
    runs = comparison["runs"]
    if len(runs) == 2:
        return " vs ".join(run["label"] for run in runs)
    return f"{len(runs)} runs against {runs[comparison['baseline']]['label']}"


def render_text(comparison: dict[str, Any]) -> str:
    lines = [_title(comparison)]
    lines += [f"  {run['label']}{' (baseline)' if i == comparison['baseline'] else ''}: run {run['run_id']}"
              for i, run in enumerate(comparison["runs"])]
    tables = [run_table(comparison, "iperf3", text_cell), run_table(comparison, "netperf", text_cell)]
    host = run_table(comparison, None, host_cell)
    tables.append((["host-normalised change", *host[0][1:]],
                   [row for row in host[1] if any(cell != "-" for cell in row[1:])]))
    for table in tables:
        if table[1]:
            lines += ["", *files.text_table(*table)]
    if comparison["steps"]:
        lines += ["", "Where the difference comes from (steps along the chain below):",
                  *files.text_table(*step_rows(comparison)), *step_legend(comparison)]
    if comparison.get("side_steps"):
        lines += ["", "Side steps (one setting against a profile of the chain):",
                  *files.text_table(*side_rows(comparison)), *side_legend(comparison)]
    return "\n".join([*lines, "", *_notes(comparison)])


def render_markdown(comparison: dict[str, Any], chart: str | None = None, profile_chain: Sequence[str] = ()) -> str:
    """comparison.md; ``chart``: the chart drawn beside it; ``profile_chain``: the chain the step table
    would have followed, named when it could not."""
    lines = [f"# {_title(comparison)}", ""]
    for i, run in enumerate(comparison["runs"]):
        baseline = " (baseline)" if i == comparison["baseline"] else ""
        lines.append(f"- {run['label']}{baseline}: run `{run['run_id']}`, {run['datapath'] or 'datapath unknown'}")
    for title, tool in (("Throughput (iperf3, Gbit/s)", "iperf3"),
                        ("Latency and transaction rate (netperf, trans/s)", "netperf")):
        table = run_table(comparison, tool, markdown_cell, markdown=True)
        if table[1]:
            lines += ["", f"## {title}", "", *files.markdown_table(*table)]
    if chart:
        lines += ["", f"![Headline figure per test and run]({chart})"]
    lines += ["", "## Where the difference comes from", ""]
    if comparison["steps"]:
        lines += [" -> ".join(f"{label} (`{run_id}`)" for label, run_id in
                              zip(comparison["steps"]["chain"], comparison["steps"]["run_ids"], strict=True)), "",
                  *files.markdown_table(*step_rows(comparison)), "",
                  *(f"- {line}" for line in step_legend(comparison)), "", f"> {STEP_NOTE}"]
    else:
        lines.append((f"No chain: fewer than two of {', '.join(profile_chain)} are compared " if profile_chain
                      else "No chain: none named ") + "(name one with -e compare_chain=...).")
    if comparison.get("side_steps"):
        lines += ["", "## Side steps", "", *files.markdown_table(*side_rows(comparison)), "",
                  *(f"- {line}" for line in side_legend(comparison)), "", f"> {SIDE_NOTE}"]
    lines += ["", "## Details per run", "", *files.markdown_table(*detail_rows(comparison)), ""]
    lines += [f"> {note}" for note in _notes(comparison, markdown=True)]
    return "\n".join(lines).rstrip() + "\n"


CSV_FIELDS = ("run_id", "label", "baseline", "scenario", "placement", "same_host", "protocol", "streams", "unit")


def render_csv(comparison: dict[str, Any]) -> str:
    """One line per test and run."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*CSV_FIELDS, *compare.RUN_FIELDS], extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in comparison["rows"]:
        for i, (run, entry) in enumerate(zip(comparison["runs"], row["runs"], strict=True)):
            if entry:
                writer.writerow({**row, **entry, "run_id": run["run_id"], "label": run["label"],
                                 "baseline": i == comparison["baseline"]})
    return out.getvalue()


def comparison_name(comparison: dict[str, Any]) -> str:
    """The comparison's folder: <baseline>_vs_<other> for two runs, <baseline>_vs_<n>-runs for more."""
    runs, base = comparison["runs"], comparison["baseline"]
    others = [run["run_id"] for i, run in enumerate(runs) if i != base]
    return f"{runs[base]['run_id']}_vs_{others[0] if len(others) == 1 else f'{len(others)}-runs'}"


def write_comparison(results_dir: str | os.PathLike, names: list[str] | None = None,
                     noisy_cv_percent: float = run_summary.NOISY_CV_PERCENT, charts: bool = True,
                     baseline: str | None = None, chain: list[str] | None = None,
                     profile_chain: Sequence[str] = (),
                     side_steps: Sequence[Sequence[str]] = ()) -> tuple[dict[str, Any], Path]:
    """Compare runs from their raw files and write comparisons/<name>/ (comparison_name). ``profile_chain``:
    the profiles' step chain (netlab_profile_chain), the runs' order and the step table's default chain;
    ``side_steps``: the profiles' side steps (netlab_profile_side_steps), those whose two runs are compared."""
    summaries = [run_summary.read_summary(run, noisy_cv_percent)[0]
                 for run in selection.select_runs(results_dir, names, profile_chain)]
    comparison = compare.compare(summaries, baseline or 0, chain, profile_chain, side_steps)
    out = Path(results_dir) / "comparisons" / comparison_name(comparison)
    out.mkdir(parents=True, exist_ok=True)
    files.atomic_write(out / "comparison.json", json.dumps(comparison, indent=2, sort_keys=True) + "\n")
    files.atomic_write(out / "comparison.csv", render_csv(comparison))
    if charts:
        # matplotlib is imported only when charts are drawn.
        from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts as charts_module

        charts_module.comparison_chart(comparison, out / "comparison")
    chart = "comparison.png" if charts else None
    files.atomic_write(out / "comparison.md", render_markdown(comparison, chart, profile_chain))
    return comparison, out
