"""The run's watchdog (watchdog.py) and the node cleanup it runs (commands.node_cleanup), with real processes."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import watchdog


@pytest.fixture
def playbook():
    """A process in the role of ansible-playbook: the watchdog waits for its end."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def spec(tmp_path, proc, marker):
    return {"playbook": {"pid": proc.pid, "start": watchdog.start_time(proc.pid)}, "node": "node-1",
            "argv": ["sh", "-c", f"echo cleaned > {marker}"],
            "state_file": str(tmp_path / f"watch-{proc.pid}-node-1.json")}


def wait_for(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_the_watchdog_cleans_up_when_the_playbook_dies_then_exits(tmp_path, playbook, sig):
    marker = tmp_path / "cleaned"
    started = watchdog.spawn(spec(tmp_path, playbook, marker))
    assert watchdog.alive(started) and len(watchdog.state_files(tmp_path, playbook.pid)) == 1
    time.sleep(0.3)
    assert not marker.exists(), "nothing is cleaned while the playbook runs"
    playbook.send_signal(sig)
    playbook.wait()
    assert wait_for(marker.exists), "the cleanup ran once the playbook had died"
    assert wait_for(lambda: not watchdog.alive(started)), "then the watchdog exits"
    assert watchdog.state_files(tmp_path) == []


def test_a_disarmed_watchdog_never_cleans_up(tmp_path, playbook):
    marker = tmp_path / "cleaned"
    started = watchdog.spawn(spec(tmp_path, playbook, marker))
    assert watchdog.disarm(tmp_path, playbook.pid) == ["node-1"]
    assert not watchdog.alive(started) and watchdog.state_files(tmp_path) == []
    playbook.kill()
    playbook.wait()
    time.sleep(0.5)
    assert not marker.exists()


def test_a_next_run_waits_for_a_killed_runs_watchdogs(tmp_path, playbook):
    marker = tmp_path / "cleaned"
    slow = {**spec(tmp_path, playbook, marker), "argv": ["sh", "-c", f"sleep 1; echo cleaned > {marker}"]}
    watchdog.spawn(slow)
    playbook.kill()
    playbook.wait()
    started = time.monotonic()
    assert watchdog.wait_gone(tmp_path, playbook.pid) == []
    assert marker.exists() and 0.8 < time.monotonic() - started < 5


def test_a_watchdog_of_a_playbook_already_gone_cleans_up_at_once(tmp_path, playbook):
    marker = tmp_path / "cleaned"
    gone = spec(tmp_path, playbook, marker)
    playbook.kill()
    playbook.wait()
    watchdog.spawn(gone)
    assert wait_for(marker.exists)


def test_the_node_cleanup_kills_every_marked_process_and_nothing_else(tmp_path, monkeypatch):
    """As on a node: a server under its timeout and a client, both marked, and a process of someone else's."""
    mark = f"NETLAB_TEST_{uuid.uuid4().hex}=1"
    monkeypatch.setattr(commands, "RUN_MARK", mark)
    monkeypatch.setattr(commands, "pidfile", lambda program, name: str(tmp_path / f"netlab-{program}-{name}.pid"))
    (tmp_path / "netlab-iperf3-pod0.pid").write_text("1\n")
    server = subprocess.Popen(commands.marked(["setsid", "timeout", "60", "sleep", "60"]))
    client = subprocess.Popen(commands.marked(["sh", "-c", "sleep 60; true"]))
    other = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.3)
        done = subprocess.run(commands.node_cleanup([["sh", "-c", f"echo deleted > {tmp_path / 'svc'}"]]),
                              capture_output=True, timeout=20)
        assert done.returncode == 0, done.stderr
        assert server.wait(5) == -signal.SIGKILL and client.wait(5) == -signal.SIGKILL
        marked_left = [pid for pid in os.listdir("/proc") if pid.isdigit()
                       and mark.encode() in _environ(pid)]
        assert marked_left == [], "the timeout's child too"
        assert other.poll() is None
        assert not (tmp_path / "netlab-iperf3-pod0.pid").exists() and (tmp_path / "svc").read_text() == "deleted\n"
    finally:
        for proc in (server, client, other):
            proc.kill()
            proc.wait()


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as env:
            return env.read().split(b"\0")
    except OSError:
        return []


def test_watched_gives_each_node_its_cleanup_and_its_own_service_delete():
    nodes = commands.watched(["a", "b"], [{"host": "b", "argv": ["netlab-datapath", "service-del", "svc"]}])
    assert [n["host"] for n in nodes] == ["a", "b"]
    assert "service-del" not in nodes[0]["argv"][2] and "netlab-datapath service-del svc" in nodes[1]["argv"][2]
    assert commands.RUN_MARK in nodes[0]["argv"][2] and "/run/netlab-iperf3-*.pid" in nodes[0]["argv"][2]
