"""A run's summary: its raw files read against its plan, one result per test with the statistics of its
repeats, its CPU, its path and its pod/host ratio; what summary.json holds and every report, comparison,
gate and history entry starts from.

A run directory holds ``run.json`` (metadata and the plan, written before the first test) and
``raw/<test id>.json`` (raw.py), one file per test. Pure functions (reading the run folder aside);
no Ansible imports.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw, stats
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import congestion, proof

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
    # The TCP congestion control the test's sockets used, as iperf3 or netperf reported it (both ends, every
    # repeat; several joined by "/"); empty for UDP and for runs from before the pin.
    "congestion",
    # The CPU used beside the test by other work (median of the repeats kept, percent of one core): on the
    # local lab the machine's (``foreign_on`` machine), with the disturbed repeats run again, left out of the
    # statistics, or used (all were); on a cluster its test nodes' beside the test's pods (``nodes``), with
    # the repeats above the threshold counted, never rerun.
    "foreign_cpu_percent", "foreign_on", "disturbed_rerun", "disturbed_left_out", "disturbed_used",
    "busy_node_repeats",
)
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
               settings: dict[str, Any] | None = None, protocol: str | None = None) -> dict[str, Any] | None:
    """What carried a scenario's runs and where their counters contradict the model (proof.check).

    ``counters``: the median growth of each counter over the runs; None when no run has counters
    (the Kubernetes transport).
    """
    checked = [(run["counters"], proof.check(cni or "", placement, run["counters"], settings, protocol))
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


def congestion_of(settings: dict[str, Any], environment: dict[str, Any],
                  results: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's TCP congestion control: the one its client pinned (None before the pin), the nodes' default
    where the tests' sockets live (run.json's environment), and what its TCP tests' sockets reported."""
    return {"pinned": settings.get("congestion"), "default": congestion.describe(environment.get("congestion")),
            "used": congestion.used([r.get("congestion") for r in results])}


def congestion_used(summary: dict[str, Any]) -> str | None:
    """What a run's TCP tests' sockets used (congestion_of), else the one it pinned, else its nodes' default;
    None when the run says none of them. What comparisons and the gate hold two runs to."""
    found = summary.get("congestion") or {}
    return found.get("used") or found.get("pinned") or found.get("default")


def _needed(test: dict[str, Any], meta: dict[str, Any], records: dict[str, dict[str, Any]]) -> bool:
    """Whether a planned test belongs to the run: always, but for an auto run's later round, which does only
    while its earlier repeats (those with a record) do not know the median to the target."""
    settings = meta.get("settings") or {}
    if not test.get("stop"):
        return True
    earlier = [records[other["id"]] for other in meta.get("plan", []) if other["scenario"] == test["scenario"]
               and other["repeat"] < test["repeat"] and other["id"] in records]
    return repeats.needed(test["repeat"], [repeats.figure(r) for r in repeats.usable(earlier)],
                          {**settings, **test["stop"], "repeats": repeats.AUTO})


def _disturbed(succeeded: list[dict[str, Any]], used: list[dict[str, Any]], threshold: float | None) -> dict[str, Any]:
    """How other work touched a test's repeats: the median CPU used beside the repeats kept (percent of one
    core; None when not measured) and where it was read (raw.foreign_fields). The local lab: how many disturbed
    repeats were run again (their raw files in raw/disturbed/), how many stayed disturbed and were left out of
    the statistics, and whether the statistics had to use disturbed repeats (every repeat was). A cluster: how
    many repeats kept ran beside more than ``threshold`` on their nodes (recorded, not rerun; 0 or None: off)."""
    still = [r for r in succeeded if r.get("disturbed")]
    places = {r.get("foreign_on") for r in used} - {None}
    busy = [r for r in used if r.get("foreign_on") == "nodes" and threshold
            and (r.get("foreign_cpu_percent") or 0) > threshold]
    return {"foreign_cpu_percent": _median([r.get("foreign_cpu_percent") for r in used]),
            "foreign_on": "/".join(sorted(places)) or None,
            "disturbed_rerun": sum(r.get("reruns") or 0 for r in succeeded),
            "disturbed_left_out": len(still) if len(used) < len(succeeded) else 0,
            "disturbed_used": len(still) if len(used) == len(succeeded) else 0,
            "busy_node_repeats": len(busy)}


def summarize(meta: dict[str, Any], records: dict[str, dict[str, Any]],
              noisy_cv_percent: float = NOISY_CV_PERCENT) -> dict[str, Any]:
    """The run summary: one result per scenario, in matrix order.

    ``records`` maps test id to parsed record; tests of the plan without a
    record are missing (the run was interrupted) and make the run incomplete.
    """
    settings = meta.get("settings") or {}
    # An auto run's later rounds that its rule left out are not part of the run (repeats.needed).
    plan = [test for test in meta.get("plan", []) if test["id"] in records or _needed(test, meta, records)]
    scenarios: dict[str, list[dict]] = {}
    for test in plan:
        scenarios.setdefault(test["scenario"], []).append(test)

    results, failures = [], []
    vcpus = _fewest_vcpus(meta.get("environment") or {})
    for name, tests in scenarios.items():
        done = [records[t["id"]] for t in tests if t["id"] in records]
        failures += [{"test": t["id"], "error": records[t["id"]]["error"]}
                     for t in tests if t["id"] in records and not records[t["id"]]["ok"]]
        succeeded = [r for r in done if r["ok"]]
        # The statistics leave out repeats still disturbed after their reruns, unless every repeat was.
        good = repeats.usable(done)
        first = tests[0]
        program = first.get("tool") or matrix.tool(first["protocol"])
        values = [repeats.figure(r) for r in good]
        figures = spread(values)
        interval = stats.median_ci(values)
        results.append({
            "scenario": name,
            # A mesh test's pair (bench_mesh): the matrix entry and its client and server node.
            **({"mesh": first["mesh"]} if first.get("mesh") else {}),
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
            "proof": path_proof(meta.get("cni"), first["placement"], good, meta.get("profile_settings"),
                                first.get("protocol")),
            "congestion": congestion.used([r.get(end) for r in good for end in ("congestion_client",
                                                                               "congestion_server")]),
            **_disturbed(succeeded, good, settings.get("disturbed_percent")),
            # An auto run: the median's interval reached, the target, and whether it was reached.
            "auto": repeats.verdict(values, settings),
        })
    _against_host(results)
    versions = sorted({r["iperf3_version"] for r in records.values() if r.get("iperf3_version")})
    missing = [t["id"] for t in plan if t["id"] not in records]
    return {
        "schema_version": raw.SCHEMA_VERSION,
        "run_id": meta.get("run_id"),
        "provider": meta.get("provider"),
        "cni": meta.get("cni"),
        "datapath": meta.get("datapath"),
        "profile": meta.get("profile"),
        "profile_settings": meta.get("profile_settings"),
        "started": meta.get("started"),
        "settings": meta.get("settings", {}),
        "environment": meta.get("environment", {}),
        # The machine each node runs on, where known (a Proxmox VM's PVE node).
        "node_hosts": meta.get("node_hosts") or {},
        "matrix": meta.get("matrix", []),
        "noisy_cv_percent": noisy_cv_percent,
        "iperf3_versions": versions,
        "congestion": congestion_of(meta.get("settings") or {}, meta.get("environment") or {}, results),
        "complete": not missing,
        "missing_tests": missing,
        "failed_tests": failures,
        "results": results,
    }


def load_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, dict], list[str]]:
    """Read a run directory: (metadata, records by test id, problems).

    A corrupt, foreign or unknown raw file is reported in problems and skipped.
    """
    return files.read_run(run_dir, "run.json", _record_reader)


def _record_reader(meta: dict[str, Any]) -> Callable[[Path], dict[str, Any]]:
    known = {t["id"] for t in meta.get("plan", [])}

    def record(path: Path) -> dict[str, Any]:
        if path.stem not in known:
            raise files.ResultError("not a test of this run's plan")
        return raw.parse_raw(json.loads(path.read_text()))

    return record


def read_summary(run_dir: str | os.PathLike,
                 noisy_cv_percent: float = NOISY_CV_PERCENT) -> tuple[dict[str, Any], list[str]]:
    """A run's summary rebuilt from its run.json and raw files, and the problems of those files;
    what every report, comparison, gate and history entry starts from."""
    meta, records, problems = load_run(run_dir)
    return summarize(meta, records, noisy_cv_percent), problems
