"""Reports of Service scale runs: one run's table, and the newest run of each CNI and lookup structure against N.

A run directory holds scale.json (the metadata the role writes first) and raw/<N>.json,
one record per number of Services, written as soon as it was measured (read and written with
files.py, as the iperf3 reports are). Pure functions plus the writers; no Ansible imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files

MODEL_NOTE = ("Local lab: a model of the lookup structures (an iptables DNAT chain walked in order, "
              "as kube-proxy's iptables mode; an nftables verdict map looked up once, as its nftables mode; a BPF "
              "hash map looked up by a cgroup connect() hook, as Cilium's kube-proxy replacement) on one machine's "
              "kernel, not kube-proxy or Cilium themselves.")
HEADER = ["cni", "model", "Services", "p50 us", "p90 us", "p99 us", "add Service ms", "answers after ms"]


def load_scale_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Metadata, records sorted by number of Services, and problems with unreadable records."""
    meta, by_name, problems = files.read_run(run_dir, "scale.json", _record_reader, raw="[0-9]*.json")
    records = sorted(by_name.values(), key=lambda r: r["services"])
    missing = sorted(set(meta.get("counts", [])) - {r["services"] for r in records})
    if missing:
        problems.append(f"INCOMPLETE: no record for {', '.join(map(str, missing))} Services")
    return meta, records, problems


def _record_reader(_meta: dict[str, Any]) -> Callable[[Path], dict[str, Any]]:
    return _record


def _record(path: Path) -> dict[str, Any]:
    record = json.loads(path.read_text())
    try:
        int(record["services"])
    except (KeyError, TypeError) as exc:
        raise files.ResultError(exc) from exc
    return record


def rows(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[list[str]]:
    return [[meta["cni"], meta["model"], str(r["services"]), files.fmt(r["latency_us"]["p50"], 1),
             files.fmt(r["latency_us"]["p90"], 1), files.fmt(r["latency_us"]["p99"], 1), files.fmt(r["update_ms"]),
             files.fmt(r["reachable_ms"])] for meta, records in runs for r in records]


def render_text(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> str:
    titles = [f"run {meta['run_id']}: cni={meta['cni']} model={meta['model']}, "
              f"{meta['connections']} new connections per count" for meta, _ in runs]
    return "\n".join(titles + files.text_table(HEADER, rows(runs)) + [MODEL_NOTE])


def render_markdown(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], chart: str | None) -> str:
    lines = ["# Service scale: new-connection latency and Service update time against the number of Services", ""]
    lines += [f"- **{meta['cni']}** ({meta['model']}): run {meta['run_id']}, {meta['connections']} new "
              f"connections per count from pod {meta['client']['pod']['name']} on {meta['client']['node']} "
              f"through the last Service to pod {meta['backend']['pod']['name']} on {meta['backend']['node']}; "
              f"kernel {meta['environment']['kernel']}" for meta, _ in runs]
    lines += ["- Latency: connect, 1-byte request and answer, close (TCP_CRR); with 0 Services the backend is "
              "reached directly. *add Service*: iptables-restore of the whole Services chain (kube-proxy's "
              "sync), one chain and one verdict map element in one nft transaction (its nftables mode's), or one "
              "backend slot and one Service written to the BPF maps with bpf(2); *answers after*: "
              "from the start of that update until a client trying the new Service in a loop gets an answer."]
    return "\n".join(lines) + "\n" + files.markdown_tail(
        HEADER, rows(runs), chart, "Latency and update time against the number of Services", [MODEL_NOTE])


def render_csv(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "cni", "model", "services", "p50_us", "p90_us", "p99_us", "mean_us",
                     "update_ms", "reachable_ms"])
    for meta, records in runs:
        for r in records:
            lat = r["latency_us"]
            writer.writerow([meta["run_id"], meta["cni"], meta["model"], r["services"], lat["p50"], lat["p90"],
                             lat["p99"], lat["mean"], r["update_ms"], r["reachable_ms"]])
    return out.getvalue()


def newest_per_cni(results_dir: str | os.PathLike) -> list[Path]:
    """The newest Service scale run of each CNI and lookup structure (model), Canal first."""
    newest = {(meta["cni"], meta.get("model") or ""): path for path, meta in files.list_runs(results_dir, "scale.json")
              if meta.get("cni")}
    return [newest[key] for key in sorted(newest)]


def write(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], out_dir: Path, charts: bool) -> str:
    """scale.md, scale.csv and the chart of these runs into out_dir; returns the text table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files.atomic_write(out_dir / "scale.csv", render_csv(runs))
    if charts:
        # matplotlib is imported only when charts are drawn.
        from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts as charts_module

        charts_module.scale_chart(runs, out_dir / "scale")
    files.atomic_write(out_dir / "scale.md", render_markdown(runs, "scale.png" if charts else None))
    return render_text(runs)


def write_reports(run_dir: str | os.PathLike, charts: bool = True) -> tuple[str, list[str], Path | None]:
    """The run's own report, and when the lab has runs of two or more CNIs or structures, all against N in
    comparisons/.

    Returns the text table (of all of them when there are two or more), the run's problems and the comparison
    directory.
    """
    run = Path(run_dir)
    meta, records, run_problems = load_scale_run(run)
    problems = [f"{run.name}: {p}" for p in run_problems]
    text = write([(meta, records)], run, charts)
    both = newest_per_cni(run.parent)
    if len(both) < 2:
        return text, problems, None
    runs = [(meta, records) if path.resolve() == run.resolve() else load_scale_run(path)[:2] for path in both]
    out = run.parent / "comparisons" / "service-scale"
    return write(runs, out, charts), problems, out
