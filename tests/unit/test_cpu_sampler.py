"""The Kubernetes transport's server-side CPU sampler (review F5), run by a real shell on this machine: its
readings around the client's, matched on the wall clock, give both ends the same window."""

import json
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
