"""Turn raw iperf3 JSON and netperf output into records, summaries and reports.

A run directory holds ``run.json`` (metadata and the plan, written before the
first test) and ``raw/<test id>.json`` (iperf3 ``--json`` output, or netperf's
KEY=value lines in a small document, one file per test, written as each test
ends, with the datapath counters and both ends' /proc/stat readings). Every report
is rebuilt from those files alone (read and written with report_files.py). Pure
functions; no Ansible imports.
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

from ansible_collections.netlab.lab.plugins.plugin_utils.plan.matrix import NETPERF_TESTS, SAME_HOST, tool
from ansible_collections.netlab.lab.plugins.plugin_utils.report import stats
from ansible_collections.netlab.lab.plugins.plugin_utils.report.files import (
    ResultError,
    atomic_write,
    fmt,
    markdown_table,
    read_run,
    text_table,
)
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, proof

SCHEMA_VERSION = 1
# A test whose repeats vary more than this (coefficient of variation) is flagged noisy.
NOISY_CV_PERCENT = 10.0
SUMMARY_FIELDS = (
    "scenario", "placement", "same_host", "protocol", "streams", "repeats", "gbps_median", "gbps_min",
    "gbps_max", "gbps_stdev", "gbps_iqr", "cv_percent", "noisy", "retransmits", "lost_percent",
    "jitter_ms", "cpu_client_percent", "cpu_server_percent",
    # The median's confidence interval of the headline figure, Gbit/s or trans/s (stats.median_ci); the
    # figures of each repeat (``values``) stay in summary.json only.
    "ci_low", "ci_high", "ci_confidence",
    # netperf request/response tests (latency in microseconds, medians over the repeats).
    "tool", "size", "trans_per_s_median", "trans_per_s_min", "trans_per_s_max", "conn_per_s_median",
    "p50_us", "p50_us_min", "p50_us_max", "p90_us", "p99_us", "p99_us_min", "p99_us_max", "mean_us",
    # Node CPU during the test (/proc/stat, both ends), and the pod path against the host test.
    "cpu_ends", "cpu_busy_s", "cpu_user_s", "cpu_system_s", "cpu_softirq_s", "cpu_client_s", "cpu_server_s",
    "cpu_per_gbit", "cpu_per_1k_trans", "host_scenario", "host_ratio", "host_ratio_p50",
    # The figure was bounded by the sending iperf3's CPU (cpu_limited()).
    "cpu_limited",
)
# netperf's selectors (matrix.NETPERF_SELECTORS) -> record keys; latency in microseconds.
NETPERF_VALUES = {"TRANSACTION_RATE": "trans_per_s", "P50_LATENCY": "p50_us", "P90_LATENCY": "p90_us",
                  "P99_LATENCY": "p99_us", "MEAN_LATENCY": "mean_us", "MIN_LATENCY": "min_us",
                  "MAX_LATENCY": "max_us", "STDDEV_LATENCY": "stddev_us", "ELAPSED_TIME": "elapsed_s",
                  "REQUEST_SIZE": "request_size", "RESPONSE_SIZE": "response_size"}
# The sending iperf3's CPU, in percent of one core per stream thread that can run at once (median over the
# repeats), from which a throughput figure is flagged as bounded by the sender's CPU. A pegged sender reads
# below 100: iperf3 divides its CPU time by the test's whole wall time, set-up and the last interval
# included (tests/data/iperf3-tcp-1.json, one stream at 26 Gbit/s on loopback: 99 %; the local lab's
# single-stream pod tests: 82-93 %, its 4-stream tests on 2 vCPUs: 58-86 % in all, under 45 per core).
# 90 leaves that slack without calling a sender that waited on the path a busy one.
CPU_LIMITED_PERCENT = 90.0
# iperf3 paces UDP by polling, so a UDP sender's CPU is high at any rate (the lab's 1 Gbit/s tests: 94-100 %,
# with the rate reached): a UDP figure is CPU-bound only when its sender also sent less than this share of
# the offered rate (canal's model sent 0.50 of 1 Gbit/s at 99.9 %; cilium's 1.00 at 95 %).
UDP_OFFER_REACHED = 0.95
# What each end's CPU is said as, per test.
CPU_ENDS = {True: "one kernel", False: "two kernels", None: "client only"}
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
        # UDP: what the sender sent against what it was asked to (--bitrate is per stream; 0: unlimited).
        "sent_gbps": sent["bits_per_second"] / 1e9 if "bits_per_second" in sent else None,
        "offered_gbps": (test.get("target_bitrate") or 0) * (test.get("num_streams") or 1) / 1e9 or None,
        "retransmits": sent.get("retransmits") if protocol == "tcp" else None,
        "lost_percent": received.get("lost_percent") if protocol == "udp" else None,
        "jitter_ms": received.get("jitter_ms") if protocol == "udp" else None,
        # With --reverse the local iperf3 is the receiver; these stay client/server.
        "cpu_client_percent": cpu.get("host_total"),
        "cpu_server_percent": cpu.get("remote_total"),
        # How much each datapath counter of the client's node grew during the test (local transport).
        "counters": proof.delta(doc.get("netlab_counters")),
    }
    # The CPU window spans iperf3's omitted seconds too: the work is the rate over both.
    active = float(test.get("duration") or 0) + float(test.get("omit") or 0)
    return {"tool": "iperf3", **record, **_cpu_fields(doc, record["gbps"] * active)}


def parse_netperf(doc: dict[str, Any]) -> dict[str, Any]:
    """One netperf raw document (its ``-k`` KEY=value lines under ``output``) as a flat record.

    Latency is netperf's own, per transaction, in microseconds; TRANSACTION_RATE is per second
    (for TCP_CRR a transaction is a whole connection: connect, request, response, close).
    """
    if doc.get("error"):
        return {"ok": False, "error": str(doc["error"])}
    values = dict(line.strip().split("=", 1) for line in str(doc.get("output") or "").splitlines() if "=" in line)
    missing = [key for key in NETPERF_VALUES if key not in values]
    if missing:
        return {"ok": False, "error": f"netperf printed no {', '.join(missing)}"}
    try:
        record: dict[str, Any] = {key: float(values[selector]) for selector, key in NETPERF_VALUES.items()}
    except ValueError as exc:
        return {"ok": False, "error": f"netperf printed a value that is not a number: {exc}"}
    record.update({"ok": True, "error": None, "tool": "netperf", "protocol": values.get("PROTOCOL", "").lower(),
                   "counters": proof.delta(doc.get("netlab_counters"))})
    return {**record, **_cpu_fields(doc, record["trans_per_s"] * record["elapsed_s"] / 1000)}


def _cpu_fields(doc: dict[str, Any], work: float) -> dict[str, Any]:
    """A test's node CPU (cpu.usage) and its CPU-seconds per unit of work: per Gbit transferred
    (iperf3: ``work`` in Gbit), per 1,000 transactions (netperf: ``work`` in thousands)."""
    used = cpu.usage(doc.get("netlab_cpu"))
    if used is None:
        return {"cpu": None, "cpu_per_unit": None}
    return {"cpu": used, "cpu_per_unit": used["total"]["busy_s"] / work if work > 0 else None}


def parse_raw(doc: Any) -> dict[str, Any]:
    """A raw file's document as a record, whichever program wrote it."""
    if isinstance(doc, dict) and doc.get("tool") == "netperf":
        return parse_netperf(doc)
    return parse_iperf3(doc)


def test_line(test: dict[str, Any], raw: str) -> str:
    """The console's line for one finished test: ``3/21 cross-node-tcp-4 r1: 25.70 Gbit/s, 744 retr``."""
    head = f"{test['index']}/{test['total']} {test['scenario']} r{test['repeat']}"
    try:
        record = parse_raw(json.loads(raw))
    except (ValueError, ResultError) as exc:
        return f"{head}: FAILED, {exc}"
    if not record["ok"]:
        return f"{head}: FAILED, {record['error']}"
    if record["tool"] == "netperf":
        unit = "conn/s" if test.get("protocol") == "tcp_crr" else "trans/s"
        return (f"{head}: {test.get('protocol', 'rr')} p50 {record['p50_us']:.0f} us, p99 {record['p99_us']:.0f} us, "
                f"{_thousands(record['trans_per_s'])} {unit}")
    extra = (f"{fmt(record['lost_percent'], 3)} % lost" if record["protocol"] == "udp"
             else f"{fmt(record['retransmits'], 0)} retr")
    return f"{head}: {record['gbps']:.2f} Gbit/s, {extra}"


def _thousands(value: float) -> str:
    """A rate as the console says it: 25.1k, 980."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


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


def path_proof(cni: str | None, placement: str, runs: list[dict[str, Any]],
               settings: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """What carried a scenario's runs and where their counters contradict the model (proof.check).

    ``counters``: the median growth of each counter over the runs; None when no run has counters
    (the Kubernetes transport).
    """
    checked = [(run["counters"], proof.check(cni or "", placement, run["counters"], settings))
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


def _headline(program: str, figures: dict[str, float | None]) -> dict[str, Any]:
    """The test's figure over its repeats: Gbit/s (iperf3) or transactions per second (netperf)."""
    figure = "gbps" if program == "iperf3" else "trans_per_s"
    other = "trans_per_s" if program == "iperf3" else "gbps"
    out: dict[str, Any] = {f"{figure}_{key}": figures[key] for key in ("median", "min", "max")}
    out.update({f"{other}_{key}": None for key in ("median", "min", "max")})
    out.update({"gbps_stdev": figures["stdev"] if program == "iperf3" else None,
                "gbps_iqr": figures["iqr"] if program == "iperf3" else None,
                "unit": "Gbit/s" if program == "iperf3" else "trans/s"})
    return out


def headline(result: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(median, min, max) of a result's figure, Gbit/s or transactions per second."""
    figure = "trans_per_s" if result.get("tool") == "netperf" else "gbps"
    return result.get(f"{figure}_median"), result.get(f"{figure}_min"), result.get(f"{figure}_max")


def _latency(protocol: str, good: list[dict[str, Any]]) -> dict[str, Any]:
    """netperf's latency over the repeats: the median of each percentile, min-max of p50 and p99 (all None
    for an iperf3 test: ``good`` is empty)."""
    out: dict[str, Any] = {key: _median([r[key] for r in good]) for key in ("p50_us", "p90_us", "p99_us", "mean_us")}
    for key in ("p50_us", "p99_us"):
        values = [r[key] for r in good]
        out[f"{key}_min"], out[f"{key}_max"] = (min(values), max(values)) if values else (None, None)
    out["conn_per_s_median"] = _median([r["trans_per_s"] for r in good]) if protocol == "tcp_crr" else None
    return out


def _cpu_summary(placement: str, program: str, good: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the node CPU over the repeats, and per unit of work: CPU-seconds per Gbit transferred
    (iperf3) or per 1,000 transactions (netperf). ``cpu_ends`` says how the ends were counted."""
    used = [r for r in good if r.get("cpu")]
    shared = {True if placement == "same-node" else r["cpu"]["shared_kernel"] for r in used}
    per_unit = _median([r["cpu_per_unit"] for r in used])
    return {
        "cpu_ends": CPU_ENDS[shared.pop()] if len(shared) == 1 else ("mixed" if shared else None),
        **{f"cpu_{key}": _median([r["cpu"]["total"][key] for r in used])
           for key in ("busy_s", "user_s", "system_s", "softirq_s")},
        "cpu_client_s": _median([r["cpu"]["client"]["busy_s"] for r in used]),
        "cpu_server_s": _median([r["cpu"]["server"]["busy_s"] for r in used if r["cpu"]["server"]]),
        "cpu_per_gbit": per_unit if program == "iperf3" else None,
        "cpu_per_1k_trans": per_unit if program == "netperf" else None,
    }


def _sender_percent(record: dict[str, Any], vcpus: int | None) -> float | None:
    """The sending iperf3's CPU per stream thread that can run at once (CPU_LIMITED_PERCENT). The sender is
    the client, or with --reverse the server (iperf3's remote_total, kept as cpu_server_percent)."""
    total = record.get("cpu_server_percent" if record.get("reverse") else "cpu_client_percent")
    streams = record.get("streams") or 1
    return None if total is None else total / min(streams, vcpus or streams)


def cpu_limited(protocol: str, good: list[dict[str, Any]], vcpus: int | None) -> bool | None:
    """Whether an iperf3 test's figure was bounded by its sender's CPU rather than by the path: the sender's
    median CPU (_sender_percent) at CPU_LIMITED_PERCENT or more, and for UDP a sender that also fell short
    of the offered rate (UDP_OFFER_REACHED). None when iperf3 reported no CPU. ``vcpus``: the fewest of
    the nodes', None if unknown."""
    busy = _median([_sender_percent(r, vcpus) for r in good])
    if busy is None:
        return None
    if protocol == "udp":
        reached = _median([r["sent_gbps"] / r["offered_gbps"] for r in good
                           if r.get("sent_gbps") is not None and r.get("offered_gbps")])
        if reached is not None and reached >= UDP_OFFER_REACHED:
            return False
    return busy >= CPU_LIMITED_PERCENT


def _fewest_vcpus(environment: dict[str, Any]) -> int | None:
    """The fewest vCPUs of the run's nodes (run.json environment.nodes), None if none is a number."""
    counts = [n["vcpus"] for n in environment.get("nodes") or [] if isinstance(n.get("vcpus"), int)]
    return min(counts) if counts else None


def _host_test(result: dict[str, Any], hosts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The host test a pod test is held against: the same protocol, streams and size, else the same protocol."""
    same = [h for h in hosts if h["protocol"] == result["protocol"]]
    exact = [h for h in same if (h["streams"], h.get("size")) == (result["streams"], result.get("size"))]
    return (exact or same or [None])[0]


def _against_host(results: list[dict[str, Any]]) -> None:
    """Each pod test against the host test of its kind in the same run (pod / host): its figure
    (Gbit/s or transactions per second, below 1 is slower than the wire) and for netperf its p50
    latency (above 1 is slower). One run's machine state cancels out of the ratio."""
    hosts = [r for r in results if r["placement"] == "host"]
    for result in results:
        host = _host_test(result, hosts) if result["placement"] != "host" else None
        pod_figure, host_figure = headline(result)[0], headline(host)[0] if host else None
        result["host_scenario"] = host["scenario"] if host else None
        result["host_ratio"] = pod_figure / host_figure if pod_figure is not None and host_figure else None
        result["host_ratio_p50"] = (result["p50_us"] / host["p50_us"]
                                    if host and result.get("p50_us") is not None and host.get("p50_us") else None)


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
    vcpus = _fewest_vcpus(meta.get("environment") or {})
    for name, tests in scenarios.items():
        done = [records[t["id"]] for t in tests if t["id"] in records]
        failures += [{"test": t["id"], "error": records[t["id"]]["error"]}
                     for t in tests if t["id"] in records and not records[t["id"]]["ok"]]
        good = [r for r in done if r["ok"]]
        first = tests[0]
        program = first.get("tool") or tool(first["protocol"])
        values = [r["gbps"] if program == "iperf3" else r["trans_per_s"] for r in good]
        figures = spread(values)
        interval = stats.median_ci(values)
        results.append({
            "scenario": name,
            "placement": first["placement"],
            "same_host": any(t.get("same_host") for t in tests),
            "protocol": first["protocol"],
            "streams": first["streams"],
            "repeats": len(good),
            "planned": len(tests),
            **_headline(program, figures),
            "values": values,
            "ci_low": interval["low"],
            "ci_high": interval["high"],
            "ci_confidence": interval["confidence"],
            "cv_percent": figures["cv_percent"],
            "noisy": len(good) > 1 and (figures["cv_percent"] or 0) > noisy_cv_percent,
            "retransmits": _median([r.get("retransmits") for r in good]),
            "lost_percent": _median([r.get("lost_percent") for r in good]),
            "jitter_ms": _median([r.get("jitter_ms") for r in good]),
            "cpu_client_percent": _median([r.get("cpu_client_percent") for r in good]),
            "cpu_server_percent": _median([r.get("cpu_server_percent") for r in good]),
            "cpu_limited": cpu_limited(first["protocol"], good, vcpus) if program == "iperf3" else None,
            "tool": program,
            "size": first.get("size"),
            **_latency(first["protocol"], good if program == "netperf" else []),
            **_cpu_summary(first["placement"], program, good),
            "proof": path_proof(meta.get("cni"), first["placement"], good, meta.get("profile_settings")),
        })
    _against_host(results)
    versions = sorted({r["iperf3_version"] for r in records.values() if r.get("iperf3_version")})
    missing = [t["id"] for t in plan if t["id"] not in records]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": meta.get("run_id"),
        "provider": meta.get("provider"),
        "cni": meta.get("cni"),
        "datapath": meta.get("datapath"),
        "profile": meta.get("profile"),
        "profile_settings": meta.get("profile_settings"),
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
        return parse_raw(json.loads(path.read_text()))

    return record


def _of(summary: dict[str, Any], program: str) -> list[dict[str, Any]]:
    return [r for r in summary["results"] if (r.get("tool") or "iperf3") == program]


def ratio(value: float | None) -> str:
    """A pod/host ratio as the tables show it: 0.52x."""
    return "-" if value is None else f"{value:.2f}x"


def ci_label(result: dict[str, Any], digits: int = 2) -> str:
    """The median's confidence interval as the tables show it: ``12.10-13.40``, with its confidence
    when that is below 95 % (too few repeats for 95 %): ``12.10-13.40 (75%)``."""
    if result.get("ci_low") is None:
        return "-"
    label = f"{fmt(result['ci_low'], digits)}-{fmt(result['ci_high'], digits)}"
    confidence = result["ci_confidence"]
    return label if confidence >= stats.CONFIDENCE else f"{label} ({confidence * 100:g}%)"


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the throughput table (iperf3 tests)."""
    header = ["test", "placement", "proto", "streams", "runs", "Gbps median", "min", "max", "95% CI",
              "CV %", "retrans", "loss %", "jitter ms", "CPU s/Gbit", "vs host", "path"]
    rows = [[
        r["scenario"], placement_label(r), r["protocol"], str(r["streams"]),
        f"{r['repeats']}/{r['planned']}", fmt(r["gbps_median"]) + (" CPU-bound" if r.get("cpu_limited") else ""),
        fmt(r["gbps_min"]), fmt(r["gbps_max"]), ci_label(r), fmt(r["cv_percent"], 1) + (" noisy" if r["noisy"] else ""),
        fmt(r["retransmits"], 0),
        fmt(r["lost_percent"], 3), fmt(r["jitter_ms"], 3), fmt(r.get("cpu_per_gbit"), 3),
        ratio(r.get("host_ratio")), path_label(r),
    ] for r in _of(summary, "iperf3")]
    return header, rows


def latency_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the latency table (netperf request/response tests), latency in microseconds."""
    header = ["test", "placement", "netperf", "size", "runs", "p50 us", "p90 us", "p99 us", "mean us",
              "trans/s median", "min", "max", "95% CI", "CV %", "CPU s/1k trans", "p50 vs host", "rate vs host", "path"]
    rows = [[
        r["scenario"], placement_label(r), NETPERF_TESTS.get(r["protocol"], r["protocol"]), str(r.get("size")),
        f"{r['repeats']}/{r['planned']}", fmt(r.get("p50_us"), 0), fmt(r.get("p90_us"), 0), fmt(r.get("p99_us"), 0),
        fmt(r.get("mean_us"), 1), fmt(r["trans_per_s_median"], 0), fmt(r["trans_per_s_min"], 0),
        fmt(r["trans_per_s_max"], 0), ci_label(r, 0), fmt(r["cv_percent"], 1) + (" noisy" if r["noisy"] else ""),
        fmt(r.get("cpu_per_1k_trans"), 3), ratio(r.get("host_ratio_p50")), ratio(r.get("host_ratio")), path_label(r),
    ] for r in _of(summary, "netperf")]
    return header, rows


def cpu_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the node CPU table: CPU-seconds during each test (medians), by mode and end."""
    header = ["test", "ends", "busy s", "user s", "system s", "softirq s", "client node s", "server node s",
              "per work"]
    rows = []
    for r in summary["results"]:
        if r.get("cpu_ends") is None:
            continue
        per = (f"{fmt(r['cpu_per_gbit'], 3)} s/Gbit" if r.get("cpu_per_gbit") is not None else
               f"{fmt(r.get('cpu_per_1k_trans'), 3)} s/1k trans")
        rows.append([r["scenario"], r["cpu_ends"], fmt(r["cpu_busy_s"]), fmt(r["cpu_user_s"]), fmt(r["cpu_system_s"]),
                     fmt(r["cpu_softirq_s"]), fmt(r["cpu_client_s"]), fmt(r["cpu_server_s"]), per])
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


def run_label(summary: dict[str, Any]) -> str:
    """A run as tables name it: "cilium/native-bpf", the CNI alone for a run without profile, else its id."""
    if summary.get("cni") and summary.get("profile"):
        return f"{summary['cni']}/{summary['profile']}"
    return str(summary.get("cni") or summary["run_id"])


def _per_node(values: dict[str, Any] | list[tuple[str, Any]]) -> str | None:
    """One value of the nodes, or each node's when they differ; None when no node has one."""
    pairs = [(node, value) for node, value in (values.items() if isinstance(values, dict) else values)
             if value not in (None, "")]
    distinct = list(dict.fromkeys(str(value) for _, value in pairs))
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    return ", ".join(f"{value} ({node})" for node, value in pairs)


def context(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """What a run's figures depend on, from run.json (``environment``, read by both transports: the local one
    records per node what the datapath fact says, the Kubernetes one under ``kubernetes``), in report
    order; "-" where the run did not record it (older runs)."""
    env = summary.get("environment") or {}
    cluster = env.get("kubernetes") or {}
    datapath = cluster.get("datapath") or {}
    nodes = env.get("nodes") or []

    def hardware(key: str) -> str | None:
        return _per_node([(n.get("name"), n.get(key)) for n in nodes])

    states = {**(env.get("cni_state") or {}), **(datapath.get("nodes") or {})}
    cilium = _per_node({node: (state or {}).get("version") for node, state in states.items()})
    # What the raw files say ran, else what the nodes (or the client pod) had when the run began.
    iperf3 = (", ".join(v.removeprefix("iperf ") for v in summary.get("iperf3_versions") or [])
              or _per_node(env.get("iperf3") or {}) or cluster.get("iperf3"))
    versions = [("iperf3", iperf3), ("netperf", _per_node(env.get("netperf") or {}) or cluster.get("netperf")),
                ("RKE2", cluster.get("rke2")),
                ("Kubernetes", None if cluster.get("rke2") else cluster.get("kubernetes")), ("Cilium", cilium)]
    pod_mtu = _per_node(env.get("pod_mtu") or {}) or datapath.get("pod_mtu")
    mtus = [("pod", pod_mtu), ("link", _per_node(env.get("link_mtu") or {}))]
    memory = _per_node([(n.get("name"), f"{n['memtotal_mb'] / 1024:.1f} GiB" if n.get("memtotal_mb") else None)
                        for n in nodes])
    settings = summary.get("settings") or {}
    told = [f"{settings.get('duration')} s per test", f"{settings.get('omit')} s omitted (iperf3)",
            f"{settings.get('repeats')} repeat(s)"]
    if settings.get("udp_bitrate"):
        told.append(f"UDP offered {settings['udp_bitrate']}bit/s per stream")
    told += [f"{key}={value}" for key, value in sorted((summary.get("profile_settings") or {}).items())]
    items = [("Date", summary.get("started")), ("Provider", summary.get("provider")), ("CNI", run_label(summary)),
             ("Datapath", summary.get("datapath")), ("Kernel", hardware("kernel")),
             ("CPU model", hardware("cpu_model")), ("vCPUs", hardware("vcpus")), ("Memory", memory),
             ("Versions", ", ".join(f"{name} {v}" for name, v in versions if v)),
             ("MTU", ", ".join(f"{name} {v}" for name, v in mtus if v)), ("Settings", ", ".join(told))]
    return [(label, str(value) if value not in (None, "") else "-") for label, value in items]


def context_digest(summary: dict[str, Any]) -> str:
    """The console's one line of the context: what is known of it, labelled where a bare value is unclear."""
    found = dict(context(summary))
    parts = [found["Date"], found["Provider"], found["CNI"], f"kernel {found['Kernel']}", found["CPU model"],
             f"{found['vCPUs']} vCPUs", found["Memory"], found["Versions"], f"MTU {found['MTU']}"]
    return "context: " + "; ".join(p for p in parts if p not in ("-", "kernel -", "- vCPUs", "MTU -"))


def render_text(summary: dict[str, Any]) -> str:
    """Aligned plain-text tables for the console: throughput, then latency."""
    lines = [f"run {summary['run_id']}: cni={summary['cni']} provider={summary['provider']}", context_digest(summary)]
    if summary.get("datapath"):
        lines.append(f"datapath: {summary['datapath']}")
    for rows in (table_rows(summary), latency_rows(summary)):
        if rows[1]:
            lines += text_table(*rows)
    return "\n".join(lines + _notes(summary))


def sections(summary: dict[str, Any], charts: bool) -> list[tuple[str, tuple[list[str], list[list[str]]], str | None]]:
    """report.md's tables with their charts, those that have rows."""
    found = [("Throughput", table_rows(summary), "throughput.png"),
             ("Latency and transaction rate (netperf)", latency_rows(summary), "latency.png"),
             ("Node CPU during each test", cpu_rows(summary), None)]
    return [(title, rows, chart if charts else None) for title, rows, chart in found if rows[1]]


def render_markdown(summary: dict[str, Any], charts: bool = False) -> str:
    """report.md for one run; ``charts``: the charts were drawn beside it."""
    lines = [f"# Benchmark run {summary['run_id']}", "", *context_lines(summary)]
    alt = {"throughput.png": "Throughput per test, median with min-max range",
           "latency.png": "netperf latency per test: p50 bar, p99 whisker"}
    for title, rows, image in sections(summary, charts):
        lines += ["", f"## {title}", "", *markdown_table(*rows)]
        if image:
            lines += ["", f"![{alt[image]}]({image})"]
    if any(r.get("ci_low") is not None for r in summary["results"]):
        lines += ["", *CI_NOTE]
    lines += ["", *CPU_NOTE, ""] if cpu_rows(summary)[1] else [""]
    lines += [f"> {note}" for note in _notes(summary)]
    path = proof_lines(summary)
    return "\n".join(lines).rstrip() + "\n" + ("\n" + "\n".join(path) + "\n" if path else "")


CI_NOTE = [
    "95% CI: where the true median of a test lies, from the order statistics of its repeats (a sign-test "
    "interval, whatever the distribution of the figures): the narrowest pair of repeats that holds the median "
    "with at least 95 % confidence. Below 6 repeats no pair reaches 95 %, so the lowest to the highest repeat "
    "is shown with the confidence it really has, in brackets (75 % at 3 repeats, 87.5 % at 4, 93.75 % at 5).",
]


def context_lines(summary: dict[str, Any]) -> list[str]:
    """report.md's Context section: what the run's figures depend on (context())."""
    return ["## Context", "", *[f"- {label}: {f'**{value}**' if label == 'CNI' else value}"
                                for label, value in context(summary)]]


CPU_NOTE = [
    "CPU: /proc/stat of the client's and the server's node, read right before and after each test "
    "(user includes nice; busy is every mode but idle and iowait); per work is busy CPU-seconds per Gbit "
    "transferred or per 1,000 transactions, the work taken as the test's rate over its active seconds. "
    "\"one kernel\": both ends read the same kernel (the local lab's nodes are containers of one machine, "
    "or a same-node test), counted once; \"vs host\" is the pod test against the host test of its kind "
    "in this run.",
]


def _notes(summary: dict[str, Any]) -> list[str]:
    notes = []
    if summary.get("provider") == "local":
        notes.append(LOCAL_LAB_NOTE)
    notes += same_host_note([r["scenario"] for r in summary["results"] if r.get("same_host")])
    noisy = [r["scenario"] for r in summary["results"] if r["noisy"]]
    if noisy:
        notes.append(f"NOISY (CV > {summary['noisy_cv_percent']:g} %): {', '.join(noisy)}; "
                     "their medians are less certain than the others.")
    bound = [r["scenario"] for r in summary["results"] if r.get("cpu_limited")]
    if bound:
        notes.append(f"CPU-BOUND: {', '.join(bound)}: the sending iperf3 used {CPU_LIMITED_PERCENT:g} % or more of "
                     "a core per stream, so the figure is limited by the sender's CPU (whose system time includes "
                     "the sending side of the datapath) rather than by what the datapath could carry.")
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


def read_summary(run_dir: str | os.PathLike,
                 noisy_cv_percent: float = NOISY_CV_PERCENT) -> tuple[dict[str, Any], list[str]]:
    """A run's summary rebuilt from its run.json and raw files, and the problems of those files;
    what every report, comparison, gate and history entry starts from."""
    meta, records, problems = load_run(run_dir)
    return summarize(meta, records, noisy_cv_percent), problems


def write_reports(run_dir: str | os.PathLike, noisy_cv_percent: float = NOISY_CV_PERCENT,
                  charts: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Rebuild summary.json, summary.csv, report.md and the charts of a run from its raw files."""
    run = Path(run_dir)
    summary, problems = read_summary(run, noisy_cv_percent)
    summary["problems"] = problems
    atomic_write(run / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    atomic_write(run / "summary.csv", render_csv(summary))
    if charts:
        from . import charts as charts_module  # matplotlib is imported only when charts are drawn

        if _of(summary, "iperf3"):
            charts_module.run_chart(summary, run / "throughput")
        if _of(summary, "netperf"):
            charts_module.latency_chart(summary, run / "latency")
    atomic_write(run / "report.md", render_markdown(summary, charts=charts))
    return summary, problems
