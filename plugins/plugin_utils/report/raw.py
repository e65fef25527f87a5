"""The raw test file, ``raw/<test id>.json``: its writer, its reader and its keys.

One file per test, written as the test ends (the bench_local action plugin, the bench_raw filter): iperf3's
``--json`` document, or netperf's ``-k`` KEY=value lines in a small document, with the client node's datapath
counters (transport/proof.py) and both ends' /proc/stat readings (transport/cpu.py) added under keys of their
own. Every report is rebuilt from these files alone. The console's line for a finished test is read here too,
so the benchmark engine imports no rendering. Pure functions; no Ansible imports.
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, proof

# The layout of what the report derives from raw files: summary.json's and comparison.json's schema_version.
SCHEMA_VERSION = 1
# The keys of a raw document besides iperf3's own (start, end, error).
COUNTERS = "netlab_counters"  # {node, before, after}: the client node's datapath counters around the test
# {client|server: {before, after}}: each end's /proc/stat reading around the test; Kubernetes also client_pod and
# server_pod {before, after}: each end's pod's own CPU (its cgroup) beside them.
CPU = "netlab_cpu"
CLOCK = "clock"  # under CPU, Kubernetes: {before, after}, the client's wall clock beside its readings
# {percent, threshold, disturbed, reruns, busy_s, lab_s, kernel_s, wall_s}: the local lab's CPU used beside the test by
# anything but the lab (transport/foreign_cpu.py), and how many disturbed repeats of it were run again.
FOREIGN = "netlab_foreign_cpu"
ERROR = "error"  # why the test failed: iperf3's own key, also set for a netperf failure or a missing output
# A netperf test's document: {"tool": "netperf", "output": <its -k KEY=value lines>, "rc": <exit code>}.
TOOL, OUTPUT, RC = "tool", "output", "rc"
# netperf's selectors (matrix.NETPERF_SELECTORS) -> record keys; latency in microseconds.
NETPERF_VALUES = {"TRANSACTION_RATE": "trans_per_s", "P50_LATENCY": "p50_us", "P90_LATENCY": "p90_us",
                  "P99_LATENCY": "p99_us", "MEAN_LATENCY": "mean_us", "MIN_LATENCY": "min_us",
                  "MAX_LATENCY": "max_us", "STDDEV_LATENCY": "stddev_us", "ELAPSED_TIME": "elapsed_s",
                  "REQUEST_SIZE": "request_size", "RESPONSE_SIZE": "response_size"}
# netperf's congestion control selectors (commands.NETPERF_CONGESTION_SELECTORS) -> record keys, as iperf3's.
NETPERF_CONGESTION = {"LOCAL_CONG_CONTROL": "congestion_client", "REMOTE_CONG_CONTROL": "congestion_server"}


def cpu_section(readings: dict[str, list[str]]) -> dict[str, Any] | None:
    """``netlab_cpu`` of a raw file: the readings of each end that has both, as read."""
    ends = {end: {"before": pair[0], "after": pair[-1]} for end, pair in readings.items() if len(pair) >= 2}
    return ends or None


def document(stdout: str | None, stderr: str | None, rc: int | None, message: str = "",
             node: str | None = None, tool: str = "iperf3") -> str:
    """The raw file of one test, with the counters under ``netlab_counters`` and the CPU readings of
    both ends under ``netlab_cpu`` (on Kubernetes the server's are added after the run from its sampler,
    add_server_cpu).

    iperf3: its JSON document. netperf: ``{tool: netperf, output: <its KEY=value lines>, rc}``.
    A client that failed or printed nothing (killed, not started) gets a document that says why, so the
    run's reader sees a failed test instead of a missing one.
    """
    cpu_readings, clocks, stderr = cpu.split_stderr(stderr)
    readings, rest = proof.split_stderr(stderr)
    text = (stdout or "").strip()
    if tool == "netperf":
        doc: Any = {TOOL: "netperf", OUTPUT: stdout or "", RC: rc}
        if rc != 0:
            reason = rest or message or text[:500]
            doc[ERROR] = f"netperf failed (exit {rc if rc is not None else 'none'}): {reason}"
    else:
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
    if not isinstance(doc, dict):
        reason = rest or message or (text[:500] if text else "")
        doc = {"start": {}, "end": {}, ERROR: f"no output (exit {rc if rc is not None else 'none'}): {reason}"}
    if len(readings) == 2:
        doc[COUNTERS] = {"node": node, "before": readings[0], "after": readings[1]}
    if cpu_section(cpu_readings):
        doc[CPU] = cpu_section(cpu_readings)
        if len(clocks) >= 2:
            # The client's wall clock beside its readings: the server's sampler is matched to it afterwards.
            doc[CPU][CLOCK] = {"before": clocks[0], "after": clocks[-1]}
    return json.dumps(doc)


def with_foreign(text: str, figure: dict[str, Any]) -> str:
    """A raw file (its text) with the test's foreign CPU (foreign_cpu.figure, and its reruns so far)."""
    doc = json.loads(text)
    doc[FOREIGN] = figure
    return json.dumps(doc)


def foreign_fields(doc: Any) -> dict[str, Any]:
    """A record's foreign CPU: its percentage of one core (None: not measured), where it was read
    (``foreign_on``: ``machine``, the local lab's, judged as it ran; ``nodes``, a cluster's test nodes beside the
    test's pods, cpu.beside_pods, recorded only), whether the repeat was disturbed still when it was kept, and
    how many disturbed repeats of it were run again."""
    found = doc.get(FOREIGN) if isinstance(doc, dict) else None
    if isinstance(found, dict):
        return {"foreign_cpu_percent": found.get("percent"), "foreign_on": "machine",
                "disturbed": bool(found.get("disturbed")), "reruns": int(found.get("reruns") or 0)}
    nodes = cpu.beside_pods(doc.get(CPU)) if isinstance(doc, dict) else None
    return {"foreign_cpu_percent": nodes["percent"] if nodes else None, "foreign_on": "nodes" if nodes else None,
            "disturbed": False, "reruns": 0}


def add_server_cpu(text: str, sampler_log: str) -> str:
    """A raw file (its text) with the server's readings taken from its sampler's log (Kubernetes:
    cpu.sampled's output), those around the client's own, and its pod's own CPU beside them where it was read;
    unchanged when the log has none for it."""
    doc = json.loads(text)
    section = doc.get(CPU) or {}
    clock = section.get(CLOCK) or {}
    if "before" not in clock or "after" not in clock:
        return text
    server, pod = cpu.server_pair(sampler_log, [float(clock["before"]), float(clock["after"])])
    if not server:
        return text
    section["server"] = {"before": server[0], "after": server[1]}
    if pod:
        section["server_pod"] = {"before": pod[0], "after": pod[1]}
    return json.dumps(doc)


def parse_iperf3(doc: Any) -> dict[str, Any]:
    """One iperf3 ``--json`` document as a flat record.

    Throughput is what the receiver got. For UDP, loss and jitter are the
    receiver's (iperf3 >= 3.x reports them in ``end.sum_received``).
    """
    if not isinstance(doc, dict) or "start" not in doc or "end" not in doc:
        raise files.ResultError("not iperf3 JSON output (no start/end sections)")
    if doc.get(ERROR):
        return {"ok": False, "error": str(doc[ERROR])}
    start, end = doc["start"], doc["end"]
    test = start.get("test_start") or {}
    protocol = str(test.get("protocol", "")).lower()
    received = end.get("sum_received") or end.get("sum")
    if not received or "bits_per_second" not in received:
        raise files.ResultError("iperf3 output has no receiver summary")
    sent = end.get("sum_sent") or {}
    used = end.get("cpu_utilization_percent") or {}
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
        "cpu_client_percent": used.get("host_total"),
        "cpu_server_percent": used.get("remote_total"),
        # How much each datapath counter of the client's node grew during the test (local transport).
        "counters": proof.delta(doc.get(COUNTERS)),
        **_iperf3_congestion(end, bool(test.get("reverse"))),
    }
    # The CPU window spans iperf3's omitted seconds too: the work is the rate over both.
    active = float(test.get("duration") or 0) + float(test.get("omit") or 0)
    return {"tool": "iperf3", **record, **_cpu_fields(doc, record["gbps"] * active)}


def _iperf3_congestion(end: dict[str, Any], reverse: bool) -> dict[str, Any]:
    """What each end's TCP sockets used, as iperf3 reports it (``end.sender_tcp_congestion``, ``end.
    receiver_tcp_congestion``; absent for UDP): the sender is the server with --reverse."""
    sender, receiver = end.get("sender_tcp_congestion"), end.get("receiver_tcp_congestion")
    client, server = (receiver, sender) if reverse else (sender, receiver)
    return {"congestion_client": client, "congestion_server": server}


def parse_netperf(doc: dict[str, Any]) -> dict[str, Any]:
    """One netperf raw document (its ``-k`` KEY=value lines under ``output``) as a flat record.

    Latency is netperf's own, per transaction, in microseconds; TRANSACTION_RATE is per second
    (for TCP_CRR a transaction is a whole connection: connect, request, response, close).
    """
    if doc.get(ERROR):
        return {"ok": False, "error": str(doc[ERROR])}
    values = dict(line.strip().split("=", 1) for line in str(doc.get(OUTPUT) or "").splitlines() if "=" in line)
    missing = [key for key in NETPERF_VALUES if key not in values]
    if missing:
        return {"ok": False, "error": f"netperf printed no {', '.join(missing)}"}
    try:
        record: dict[str, Any] = {key: float(values[selector]) for selector, key in NETPERF_VALUES.items()}
    except ValueError as exc:
        return {"ok": False, "error": f"netperf printed a value that is not a number: {exc}"}
    record.update({"ok": True, "error": None, "tool": "netperf", "protocol": values.get("PROTOCOL", "").lower(),
                   "counters": proof.delta(doc.get(COUNTERS)),
                   # A TCP test with a pinned congestion control: what its sockets used, each end (else None).
                   **{key: values.get(selector) or None for selector, key in NETPERF_CONGESTION.items()}})
    return {**record, **_cpu_fields(doc, record["trans_per_s"] * record["elapsed_s"] / 1000)}


def _cpu_fields(doc: dict[str, Any], work: float) -> dict[str, Any]:
    """A test's node CPU (cpu.usage) and its CPU-seconds per unit of work: per Gbit transferred
    (iperf3: ``work`` in Gbit), per 1,000 transactions (netperf: ``work`` in thousands)."""
    used = cpu.usage(doc.get(CPU))
    if used is None:
        return {"cpu": None, "cpu_per_unit": None}
    return {"cpu": used, "cpu_per_unit": used["total"]["busy_s"] / work if work > 0 else None}


def parse_raw(doc: Any) -> dict[str, Any]:
    """A raw file's document as a record, whichever program wrote it."""
    record = parse_netperf(doc) if isinstance(doc, dict) and doc.get(TOOL) == "netperf" else parse_iperf3(doc)
    return {**record, **foreign_fields(doc)}


def test_line(test: dict[str, Any], raw: str) -> str:
    """The console's line for one finished test: ``3/21 cross-node-tcp-4 r1: 25.70 Gbit/s, 744 retr``."""
    head = f"{test['index']}/{test['total']} {test['scenario']} r{test['repeat']}"
    try:
        record = parse_raw(json.loads(raw))
    except (ValueError, files.ResultError) as exc:
        return f"{head}: FAILED, {exc}"
    if not record["ok"]:
        return f"{head}: FAILED, {record['error']}"
    if record["tool"] == "netperf":
        unit = "conn/s" if test.get("protocol") == "tcp_crr" else "trans/s"
        return (f"{head}: {test.get('protocol', 'rr')} p50 {record['p50_us']:.0f} us, p99 {record['p99_us']:.0f} us, "
                f"{_thousands(record['trans_per_s'])} {unit}")
    extra = (f"{files.fmt(record['lost_percent'], 3)} % lost" if record["protocol"] == "udp"
             else f"{files.fmt(record['retransmits'], 0)} retr")
    return f"{head}: {record['gbps']:.2f} Gbit/s, {extra}"


def _thousands(value: float) -> str:
    """A rate as the console says it: 25.1k, 980."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
