"""What the local lab's tests share: the matrix they run, the playbook runs, and the checks of a run's
results and of the nodes after it (test_local_lab.py's steps, conftest.py's fixtures)."""

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import testinfra
import yaml
from datapath_checks import check_datapath
from site_args import ROOT

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb
from netlab_twin import lanes

STREAMS = ["host-tcp-1", "cross-node-tcp-1", "cross-node-tcp-4", "same-node-tcp-1", "same-node-tcp-4",
           "cross-node-udp", "service-tcp-1"]

# A few of the reference matrix's netperf tests, to keep the suite short: each kind, each path kind,
# and the host test the pod tests are held against.
NETPERF = ["host-tcp-rr", "cross-node-tcp-rr", "same-node-udp-rr", "service-tcp-crr"]
SCENARIOS = STREAMS + NETPERF
# The interrupted run's tests, two repeats each: enough that it is stopped part-way, few enough that
# its resumption is short (the three kinds of path and a netperf test).
# A disturbed run: its first test beside a busy loop of the machine (BUSY_LOOP: one core, from the run folder's
# start until the first test's raw file is written, 120 s at most), its second test and the rerun after it.
DISTURBED = ["cross-node-tcp-1", "same-node-tcp-1"]
BUSY_LOOP = """import sys, time
from pathlib import Path
raw, end = Path(sys.argv[1]) / "raw", time.monotonic() + 120
while time.monotonic() < end and not any(raw.glob("*.json")) and not any(raw.glob("disturbed/*.json")):
    spin = time.monotonic() + 0.05
    while time.monotonic() < spin:
        pass
"""
INTERRUPTED = ["host-tcp-1", "cross-node-tcp-1", "same-node-tcp-1", "cross-node-tcp-rr"]
NODES = ["netlab-server-1", "netlab-agent-1", "netlab-agent-2"]

# The lab network and the label podman_lab puts on its nodes (roles/podman_lab/defaults/main.yml).
LAB_NETWORK = "netlab"

# The datapath checks' two nodes: a server and an agent.
CHECKED = ("netlab-server-1", "netlab-agent-1")


def environment(charts: bool = False, measure: bool = False) -> dict[str, str]:
    """Charts only for the runs whose charts an assert reads: they cost seconds per report, and most runs'
    are never looked at. measure: the run's figures are compared by a timing assert; under make test its
    benchmark task holds the lanes' timing lock, so the other lane pauses meanwhile (netlab_twin.lanes)."""
    return {**os.environ, "NETLAB_CHARTS": "true" if charts else "false",
            **({lanes.ROLE_ENV: "measure"} if measure else {})}


def reference_matrix() -> list[dict]:
    defaults = yaml.safe_load((ROOT / "roles/bench/defaults/main.yml").read_text())
    return defaults["bench_reference_matrix"]


def node(name: str):
    return testinfra.get_host(f"podman://{name}")


def podman(*args: str, check: bool = True) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check).stdout


def latest(results_dir: Path) -> Path | None:
    """The run results/latest names now (later runs move it)."""
    link = results_dir / "latest"
    return link.resolve() if link.exists() else None


@dataclass
class Run:
    """A playbook run and the run folder it left (results/latest right after it)."""

    proc: subprocess.CompletedProcess
    dir: Path | None
    seen: dict = field(default_factory=dict)  # what the nodes showed right after it, before the next step

    @property
    def summary(self) -> dict:
        return json.loads((self.dir / "summary.json").read_text())


def restart_the_nodes() -> None:
    """Every node restarted, as molecule's lab_cni side effect did: each node's datapath unit must bring the
    model back. All of them: a podman container restarted alone comes back with a new MAC address, which
    the others' ARP caches still hold for a while (a real machine keeps its NIC's)."""
    podman("restart", *NODES)
    for name in NODES:
        deadline, state = time.monotonic() + 60, ""
        while state not in ("running", "degraded") and time.monotonic() < deadline:
            # Fails at once until systemd's bus is up, then waits for the boot's end.
            state = node(name).run("systemctl is-system-running --wait").stdout.strip()
            time.sleep(0.2)
        assert state in ("running", "degraded"), (name, state)


def check_both_ways(cni: str) -> None:
    """The datapath checks on both CHECKED nodes, each against the other."""
    check_datapath(cni, *CHECKED)
    check_datapath(cni, *reversed(CHECKED))


def check_congestion(run: Run, pinned: str) -> None:
    """Every TCP test's sockets used the pinned congestion control at both ends, as iperf3 and netperf's
    TCP_RR reported it (UDP has none; netperf does not report TCP_CRR's), and run.json keeps each node's
    default, allowed and available ones."""
    summary = run.summary
    used = {r["scenario"]: r["congestion"] for r in summary["results"]}
    assert used == {r["scenario"]: pinned if r["protocol"] in ("tcp", "tcp_rr") else None
                    for r in summary["results"]}, used
    nodes = json.loads((run.dir / "run.json").read_text())["environment"]["congestion"]
    assert sorted(nodes) == ["netlab-agent-1", "netlab-agent-2"], nodes
    for reading in nodes.values():
        assert pinned in reading["available"] and reading["default"] in reading["available"], nodes
        assert reading["read_in"] != "host", nodes  # in a pod's namespace, where the tests' sockets live
    assert summary["congestion"]["pinned"] == summary["congestion"]["used"] == pinned
    assert f"TCP congestion control: pinned {pinned}, node default " in (run.dir / "report.md").read_text()


def check_run(run: Run, cni: str) -> dict:
    proc = run.proc
    assert proc.returncode == 0
    summary = run.summary
    assert summary["cni"] == cni and summary["provider"] == "local" and summary["complete"]
    assert [r["scenario"] for r in summary["results"]] == SCENARIOS
    # bench_congestion's default, whatever this machine's kernel defaults to (BBR here).
    check_congestion(run, "cubic")
    for result in summary["results"]:
        if result["tool"] == "iperf3":
            assert result["gbps_median"] > 0 and result["cpu_per_gbit"] > 0, result
        else:
            assert result["trans_per_s_median"] > 0 and result["cpu_per_1k_trans"] > 0, result
            assert 0 < result["p50_us"] <= result["p90_us"] <= result["p99_us"], result
        # Every test's counters show the path its model claims.
        assert result["proof"]["runs"] == 1 and result["proof"]["contradictions"] == [], result
        # Both ends' /proc/stat: the lab's nodes are containers of one machine, one kernel counted once.
        assert result["cpu_ends"] == "one kernel" and result["cpu_busy_s"] > 0, result
    by_name = {r["scenario"]: r for r in summary["results"]}
    assert by_name["service-tcp-crr"]["conn_per_s_median"] == by_name["service-tcp-crr"]["trans_per_s_median"]
    assert by_name["cross-node-tcp-rr"]["host_scenario"] == "host-tcp-rr"
    assert by_name["cross-node-tcp-rr"]["host_ratio"] > 0 and by_name["cross-node-tcp-1"]["host_ratio"] > 0
    udp = next(r for r in summary["results"] if r["scenario"] == "cross-node-udp")
    assert udp["lost_percent"] is not None and udp["jitter_ms"] is not None
    report = (run.dir / "report.md").read_text()
    assert "## Path of each test" in report and "## Latency and transaction rate (netperf)" in report
    assert "## Node CPU during each test" in report
    # The run's Service is gone from the model when the run ends.
    assert run.seen["services"] == {"netlab-agent-1": "", "netlab-agent-2": ""}
    raw = sorted((run.dir / "raw").glob("*.json"))
    assert len(raw) == len(SCENARIOS)
    for chart in ("throughput.png", "throughput.svg", "latency.png", "latency.svg"):
        assert (run.dir / chart).stat().st_size > 0
    meta = json.loads((run.dir / "run.json").read_text())
    kernel = os.uname().release
    assert [n["kernel"] for n in meta["environment"]["nodes"]] == [kernel, kernel]
    assert all(n["vcpus"] >= 1 and n["memtotal_mb"] > 0 for n in meta["environment"]["nodes"])
    assert "BENCHMARK SUMMARY" in proc.stdout and "not figures of a real cluster" in proc.stdout
    # One console line per finished test, with its figure.
    for index, scenario in enumerate(STREAMS, 1):
        assert re.search(rf"^{index}/{len(SCENARIOS)} {scenario} r1: \d+\.\d\d Gbit/s, ", proc.stdout, re.MULTILINE)
    for index, scenario in enumerate(NETPERF, len(STREAMS) + 1):
        assert re.search(rf"^{index}/{len(SCENARIOS)} {scenario} r1: \w+_c?rr p50 \d+ us, p99 \d+ us, [\d.]+k? "
                         r"(trans|conn)/s$", proc.stdout, re.MULTILINE)
    for scenario in STREAMS:
        assert re.search(rf"^{scenario}\s+\S+\s+(tcp|udp)\s+\d\s+1/1\s+\d+\.\d\d.*as modelled$", proc.stdout,
                         re.MULTILINE)
    for scenario in NETPERF:
        assert re.search(rf"^{scenario}\s+\S+\s+(TCP|UDP)_C?RR\s+1\s+1/1\s+\d+\s.*as modelled$", proc.stdout,
                         re.MULTILINE)
    return summary


def full_run(play, results_dir: Path, cni: str, bench: list[str]) -> Run:
    """site.yml for one CNI (charts drawn: check_run and the comparison's asserts read them), and the
    benchmark nodes' Service folders right after it."""
    proc = play("-e", f"cni={cni}", *bench, charts=True)
    services = {name: node(name).run("ls /var/lib/netlab/services").stdout.strip()
                for name in ("netlab-agent-1", "netlab-agent-2")}
    return Run(proc, latest(results_dir), {"services": services})


SCALE = ["-e", '{"service_scale_counts": [0, 50, 500]}', "-e", "service_scale_connections=100"]


def scenario_map_entries(client) -> list[dict]:
    """Entries of the socket LB's maps with a scenario id (top bit clear), as bpftool reads them."""
    entries = []
    for name, part in (("netlab_services", "value"), ("netlab_backends", "key")):
        dumped = json.loads(client.check_output(f"bpftool -j map dump pinned /sys/fs/bpf/{name}"))
        entries += [e for e in dumped if sock_lb.is_scenario_id(e["formatted"][part]["id"])]
    return entries


def sockets_translated(client) -> int:
    return json.loads(client.check_output("netlab-datapath counters"))["bpf.sock_xlate"]


def check_scale(proc: subprocess.CompletedProcess, results_dir: Path, cni: str, model: str, kind: str = "") -> Path:
    """A scale run with real records (its folder <time>-<kind or cni-scale>), and nothing of it left on the nodes."""
    assert proc.returncode == 0
    assert "SERVICE SCALE" in proc.stdout and "model of the lookup structures" in proc.stdout
    run = max(results_dir.glob(f"*-{kind or cni + '-scale'}"))
    meta = json.loads((run / "scale.json").read_text())
    assert (meta["cni"], meta["model"], meta["counts"]) == (cni, model, [0, 50, 500])
    records = [json.loads((run / "raw" / f"{n:05d}.json").read_text()) for n in (0, 50, 500)]
    # A connection to 10.43.2.243 answers only through the rules: untranslated addresses are reset.
    assert [r["target"] for r in records] == ["198.19.3.10", "10.43.1.49", "10.43.2.243"]
    for r in records:
        assert r["model"] == model and r["connections"] == 100 and len(r["samples_us"]) == 100
        assert 0 < r["latency_us"]["p50"] <= r["latency_us"]["p99"]
        assert r["update_ms"] > 0 and r["reachable_ms"] > 0
    for name in ("scale.md", "scale.csv", "scale.png", "scale.svg"):
        assert (run / name).stat().st_size > 0
    client, backend = node("netlab-agent-1"), node("netlab-agent-2")
    assert "NETLAB-SVC" not in client.check_output("iptables-save -t nat")
    assert "netlab-services" not in client.check_output("nft list tables")
    if cni == "cilium":
        assert scenario_map_entries(client) == []
    assert not backend.service("netlab-scale-echo").is_running
    assert not backend.file("/usr/local/libexec/netlab-echo").exists
    return run


# Each Cilium profile's model carries the tests by its own mechanisms (two of them here: between them
# they run every setting that differs from the reference: the tunnel, legacy host routing, kube-proxy).
PROFILE_MATRIX = [{"name": name, "placement": placement, "protocol": protocol, "streams": 1}
                  for name, placement, protocol in (("cross-node-tcp-1", "cross-node", "tcp"),
                                                    ("same-node-tcp-1", "same-node", "tcp"),
                                                    ("service-tcp-1", "service", "tcp"),
                                                    ("cross-node-udp", "cross-node", "udp"))]
# Per profile run by the lab test: the start of its datapath line, a mechanism each scenario's client node must
# show, and its (routing, host_routing).
PROFILES = {
    "tunnel": ("VXLAN tunnel", {"cross-node-tcp-1": "BPF from-container: tunnel key + redirect to cilium_vxlan",
                                "same-node-tcp-1": "host netfilter FORWARD",
                                "service-tcp-1": "kube-proxy iptables: KUBE-SVC/KUBE-SEP DNAT"}, ("vxlan", "legacy")),
    "native-legacy": ("native routing with legacy host routing",
                      {"cross-node-tcp-1": "host netfilter FORWARD",
                       "service-tcp-1": "BPF socket LB: Service address translated at connect()"},
                      ("native", "legacy")),
    # BIG TCP: TCP's packets of more than 64 KiB through the client's interface, to a pod of another node and
    # through the Service (the provider raised the host side of the nodes' links for them).
    "native-bigtcp": ("native routing with BPF host routing",
                      {"cross-node-tcp-1": "BIG TCP: packets of more than 64 KiB through the node's interface",
                       "service-tcp-1": "BIG TCP: packets of more than 64 KiB through the node's interface"},
                      ("native", "bpf")),
}

# With kube-proxy's Services (the tunnel profile): connections through the Service right after direct ones
# to the same pod. netperf's TCP_CRR reuses its client ports in every test; with one data port for both the
# kernel dropped SYNs on conntrack clashes and a repeat made 0 to 3 connections/s instead of thousands.
CRR_PAIR = [{"name": "cross-node-tcp-crr", "placement": "cross-node", "protocol": "tcp_crr"},
            {"name": "service-tcp-crr", "placement": "service", "protocol": "tcp_crr"}]

# The regression gate's test: UDP at its offered 1 Gbit/s, which the Cilium reference carries.
GATE = ["-e", "bench_duration=2", "-e", "bench_omit=0", "-e", "bench_repeats=2",
        "-e", "bench_tolerance=25"]

# The tunnel profile's run offers the same test a fifth of that: a fall the gate must catch on any
# machine. Whether the tunnel's legacy host routing carries the full 1 Gbit/s depends on the machine
# (about half of it on one 2-core host, all of it on another), so a fall it may not show is not asserted.
# The offered rate is not part of a test's definition (gate.DEFINITION): the gate compares the two.
WORSE_ON_PURPOSE = [{**PROFILE_MATRIX[-1], "bitrate": "200M"}]
IMAGE = "netlab/iperf3@sha256:" + "e" * 64


@dataclass
class Interrupted:
    """A `--tags bench` run killed part-way, then reported and resumed; what each step showed."""

    before: Path  # the lab's run before it (Canal's full run)
    old_files: dict[Path, bytes]  # that run's files before it
    out: str  # the killed playbook's output
    run: Path | None
    after: Path | None  # results/latest right after the kill
    canal_runs: int  # runs of the lab's CNI and profile right after the kill
    kept: dict[str, bytes]  # the raw files it had written
    report: subprocess.CompletedProcess
    reported: dict  # its summary.json after the report
    resumed: subprocess.CompletedProcess


# A user's own playbook, outside the repository, with only the role's documented inputs.
USER_PLAYBOOK = """
- name: Benchmark two nodes of a running lab with the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Reach the nodes
      ansible.builtin.add_host: {name: "{{ item }}", ansible_connection: containers.podman.podman}
      loop: "{{ bench_nodes }}"
    - name: Run the benchmark
      ansible.builtin.include_role: {name: netlab.lab.bench}
"""


@dataclass
class TornDown:
    """The lab removed through the playbook, then what still runs without it."""

    runs: list[str]  # the results folder before
    teardown: subprocess.CompletedProcess
    left: list[str]  # podman's containers after it
    runs_after: list[str]
    bench: subprocess.CompletedProcess
    expected: dict  # results/latest's summary.json, before its summary and report files were deleted
    run: Path
    report: subprocess.CompletedProcess
