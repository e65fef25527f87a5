"""Compare two benchmark runs, typically the newest Canal and Cilium runs of one lab.

Pure functions over run summaries (see results.py), plus the writer of a
comparison directory. No Ansible imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from . import report_files, results

BASELINE_ORDER = ("canal", "cilium")
SIDE_FIELDS = ("gbps_median", "gbps_min", "gbps_max", "repeats", "noisy", "retransmits", "lost_percent",
               "jitter_ms", "cpu_client_percent", "cpu_server_percent",
               "tool", "trans_per_s_median", "trans_per_s_min", "trans_per_s_max", "p50_us", "p90_us", "p99_us",
               "cpu_busy_s", "cpu_per_gbit", "cpu_per_1k_trans", "host_ratio", "host_ratio_p50")


def select_runs(results_dir: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """The two runs to compare: the ones named, or the newest Canal and Cilium
    runs of the provider of the newest run overall."""
    root = Path(results_dir)
    if names:
        if len(names) != 2:
            raise report_files.ResultError(f"name two runs to compare, got {len(names)}: {names}")
        dirs = [root / name for name in names]
        missing = [d.name for d in dirs if not (d / "run.json").is_file()]
        if missing:
            raise report_files.ResultError(f"no run {', '.join(missing)} in {root}")
        return dirs
    runs = report_files.list_runs(root, "run.json")
    if not runs:
        raise report_files.ResultError(f"no benchmark runs in {root}")
    provider = runs[-1][1].get("provider")
    newest = {meta.get("cni"): path for path, meta in runs if meta.get("provider") == provider}
    absent = [cni for cni in BASELINE_ORDER if cni not in newest]
    if absent:
        raise report_files.ResultError(
            f"no {' or '.join(absent)} run of provider {provider} yet: run the benchmark with cni={absent[0]}"
        )
    return [newest[cni] for cni in BASELINE_ORDER]


def _side(result: dict[str, Any] | None) -> dict[str, Any] | None:
    return {key: result.get(key) for key in SIDE_FIELDS} if result else None


def beyond_spread(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """True when the min-max ranges of the two tests' repeats do not overlap,
    False when they do, None when either side has fewer than two repeats."""
    if not a or not b or a["repeats"] < 2 or b["repeats"] < 2:
        return None
    (_, low_a, high_a), (_, low_b, high_b) = results.headline(a), results.headline(b)
    return high_a < low_b or high_b < low_a


def _env_key(summary: dict[str, Any], field: str) -> list[Any]:
    return sorted({str(node.get(field)) for node in summary.get("environment", {}).get("nodes", [])})


def _matrix_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    """The tests two matrices do not share or define differently, by name; empty when they agree."""
    by_a, by_b = {e["name"]: e for e in a}, {e["name"]: e for e in b}
    only_a = [name for name in by_a if name not in by_b]
    only_b = [name for name in by_b if name not in by_a]
    changed = [name for name in by_a if name in by_b and by_a[name] != by_b[name]]
    parts = [f"{label}: {', '.join(names)}" for label, names in (
        ("only in the first", only_a), ("only in the second", only_b), ("defined otherwise", changed)) if names]
    return "; ".join(parts)


def mismatches(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two runs in a way that breaks their comparison."""
    checks = {
        "provider": (a.get("provider"), b.get("provider")),
        "kernel": (_env_key(a, "kernel"), _env_key(b, "kernel")),
        "node vCPUs": (_env_key(a, "vcpus"), _env_key(b, "vcpus")),
        "node memory (MB)": (_env_key(a, "memtotal_mb"), _env_key(b, "memtotal_mb")),
        "iperf3 version": (a.get("iperf3_versions"), b.get("iperf3_versions")),
        "duration (s)": (a["settings"].get("duration"), b["settings"].get("duration")),
        "omit (s)": (a["settings"].get("omit"), b["settings"].get("omit")),
    }
    warnings = [f"the runs differ in {what}: {va} vs {vb}" for what, (va, vb) in checks.items() if va != vb]
    matrix = _matrix_difference(a.get("matrix") or [], b.get("matrix") or [])
    warnings += [f"the runs differ in matrix: {matrix}"] if matrix else []
    warnings += [f"run {s['run_id']} is incomplete" for s in (a, b) if not s["complete"]]
    return warnings


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The comparison of run summary b against baseline a, test by test."""
    by_name_a = {r["scenario"]: r for r in a["results"]}
    by_name_b = {r["scenario"]: r for r in b["results"]}
    names = list(by_name_a) + [n for n in by_name_b if n not in by_name_a]
    rows = []
    for name in names:
        ra, rb = by_name_a.get(name), by_name_b.get(name)
        first = ra or rb
        med_a = results.headline(ra)[0] if ra else None
        med_b = results.headline(rb)[0] if rb else None
        rows.append({
            "scenario": name,
            "placement": first["placement"],
            "same_host": any(bool(r and r.get("same_host")) for r in (ra, rb)),
            "protocol": first["protocol"],
            "streams": first["streams"],
            "tool": first.get("tool") or "iperf3",
            "a": _side(ra),
            "b": _side(rb),
            "change_percent": (med_b - med_a) / med_a * 100 if med_a and med_b is not None else None,
            "beyond_spread": beyond_spread(ra, rb),
        })
    same_cni = a.get("cni") == b.get("cni")
    return {
        "schema_version": results.SCHEMA_VERSION,
        "runs": {"a": a["run_id"], "b": b["run_id"]},
        "labels": {"a": a["run_id"] if same_cni else a["cni"], "b": b["run_id"] if same_cni else b["cni"]},
        "cni": {"a": a["cni"], "b": b["cni"]},
        "datapath": {"a": a.get("datapath"), "b": b.get("datapath")},
        "providers": sorted({a.get("provider"), b.get("provider")} - {None}),
        "warnings": mismatches(a, b),
        "rows": rows,
    }


def _pair(row: dict[str, Any], field: str, digits: int) -> str:
    values = [report_files.fmt(row[side][field] if row[side] else None, digits) for side in ("a", "b")]
    return " / ".join(values)


def _ratios(row: dict[str, Any], field: str) -> str:
    return " / ".join(results.ratio(row[side][field] if row[side] else None) for side in ("a", "b"))


def _verdict(row: dict[str, Any]) -> list[str]:
    """The test's name, its figure's change and whether the change is beyond the runs' spread."""
    change = row["change_percent"]
    spread_word = {True: "yes", False: "no", None: "n/a"}[row["beyond_spread"]]
    noisy = any(row[side] and row[side]["noisy"] for side in ("a", "b"))
    return [row["scenario"] + (" (same host)" if row.get("same_host") else ""),
            "-" if change is None else f"{change:+.1f}", spread_word + (" (noisy)" if noisy else "")]


def comparison_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The throughput tests (iperf3) of both runs side by side."""
    labels = comparison["labels"]
    header = ["test", f"{labels['a']} Gbps", f"{labels['b']} Gbps", "change %", "beyond spread",
              "retrans", "UDP loss %", "jitter ms", "CPU client %", "CPU s/Gbit", "vs host"]
    rows = []
    for row in comparison["rows"]:
        if row.get("tool", "iperf3") != "iperf3":
            continue
        name, change, spread_word = _verdict(row)
        rows.append([
            name,
            report_files.fmt(row["a"]["gbps_median"] if row["a"] else None),
            report_files.fmt(row["b"]["gbps_median"] if row["b"] else None),
            change, spread_word,
            _pair(row, "retransmits", 0),
            _pair(row, "lost_percent", 3),
            _pair(row, "jitter_ms", 3),
            _pair(row, "cpu_client_percent", 0),
            _pair(row, "cpu_per_gbit", 3),
            _ratios(row, "host_ratio"),
        ])
    return header, rows


def latency_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The netperf tests of both runs side by side: latency (us), rate and its change, CPU, against the host."""
    labels = comparison["labels"]
    header = ["test", f"{labels['a']} p50/p99 us", f"{labels['b']} p50/p99 us", "trans/s", "rate change %",
              "beyond spread", "CPU s/1k trans", "p50 vs host", "rate vs host"]
    rows = []
    for row in comparison["rows"]:
        if row.get("tool") != "netperf":
            continue
        name, change, spread_word = _verdict(row)
        latency = [f"{report_files.fmt(row[side]['p50_us'], 0)} / {report_files.fmt(row[side]['p99_us'], 0)}"
                   if row[side] else "-" for side in ("a", "b")]
        rows.append([name, *latency, _pair(row, "trans_per_s_median", 0), change, spread_word,
                     _pair(row, "cpu_per_1k_trans", 3), _ratios(row, "host_ratio_p50"), _ratios(row, "host_ratio")])
    return header, rows


def _notes(comparison: dict[str, Any]) -> list[str]:
    notes = ["change % is the second run against the first (Gbit/s, or transactions per second for netperf "
             "tests); beyond spread: the min-max ranges of the repeats do not overlap (n/a below two repeats). "
             "Pairs are first / second run; vs host is each run's pod test against its own host test."]
    if "local" in comparison["providers"]:
        notes.append(results.LOCAL_LAB_NOTE)
    notes += results.same_host_note([r["scenario"] for r in comparison["rows"] if r.get("same_host")])
    notes += [f"WARNING: {w}" for w in comparison["warnings"]]
    return notes


def render_text(comparison: dict[str, Any]) -> str:
    title = (f"{comparison['labels']['a']} ({comparison['runs']['a']}) vs "
             f"{comparison['labels']['b']} ({comparison['runs']['b']})")
    tables = [table for table in (comparison_rows(comparison), latency_rows(comparison)) if table[1]]
    return "\n".join([title, *(line for table in tables for line in report_files.text_table(*table)),
                      *_notes(comparison)])


def render_markdown(comparison: dict[str, Any], chart: str | None = None) -> str:
    labels, runs = comparison["labels"], comparison["runs"]
    lines = [f"# {labels['a']} vs {labels['b']}", ""]
    for side in ("a", "b"):
        datapath = comparison["datapath"][side] or "datapath unknown"
        lines.append(f"- {labels[side]}: run `{runs[side]}`, {datapath}")
    latency = latency_rows(comparison)
    if latency[1]:
        lines += ["", "## Latency and transaction rate (netperf)", "", *report_files.markdown_table(*latency)]
    tail = report_files.markdown_tail(*comparison_rows(comparison), chart, "Throughput per test", _notes(comparison))
    return "\n".join(lines) + "\n" + tail


def render_csv(comparison: dict[str, Any]) -> str:
    out = io.StringIO()
    fields = ["scenario", "placement", "same_host", "protocol", "streams", "change_percent", "beyond_spread"]
    side_fields = [f"{side}_{f}" for side in ("a", "b") for f in SIDE_FIELDS]
    writer = csv.DictWriter(out, fieldnames=["run_a", "run_b", *fields, *side_fields], lineterminator="\n")
    writer.writeheader()
    for row in comparison["rows"]:
        flat = {"run_a": comparison["runs"]["a"], "run_b": comparison["runs"]["b"],
                **{f: row[f] for f in fields}}
        for side in ("a", "b"):
            flat.update({f"{side}_{f}": (row[side] or {}).get(f) for f in SIDE_FIELDS})
        writer.writerow(flat)
    return out.getvalue()


def write_comparison(results_dir: str | os.PathLike, names: list[str] | None = None,
                     noisy_cv_percent: float = results.NOISY_CV_PERCENT,
                     charts: bool = True) -> tuple[dict[str, Any], Path]:
    """Compare two runs from their raw files and write comparisons/<a>_vs_<b>/."""
    run_a, run_b = select_runs(results_dir, names)
    summaries = []
    for run in (run_a, run_b):
        meta, records, _ = results.load_run(run)
        summaries.append(results.summarize(meta, records, noisy_cv_percent))
    comparison = compare(*summaries)
    out = Path(results_dir) / "comparisons" / f"{run_a.name}_vs_{run_b.name}"
    out.mkdir(parents=True, exist_ok=True)
    report_files.atomic_write(out / "comparison.json", json.dumps(comparison, indent=2, sort_keys=True) + "\n")
    report_files.atomic_write(out / "comparison.csv", render_csv(comparison))
    if charts:
        from . import charts as charts_module

        charts_module.comparison_chart(comparison, out / "comparison")
    chart = "comparison.png" if charts else None
    report_files.atomic_write(out / "comparison.md", render_markdown(comparison, chart))
    return comparison, out
