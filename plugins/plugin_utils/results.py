"""Turn raw iperf3 JSON into records, summaries and reports.

A run directory holds ``run.json`` (metadata and the plan, written before the
first test) and ``raw/<test id>.json`` (iperf3 ``--json`` output, one file per
test, written as each test ends). Every report is rebuilt from those files
alone (read and written with report_files.py). Pure functions; no Ansible imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import proof
from .matrix import SAME_HOST
from .report_files import ResultError, atomic_write, fmt, markdown_table, markdown_tail, read_run, text_table

SCHEMA_VERSION = 1
# A test whose repeats vary more than this (coefficient of variation) is flagged noisy.
NOISY_CV_PERCENT = 10.0
SUMMARY_FIELDS = (
    "scenario", "placement", "same_host", "protocol", "streams", "repeats", "gbps_median", "gbps_min",
    "gbps_max", "gbps_stdev", "gbps_iqr", "cv_percent", "noisy", "retransmits", "lost_percent",
    "jitter_ms", "cpu_client_percent", "cpu_server_percent",
)
LOCAL_LAB_NOTE = (
    "Local lab: a model of the CNI datapath built from real kernel devices in podman "
    "nodes on one machine. These are not figures of a real cluster."
)


def parse_iperf3(doc: Any) -> dict[str, Any]:
    """One iperf3 ``--json`` document as a flat record.

    Throughput is what the receiver got. For UDP, loss and jitter are the
    receiver's (iperf3 >= 3.x reports them in ``end.sum_received``).
    """
    if not isinstance(doc, dict) or "start" not in doc or "end" not in doc:
        raise ResultError("not iperf3 JSON output (no start/end sections)")
    if doc.get("error"):
        return {"ok": False, "error": str(doc["error"])}
    start, end = doc["start"], doc["end"]
    test = start.get("test_start") or {}
    protocol = str(test.get("protocol", "")).lower()
    received = end.get("sum_received") or end.get("sum")
    if not received or "bits_per_second" not in received:
        raise ResultError("iperf3 output has no receiver summary")
    sent = end.get("sum_sent") or {}
    cpu = end.get("cpu_utilization_percent") or {}
    record: dict[str, Any] = {
        "ok": True,
        "error": None,
        "protocol": protocol,
        "streams": test.get("num_streams"),
        "reverse": bool(test.get("reverse")),
        "duration": test.get("duration"),
        "iperf3_version": start.get("version"),
        "gbps": received["bits_per_second"] / 1e9,
        "retransmits": sent.get("retransmits") if protocol == "tcp" else None,
        "lost_percent": received.get("lost_percent") if protocol == "udp" else None,
        "jitter_ms": received.get("jitter_ms") if protocol == "udp" else None,
        # With --reverse the local iperf3 is the receiver; these stay client/server.
        "cpu_client_percent": cpu.get("host_total"),
        "cpu_server_percent": cpu.get("remote_total"),
        # How much each datapath counter of the client's node grew during the test (local transport).
        "counters": proof.delta(doc.get("netlab_counters")),
    }
    return record


def test_line(test: dict[str, Any], raw: str) -> str:
    """The console's line for one finished test: ``3/21 cross-node-tcp-4 r1: 25.70 Gbit/s, 744 retr``."""
    head = f"{test['index']}/{test['total']} {test['scenario']} r{test['repeat']}"
    try:
        record = parse_iperf3(json.loads(raw))
    except (ValueError, ResultError) as exc:
        return f"{head}: FAILED, {exc}"
    if not record["ok"]:
        return f"{head}: FAILED, {record['error']}"
    extra = (f"{fmt(record['lost_percent'], 3)} % lost" if record["protocol"] == "udp"
             else f"{fmt(record['retransmits'], 0)} retr")
    return f"{head}: {record['gbps']:.2f} Gbit/s, {extra}"


def spread(values: list[float]) -> dict[str, float | None]:
    """Median, min, max, sample standard deviation, interquartile range and
    coefficient of variation (stdev / mean, in percent) of repeated measurements."""
    if not values:
        return dict.fromkeys(("median", "min", "max", "stdev", "iqr", "cv_percent"))
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    mean = statistics.fmean(values)
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "stdev": stdev,
        "iqr": quartiles[2] - quartiles[0],
        "cv_percent": (stdev / mean * 100) if mean else None,
    }


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def path_proof(cni: str | None, placement: str, runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What carried a scenario's runs and where their counters contradict the model (proof.check).

    ``counters``: the median growth of each counter over the runs; None when no run has counters
    (the Kubernetes transport).
    """
    checked = [(run["counters"], proof.check(cni or "", placement, run["counters"]))
               for run in runs if run.get("counters") is not None]
    if not checked:
        return None
    keys = sorted({key for counters, _ in checked for key in counters})
    return {
        "runs": len(checked),
        "mechanisms": [m for m in proof.MECHANISMS.values() if any(m in c["mechanisms"] for _, c in checked)],
        "contradictions": list(dict.fromkeys(text for _, c in checked for text in c["contradictions"])),
        "counters": {key: _median([counters.get(key, 0) for counters, _ in checked]) for key in keys},
    }


def summarize(meta: dict[str, Any], records: dict[str, dict[str, Any]],
              noisy_cv_percent: float = NOISY_CV_PERCENT) -> dict[str, Any]:
    """The run summary: one result per scenario, in matrix order.

    ``records`` maps test id to parsed record; tests of the plan without a
    record are missing (the run was interrupted) and make the run incomplete.
    """
    plan = meta.get("plan", [])
    scenarios: dict[str, list[dict]] = {}
    for test in plan:
        scenarios.setdefault(test["scenario"], []).append(test)

    results, failures = [], []
    for name, tests in scenarios.items():
        done = [records[t["id"]] for t in tests if t["id"] in records]
        failures += [{"test": t["id"], "error": records[t["id"]]["error"]}
                     for t in tests if t["id"] in records and not records[t["id"]]["ok"]]
        good = [r for r in done if r["ok"]]
        stats = spread([r["gbps"] for r in good])
        first = tests[0]
        results.append({
            "scenario": name,
            "placement": first["placement"],
            "same_host": any(t.get("same_host") for t in tests),
            "protocol": first["protocol"],
            "streams": first["streams"],
            "repeats": len(good),
            "planned": len(tests),
            "gbps_median": stats["median"],
            "gbps_min": stats["min"],
            "gbps_max": stats["max"],
            "gbps_stdev": stats["stdev"],
            "gbps_iqr": stats["iqr"],
            "cv_percent": stats["cv_percent"],
            "noisy": len(good) > 1 and (stats["cv_percent"] or 0) > noisy_cv_percent,
            "retransmits": _median([r["retransmits"] for r in good]),
            "lost_percent": _median([r["lost_percent"] for r in good]),
            "jitter_ms": _median([r["jitter_ms"] for r in good]),
            "cpu_client_percent": _median([r["cpu_client_percent"] for r in good]),
            "cpu_server_percent": _median([r["cpu_server_percent"] for r in good]),
            "proof": path_proof(meta.get("cni"), first["placement"], good),
        })
    versions = sorted({r["iperf3_version"] for r in records.values() if r.get("iperf3_version")})
    missing = [t["id"] for t in plan if t["id"] not in records]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": meta.get("run_id"),
        "provider": meta.get("provider"),
        "cni": meta.get("cni"),
        "datapath": meta.get("datapath"),
        "started": meta.get("started"),
        "settings": meta.get("settings", {}),
        "environment": meta.get("environment", {}),
        "matrix": meta.get("matrix", []),
        "noisy_cv_percent": noisy_cv_percent,
        "iperf3_versions": versions,
        "complete": not missing,
        "missing_tests": missing,
        "failed_tests": failures,
        "results": results,
    }


def load_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, dict], list[str]]:
    """Read a run directory: (metadata, records by test id, problems).

    A corrupt, foreign or unknown raw file is reported in problems and skipped.
    """
    return read_run(run_dir, "run.json", _record_reader)


def _record_reader(meta: dict[str, Any]) -> Callable[[Path], dict[str, Any]]:
    known = {t["id"] for t in meta.get("plan", [])}

    def record(path: Path) -> dict[str, Any]:
        if path.stem not in known:
            raise ResultError("not a test of this run's plan")
        return parse_iperf3(json.loads(path.read_text()))

    return record


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the human summary table."""
    header = ["test", "placement", "proto", "streams", "runs", "Gbps median", "min", "max",
              "CV %", "retrans", "loss %", "jitter ms", "path"]
    rows = [[
        r["scenario"], placement_label(r), r["protocol"], str(r["streams"]),
        f"{r['repeats']}/{r['planned']}", fmt(r["gbps_median"]), fmt(r["gbps_min"]),
        fmt(r["gbps_max"]), fmt(r["cv_percent"], 1) + (" noisy" if r["noisy"] else ""),
        fmt(r["retransmits"], 0),
        fmt(r["lost_percent"], 3), fmt(r["jitter_ms"], 3), path_label(r),
    ] for r in summary["results"]]
    return header, rows


def path_label(result: dict[str, Any]) -> str:
    """A result's proof in one word: its counters match the model, contradict it, or were not read."""
    checked = result.get("proof")
    if not checked:
        return "-"
    return "CONTRADICTS" if checked["contradictions"] else "as modelled"


def proof_lines(summary: dict[str, Any]) -> list[str]:
    """report.md's table of the mechanisms that carried each test, from its counters."""
    rows = [[r["scenario"], path_label(r), "; ".join(r["proof"]["mechanisms"]) or "none of the model's",
             "; ".join(r["proof"]["contradictions"]) or "-"] for r in summary["results"] if r.get("proof")]
    if not rows:
        return []
    header = ["test", "path", "carried by (counters that grew on the client's node)", "contradictions"]
    return ["## Path of each test", "",
            "Read from the client node's datapath counters before and after each run (BPF programs, "
            "labelled iptables rules, VXLAN device); the medians are in summary.json.", "",
            *markdown_table(header, rows)]


def placement_label(result: dict[str, Any]) -> str:
    """A result's placement as reports show it: marked when its two nodes share one hypervisor."""
    return f"{result['placement']}, same host" if result.get("same_host") else result["placement"]


def same_host_note(scenarios: list[str]) -> list[str]:
    return [f"{SAME_HOST} ({', '.join(scenarios)}): both nodes run on one hypervisor."] if scenarios else []


def render_text(summary: dict[str, Any]) -> str:
    """Aligned plain-text table for the console."""
    lines = [f"run {summary['run_id']}: cni={summary['cni']} provider={summary['provider']}"]
    if summary.get("datapath"):
        lines.append(f"datapath: {summary['datapath']}")
    return "\n".join(lines + text_table(*table_rows(summary)) + _notes(summary))


def render_markdown(summary: dict[str, Any], chart: str | None = None) -> str:
    """report.md for one run."""
    lines = [f"# iperf3 benchmark run {summary['run_id']}", ""]
    lines += [f"- CNI: **{summary['cni']}**", f"- Provider: {summary['provider']}"]
    if summary.get("datapath"):
        lines.append(f"- Datapath: {summary['datapath']}")
    settings = summary.get("settings", {})
    lines.append(
        f"- Settings: {settings.get('duration')} s per test, {settings.get('omit')} s omitted, "
        f"{settings.get('repeats')} repeat(s); iperf3 {', '.join(summary['iperf3_versions']) or '-'}"
    )
    tail = markdown_tail(*table_rows(summary), chart, "Throughput per test, median with min-max range",
                         _notes(summary))
    path = proof_lines(summary)
    return "\n".join(lines) + "\n" + tail + ("\n" + "\n".join(path) + "\n" if path else "")


def _notes(summary: dict[str, Any]) -> list[str]:
    notes = []
    if summary.get("provider") == "local":
        notes.append(LOCAL_LAB_NOTE)
    notes += same_host_note([r["scenario"] for r in summary["results"] if r.get("same_host")])
    noisy = [r["scenario"] for r in summary["results"] if r["noisy"]]
    if noisy:
        notes.append(f"NOISY (CV > {summary['noisy_cv_percent']:g} %): {', '.join(noisy)}; "
                     "their medians are less certain than the others.")
    for result in summary["results"]:
        if (result.get("proof") or {}).get("contradictions"):
            notes.append(f"CONTRADICTS THE MODEL {result['scenario']}: {'; '.join(result['proof']['contradictions'])}")
    if not summary["complete"]:
        notes.append(f"INCOMPLETE: {len(summary['missing_tests'])} planned test(s) have no result.")
    for failure in summary["failed_tests"]:
        notes.append(f"FAILED {failure['test']}: {failure['error']}")
    return notes


def render_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=("run_id", "cni", "provider", *SUMMARY_FIELDS, "path", "mechanisms"),
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in summary["results"]:
        writer.writerow({"run_id": summary["run_id"], "cni": summary["cni"], "provider": summary["provider"],
                         **result, "path": path_label(result),
                         "mechanisms": "; ".join((result.get("proof") or {}).get("mechanisms", []))})
    return out.getvalue()


def write_reports(run_dir: str | os.PathLike, noisy_cv_percent: float = NOISY_CV_PERCENT,
                  charts: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Rebuild summary.json, summary.csv, report.md and the charts of a run from its raw files."""
    run = Path(run_dir)
    meta, records, problems = load_run(run)
    summary = summarize(meta, records, noisy_cv_percent)
    summary["problems"] = problems
    atomic_write(run / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    atomic_write(run / "summary.csv", render_csv(summary))
    if charts:
        from . import charts as charts_module  # matplotlib is imported only when charts are drawn

        charts_module.run_chart(summary, run / "throughput")
    atomic_write(run / "report.md", render_markdown(summary, chart="throughput.png" if charts else None))
    return summary, problems
