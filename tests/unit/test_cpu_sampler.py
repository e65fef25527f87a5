"""The Kubernetes transport's server-side CPU sampler (review F5), run by a real shell on this machine: its
readings around the client's, matched on the wall clock, give both ends the same window."""

import json
import os
import subprocess
import time

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.report import raw
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu


@pytest.fixture
def sample_name(tmp_path):
    name = f"unit-{tmp_path.name}"
    yield name
    subprocess.run(["rm", "-f", f"/tmp/netlab-cpu-{name}", f"/tmp/netlab-cpu-{name}.stop"], check=False)


def test_the_server_window_is_the_clients(sample_name):
    start = subprocess.run(cpu.sampler(sample_name, 30), capture_output=True, text=True, timeout=10, check=True)
    # The exec returns at once: the sampler runs in the background.
    assert start.stdout.strip() == "sampling"
    time.sleep(0.5)  # an exec's start-up before the client's
    client = subprocess.run(cpu.around(["sleep", "1"]), capture_output=True, text=True, timeout=10, check=True)
    time.sleep(0.5)
    log = subprocess.run(cpu.sampled(sample_name), capture_output=True, text=True, timeout=10, check=True).stdout
    assert log.startswith("clock ") and len(log.splitlines()) > 15
    readings, clocks, _ = cpu.split_stderr(client.stderr)
    server = cpu.server_readings(log, clocks)
    used = cpu.usage(raw.cpu_section({**readings, "server": server}))
    client_window, server_window = used["client"]["window_s"], used["server"]["window_s"]
    assert client_window >= 1.0
    # Readings every 0.1 s: the server's window holds the client's, no more than two periods longer.
    assert client_window <= server_window <= client_window + 2 * cpu.SAMPLE_PERIOD + 0.05, (client_window,
                                                                                           server_window)
    # The sampler stopped: nothing is left behind.
    assert subprocess.run(["pgrep", "-f", f"netlab-cpu-{sample_name}"], capture_output=True).returncode == 1


def test_a_sampler_log_without_readings_around_the_client_gives_none():
    log = "clock 1000.0 10.0\nb 10.5 cpu 1 2 3 4 5 6 7 8\n"
    assert cpu.server_readings(log, [1000.2, 1000.4]) is None
    assert cpu.server_readings("", [1000.2, 1000.4]) is None
    # Readings at uptime 10.1 and 10.6 (wall 1000.1 and 1000.6) bracket a client from 1000.2 to 1000.5,
    # not one that started before the first of them.
    log = "clock 1000.0 10.0\nb 10.1 cpu 1 0 1 0 0 0 0 0\nb 10.6 cpu 9 0 1 0 0 0 0 0\n"
    assert cpu.server_readings(log, [1000.05, 1000.5]) is None
    assert cpu.server_readings(log, [1000.2, 1000.5]) == ["b 10.1 cpu 1 0 1 0 0 0 0 0",
                                                                        "b 10.6 cpu 9 0 1 0 0 0 0 0"]


def test_a_raw_file_gets_the_server_readings_around_the_clients():
    clock = {"before": 1000.2, "after": 1000.5}
    text = json.dumps({"end": {}, "netlab_cpu": {"client": {"before": "b 1 cpu 0 0 0 0 0 0 0 0",
                                                            "after": "b 2 cpu 0 0 0 0 0 0 0 0"}, "clock": clock}})
    log = "clock 1000.0 10.0\nb 10.1 cpu 1 0 1 0 0 0 0 0\nb 10.6 cpu 9 0 1 0 0 0 0 0\n"
    added = json.loads(raw.add_server_cpu(text, log))
    assert added["netlab_cpu"]["server"] == {"before": "b 10.1 cpu 1 0 1 0 0 0 0 0",
                                             "after": "b 10.6 cpu 9 0 1 0 0 0 0 0"}
    assert raw.add_server_cpu(text, "") == text, "no log: the client's CPU alone"


# Where a process's own cgroup counts its CPU, as cpu._POD_FILE looks for it (in a pod: its container's).
POD_FILES = ["/sys/fs/cgroup/cpu.stat", "/sys/fs/cgroup/cpuacct/cpuacct.usage",
             "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"]


def test_both_ends_read_their_own_cgroup_beside_the_node(sample_name):
    """On this machine, as in a pod: the first readable of POD_FILES, read by both scripts, one cgroup."""
    readable = [path for path in POD_FILES if os.access(path, os.R_OK)]
    subprocess.run(cpu.sampler(sample_name, 30), capture_output=True, text=True, timeout=10, check=True)
    client = subprocess.run(cpu.around(["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]),
                            capture_output=True, text=True, timeout=30, check=True)
    log = subprocess.run(cpu.sampled(sample_name), capture_output=True, text=True, timeout=10, check=True).stdout
    readings, clocks, _ = cpu.split_stderr(client.stderr)
    server_pod = cpu.server_pod_readings(log, clocks)
    if not readable:
        assert "client_pod" not in readings and server_pod is None
        return
    per_second = 1_000_000 if readable[0].endswith("cpu.stat") else 1_000_000_000
    inode = str(os.stat(os.path.dirname(readable[0])).st_ino)
    (first, last) = readings["client_pod"]
    assert cpu.parse_pod(first)[::2] == cpu.parse_pod(last)[::2] == (inode, per_second)
    # The busy loop's CPU is in the client's cgroup's count (it is this machine's: at least the loop's).
    assert cpu.parse_pod(last)[1] > cpu.parse_pod(first)[1]
    assert [cpu.parse_pod(reading)[::2] for reading in server_pod] == [(inode, per_second)] * 2
    section = raw.cpu_section({**readings, "server": cpu.server_readings(log, clocks), "server_pod": server_pod})
    found = cpu.beside_pods(section)
    # One kernel, one cgroup: counted once; a share of the machine's CPUs.
    assert found is not None and set(found["nodes"]) == {"client"}
    assert 0 <= found["percent"] <= 100 * os.cpu_count()


def _reading(boot: str, uptime: float, user: int, system: int = 0, softirq: int = 0) -> str:
    return f"{boot} {uptime} cpu {user} 0 {system} 0 0 0 {softirq} 0 0 0"


def _section(client_pod: tuple[str, int, int], server_pod: tuple[str, int, int], server_boot: str = "b") -> dict:
    """Two seconds on each end: the client's node (boot b) 150 ticks of tasks and 80 of softirq; the server's 60."""
    return {
        "client": {"before": _reading("b", 10, 100, 50, 0), "after": _reading("b", 12, 200, 100, 80)},
        "server": {"before": _reading(server_boot, 10.1, 0), "after": _reading(server_boot, 12.1, 60)},
        "client_pod": {"before": f"{client_pod[0]} 0 1000000", "after": f"{client_pod[0]} {client_pod[1]} 1000000"},
        "server_pod": {"before": f"{server_pod[0]} 0 1000000000",
                       "after": f"{server_pod[0]} {server_pod[2]} 1000000000"},
    }


def test_beside_pods_is_each_nodes_task_cpu_less_the_tests_pods():
    # Two kernels: client node 1.5 s of tasks - 1.2 s of its pod over 2 s = 15 %; server 0.6 - 0.5 = 5 %.
    found = cpu.beside_pods(_section(("7", 1_200_000, 0), ("8", 0, 500_000_000), server_boot="s"))
    assert found == {"percent": 15.0, "nodes": {"client": 15.0, "server": 5.0}}
    # One kernel (a same-node test): both pods off the client's node: 1.5 - 1.2 - 0.2 = 0.1 s, 5 %.
    assert cpu.beside_pods(_section(("7", 1_200_000, 0), ("8", 0, 200_000_000))) == {"percent": 5.0,
                                                                                    "nodes": {"client": 5.0}}
    # One cgroup seen by both ends (the twin's pods are their node's container): counted once, 15 %.
    assert cpu.beside_pods(_section(("7", 1_200_000, 0), ("7", 0, 1_200_000_000)))["percent"] == 15.0
    # More pod CPU than the node's tasks (its interrupt work charged to the pod): none beside, not below 0.
    assert cpu.beside_pods(_section(("7", 1_600_000, 0), ("8", 0, 400_000_000)))["percent"] == 0.0


def test_beside_pods_needs_both_pods_and_nodes():
    whole = _section(("7", 1_200_000, 0), ("8", 0, 200_000_000))
    for key in ("client", "server", "client_pod", "server_pod"):
        assert cpu.beside_pods({k: v for k, v in whole.items() if k != key}) is None, key
    moved = {**whole, "client_pod": {"before": "7 0 1000000", "after": "9 5 1000000"}}
    assert cpu.beside_pods(moved) is None, "a pod restarted between its readings (another cgroup)"
    assert cpu.beside_pods(None) is None
    assert cpu.parse_pod("7 12 0") is None and cpu.parse_pod("x 1 2") is None and cpu.parse_pod("1 2") is None


def test_a_cluster_record_says_where_its_foreign_cpu_was_read():
    doc = {"tool": "netperf", "output": "", "rc": 0,
           "netlab_cpu": _section(("7", 1_200_000, 0), ("8", 0, 500_000_000), server_boot="s")}
    assert raw.foreign_fields(doc) == {"foreign_cpu_percent": 15.0, "foreign_on": "nodes", "disturbed": False,
                                       "reruns": 0}
