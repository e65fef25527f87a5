"""The history of a results directory: results/index.json, one entry per benchmark run, and
results/history/ (history.md, the table of the runs, and trend.png/.svg, each test's headline figure
over time in the lab of the newest run).

The index is rebuilt from the run folders alone, so it can be deleted at any time. Controller-only;
no Ansible imports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

INDEX_VERSION = 1


def _summary(run: Path) -> dict[str, Any]:
    """The run's summary.json, or, when it is missing, unreadable or older than the run's files, its summary
    rebuilt from the raw files (in memory: the report stage writes summary.json)."""
    sources = [run / "run.json", *(run / "raw").glob("[!.]*.json")]
    newest = max(path.stat().st_mtime_ns for path in sources)
    try:
        if (run / "summary.json").stat().st_mtime_ns >= newest:
            summary = json.loads((run / "summary.json").read_text())
            if isinstance(summary, dict) and isinstance(summary.get("results"), list):
                return summary
    except (OSError, ValueError):
        pass
    return run_summary.read_summary(run)[0]


def _distinct(nodes: list[dict[str, Any]], field: str) -> list[Any]:
    return sorted({node[field] for node in nodes if node.get(field) is not None}, key=str)


def environment_digest(meta: dict[str, Any]) -> dict[str, list[Any]]:
    """What the run's nodes were: their kernels, vCPUs, memory and CPU models (distinct values)."""
    nodes = (meta.get("environment") or {}).get("nodes") or []
    return {"kernels": _distinct(nodes, "kernel"), "vcpus": _distinct(nodes, "vcpus"),
            "memory_mb": _distinct(nodes, "memtotal_mb"), "cpu_models": _distinct(nodes, "cpu_model")}


def index_entry(run: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """One run of the index: who, when, on what, and each test's headline median."""
    summary = _summary(run)
    return {
        "run_id": meta["run_id"],
        "folder": run.name,
        "provider": meta.get("provider"),
        "cni": meta.get("cni"),
        "profile": meta.get("profile"),
        "started": meta.get("started"),
        "complete": summary.get("complete"),
        "environment": environment_digest(meta),
        "tests": [{"scenario": r["scenario"], "median": run_summary.headline(r)[0],
                   "unit": "trans/s" if r.get("tool") == "netperf" else "Gbit/s"} for r in summary["results"]],
    }


def rebuild_index(results_dir: str | os.PathLike) -> dict[str, Any]:
    """Write results/index.json from every run folder with a run.json (oldest first) and return it."""
    root = Path(results_dir)
    index = {"schema_version": INDEX_VERSION,
             "runs": [index_entry(run, meta) for run, meta in files.list_runs(root, "run.json")]}
    files.atomic_write(root / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def _cell(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values) or "-"


def render_markdown(index: dict[str, Any], provider: str | None, chart: str | None) -> str:
    """history.md: the runs of each lab (provider), newest first, and the trend chart of ``provider``'s lab."""
    lines = ["# Run history", "", "Every benchmark run in this results directory (`index.json` holds the same, "
             "with each test's headline median)."]
    providers = sorted({run["provider"] or "-" for run in index["runs"]}, key=lambda p: (p != (provider or "-"), p))
    header = ["run", "started", "cni", "profile", "complete", "tests", "kernel", "vCPUs", "memory MB", "CPU"]
    for lab in providers:
        runs = [run for run in reversed(index["runs"]) if (run["provider"] or "-") == lab]
        rows = [[f"`{run['run_id']}`", run["started"] or "-", run["cni"] or "-", run["profile"] or "-",
                 "yes" if run["complete"] else "no", str(len(run["tests"])), _cell(run["environment"]["kernels"]),
                 _cell(run["environment"]["vcpus"]), _cell(run["environment"]["memory_mb"]),
                 _cell(run["environment"]["cpu_models"])] for run in runs]
        lines += ["", f"## Lab {lab}", "", *files.markdown_table(header, rows)]
        if chart and lab == (provider or "-"):
            lines += ["", f"![Headline figure per test over time, lab {lab}]({chart})"]
    return "\n".join(lines) + "\n"


def write_history(results_dir: str | os.PathLike,
                  charts: bool = True) -> tuple[dict[str, Any], Path, list[Path]]:
    """Rebuild index.json, and history/history.md with the trend chart of the newest run's lab:
    (the index, the history folder, the chart files drawn)."""
    root = Path(results_dir)
    index = rebuild_index(root)
    out = root / "history"
    out.mkdir(exist_ok=True)
    provider = index["runs"][-1]["provider"] if index["runs"] else None
    drawn = []
    if charts and index["runs"]:
        # matplotlib is imported only when charts are drawn.
        from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts as charts_module

        drawn = charts_module.trend_chart(index, provider, out / "trend")
    files.atomic_write(out / "history.md", render_markdown(index, provider, "trend.png" if drawn else None))
    return index, out, drawn
