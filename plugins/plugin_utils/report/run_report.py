"""A run's reports: summary.json, summary.csv, report.md (context, tables, notes, the path of each test)
and its charts, and the console's tables, all from the run's summary (summary.py). Pure functions plus the
writer; no Ansible imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, mesh, stats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof

LOCAL_LAB_NOTE = (
    "Local lab: a model of the CNI datapath built from real kernel devices in podman "
    "nodes on one machine. These are not figures of a real cluster."
)


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
    label = f"{files.fmt(result['ci_low'], digits)}-{files.fmt(result['ci_high'], digits)}"
    confidence = result["ci_confidence"]
    return label if confidence >= stats.CONFIDENCE else f"{label} ({confidence * 100:g}%)"


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the throughput table (iperf3 tests)."""
    header = ["test", "placement", "proto", "streams", "runs", "Gbps median", "min", "max", "95% CI",
              "CV %", "retrans", "loss %", "jitter ms", "CPU s/Gbit", "vs host", "path"]
    fmt = files.fmt
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
    fmt = files.fmt
    rows = [[
        r["scenario"], placement_label(r), matrix.NETPERF_TESTS.get(r["protocol"], r["protocol"]), str(r.get("size")),
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
        per = (f"{files.fmt(r['cpu_per_gbit'], 3)} s/Gbit" if r.get("cpu_per_gbit") is not None else
               f"{files.fmt(r.get('cpu_per_1k_trans'), 3)} s/1k trans")
        seconds = ("cpu_busy_s", "cpu_user_s", "cpu_system_s", "cpu_softirq_s", "cpu_client_s", "cpu_server_s")
        rows.append([r["scenario"], r["cpu_ends"], *(files.fmt(r[key]) for key in seconds), per])
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
            *files.markdown_table(header, rows)]


def placement_label(result: dict[str, Any]) -> str:
    """A result's placement as reports show it: marked when its two nodes share one hypervisor."""
    return f"{result['placement']}, same host" if result.get("same_host") else result["placement"]


def same_host_note(scenarios: list[str]) -> list[str]:
    return [f"{matrix.SAME_HOST} ({', '.join(scenarios)}): both nodes run on one hypervisor."] if scenarios else []


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
    items = [("Date", summary.get("started")), ("Provider", summary.get("provider")), ("CNI", files.run_label(summary)),
             ("Datapath", summary.get("datapath")), ("Kernel", hardware("kernel")),
             ("CPU model", hardware("cpu_model")), ("vCPUs", hardware("vcpus")), ("Memory", memory),
             ("Versions", ", ".join(f"{name} {v}" for name, v in versions if v)),
             ("MTU", ", ".join(f"{name} {v}" for name, v in mtus if v)),
             ("TCP congestion control", _congestion(summary.get("congestion") or {})), ("Settings", ", ".join(told))]
    hosts = summary.get("node_hosts") or {}
    if any(hosts.values()):
        # Each node's machine: a reader sees which pair crossed a wire.
        items.insert(2, ("Hosts", ", ".join(f"{node} on {host or '?'}" for node, host in sorted(hosts.items()))))
    return [(label, str(value) if value not in (None, "") else "-") for label, value in items]


def _congestion(found: dict[str, Any]) -> str:
    """The run's TCP congestion control in words: pinned, the nodes' default, and what the tests' sockets used
    when that is not the pinned one alone."""
    parts = [f"pinned {found['pinned']}" if found.get("pinned") else "not pinned",
             f"node default {found.get('default') or 'not recorded'}"]
    if found.get("used") and found.get("used") != found.get("pinned"):
        parts.append(f"tests used {found['used']}")
    return ", ".join(parts) if found.get("pinned") or found.get("default") or found.get("used") else ""


def context_digest(summary: dict[str, Any]) -> str:
    """The console's one line of the context: what is known of it, labelled where a bare value is unclear."""
    found = dict(context(summary))
    parts = [found["Date"], found["Provider"], found["CNI"], f"kernel {found['Kernel']}", found["CPU model"],
             f"{found['vCPUs']} vCPUs", found["Memory"], found["Versions"], f"MTU {found['MTU']}",
             f"TCP congestion control {found['TCP congestion control']}"]
    return "context: " + "; ".join(p for p in parts if p not in ("-", "kernel -", "- vCPUs", "MTU -",
                                                                 "TCP congestion control -"))


def render_text(summary: dict[str, Any]) -> str:
    """Aligned plain-text tables for the console: throughput, then latency."""
    lines = [f"run {summary['run_id']}: cni={summary['cni']} provider={summary['provider']}", context_digest(summary)]
    if summary.get("datapath"):
        lines.append(f"datapath: {summary['datapath']}")
    for rows in (table_rows(summary), latency_rows(summary)):
        if rows[1]:
            lines += files.text_table(*rows)
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
        lines += ["", f"## {title}", "", *files.markdown_table(*rows)]
        if image:
            lines += ["", f"![{alt[image]}]({image})"]
    if any(r.get("ci_low") is not None for r in summary["results"]):
        lines += ["", *CI_NOTE]
    lines += ["", *CPU_NOTE, ""] if cpu_rows(summary)[1] else [""]
    lines += mesh.markdown(summary, charts=charts)
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


def auto_notes(summary: dict[str, Any]) -> list[str]:
    """An auto run (bench_repeats: auto): which tests' medians reached the target, which stopped at the bound."""
    judged = [r for r in summary["results"] if r.get("auto")]
    if not judged:
        return []
    target = judged[0]["auto"]["target_percent"]
    reached = [f"{r['scenario']} ({r['auto']['repeats']})" for r in judged if r["auto"]["reached"]]
    short = [f"{r['scenario']} ({files.fmt(r['auto']['width_percent'], 1)} % after {r['auto']['repeats']})"
             for r in judged if not r["auto"]["reached"]]
    head = (f"AUTO REPEATS (the median's {repeats.STOP_CONFIDENCE:.0%} interval within {target:g} % of it, "
            f"{repeats.MIN_ROUNDS} to {judged[0]['auto']['max_repeats']} repeats): ")
    parts = ([f"reached by {', '.join(reached)}"] if reached else []) + (
        [f"not reached, stopped at the bound or cut short: {', '.join(short)}"] if short else [])
    return [head + "; ".join(parts) + "."]


def disturbed_notes(summary: dict[str, Any]) -> list[str]:
    """What other work did to the run's repeats (the local lab's machine; a cluster's test nodes), in a line or
    two."""
    results = summary["results"]
    threshold = (summary.get("settings") or {}).get("disturbed_percent")
    rerun = [f"{r['scenario']} ({r['disturbed_rerun']})" for r in results if r.get("disturbed_rerun")]
    left_out = [f"{r['scenario']} ({r['disturbed_left_out']})" for r in results if r.get("disturbed_left_out")]
    used = [r["scenario"] for r in results if r.get("disturbed_used")]
    notes = []
    if rerun:
        notes.append(f"DISTURBED: repeats that ran beside more than {threshold} % of a core of other work on the "
                     f"machine were run again (their raw files are in raw/disturbed/): {', '.join(rerun)}.")
    if left_out:
        notes.append(f"DISTURBED STILL: repeats still disturbed after their reruns, left out of the statistics: "
                     f"{', '.join(left_out)}.")
    if used:
        notes.append(f"DISTURBED ONLY: every repeat of {', '.join(used)} was disturbed; its figures are theirs.")
    busy = [f"{r['scenario']} ({r['busy_node_repeats']})" for r in results if r.get("busy_node_repeats")]
    if busy:
        notes.append(f"BUSY NODES: repeats whose nodes spent more than {threshold} % of a core beside the test's pods "
                     f"(other pods, the kubelet, the CNI agent; the kernel's interrupt work left out), recorded and "
                     f"kept, not run again on a cluster: {', '.join(busy)}.")
    return notes


def bbr_note(summary: dict[str, Any]) -> list[str]:
    """A profile's BBR (its congestion setting) without the bandwidth manager: TCP's own pacing, not the fq qdisc's
    EDT pacing that Cilium's bandwidthManager.bbr puts under it (the local lab's kernel has no fq at all)."""
    settings = summary.get("profile_settings") or {}
    if settings.get("congestion") != "bbr" or settings.get("bandwidth_manager"):
        return []
    return ["BBR WITHOUT FQ: the tests' sockets ran BBR paced by TCP itself; Cilium's bandwidthManager.bbr also paces "
            "them with EDT on the fq qdisc, which this run's datapath did not have, so the figures price BBR's "
            "congestion control, not the bandwidth manager's pacing."]


def big_tcp_note(summary: dict[str, Any]) -> list[str]:
    """A BIG TCP profile's run: where Cilium enables it, and whether this run's packets show it."""
    if not (summary.get("profile_settings") or {}).get("big_tcp"):
        return []
    big = [r["scenario"] for r in summary["results"] if proof.MECHANISMS["nic.big_tcp"] in
           ((r.get("proof") or {}).get("mechanisms") or [])]
    counted = any(r.get("proof") for r in summary["results"])
    shown = (f"packets of more than 64 KiB crossed the node's interface in {', '.join(big)}" if big
             else "no test's counters show packets of more than 64 KiB" if counted
             else "this run has no datapath counters to show it")
    return [f"BIG TCP: Cilium enables it only on NICs whose drivers take it (mlx4, mlx5, ice in its docs), so a "
            f"VM's virtio NIC may not get it; {shown}."]


def _notes(summary: dict[str, Any]) -> list[str]:
    notes = []
    if summary.get("provider") == "local":
        notes.append(LOCAL_LAB_NOTE)
    notes += same_host_note([r["scenario"] for r in summary["results"] if r.get("same_host")])
    noisy = [r["scenario"] for r in summary["results"] if r["noisy"]]
    if noisy:
        notes.append(f"NOISY (CV > {summary['noisy_cv_percent']:g} %): {', '.join(noisy)}; "
                     "their medians are less certain than the others.")
    notes += disturbed_notes(summary) + auto_notes(summary)
    notes += bbr_note(summary) + big_tcp_note(summary)
    bound = [r["scenario"] for r in summary["results"] if r.get("cpu_limited")]
    if bound:
        notes.append(f"CPU-BOUND: {', '.join(bound)}: the sending iperf3 used {run_summary.CPU_LIMITED_PERCENT:g} % "
                     "or more of a core per stream, so the figure is limited by the sender's CPU (whose system time "
                     "includes the sending side of the datapath) rather than by what the datapath could carry.")
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
    fields = ("run_id", "cni", "provider", *run_summary.SUMMARY_FIELDS, "path", "mechanisms")
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in summary["results"]:
        writer.writerow({"run_id": summary["run_id"], "cni": summary["cni"], "provider": summary["provider"],
                         **result, "path": path_label(result),
                         "mechanisms": "; ".join((result.get("proof") or {}).get("mechanisms", []))})
    return out.getvalue()


def write_reports(run_dir: str | os.PathLike, noisy_cv_percent: float = run_summary.NOISY_CV_PERCENT,
                  charts: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Rebuild summary.json, summary.csv, report.md and the charts of a run from its raw files."""
    run = Path(run_dir)
    summary, problems = run_summary.read_summary(run, noisy_cv_percent)
    summary["problems"] = problems
    files.atomic_write(run / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    files.atomic_write(run / "summary.csv", render_csv(summary))
    if charts:
        # matplotlib is imported only when charts are drawn.
        from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts as charts_module

        if _of(summary, "iperf3"):
            charts_module.run_chart(summary, run / "throughput")
        if _of(summary, "netperf"):
            charts_module.latency_chart(summary, run / "latency")
        for found in mesh.matrices(summary):
            charts_module.mesh_chart(found, summary, run / f"mesh-{found['test']}")
    files.atomic_write(run / "report.md", render_markdown(summary, charts=charts))
    return summary, problems
