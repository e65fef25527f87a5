"""Nothing left running after a kill: a bench interrupted at three points, by a kill -9 of ansible-playbook
alone (its workers run in sessions of their own) or by a Ctrl-C (SIGINT to its process group, as a terminal
sends it), and what of the run still runs afterwards on the controller and on the nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lab_checks import podman

# An iperf3 and a netperf test across nodes: the run starts both servers and the CPU reader.
MATRIX = ["cross-node-tcp-1", "cross-node-tcp-rr"]
NODES = ["netlab-agent-1", "netlab-agent-2"]
# The bound: within 10 s of the kill no process of the run is left.
BOUND = 10.0
# In the environment of the test's ansible-playbook, and so of every process it starts on the controller
# (workers, ssh clients and masters, the watchdogs).
MARK = "NETLAB_KILL_TEST"
TASK = "TASK [bench : {}]"


def _servers_up(log: str, run: Path | None) -> bool:
    return TASK.format("Run the tests on each client node") in log


def _under_way(log: str, run: Path | None) -> bool:
    return run is not None and any((run / "raw").glob("[!.]*.json"))


def _cleaning_up(log: str, run: Path | None) -> bool:
    return TASK.format("Delete the run's Service from the datapath model") in log


# Where a run is stopped: its servers just started (the first test starting), its second test under way,
# its cleanup begun.
POINTS = {"servers up": _servers_up, "a test under way": _under_way, "cleanup begun": _cleaning_up}
SIGNALS = {"kill -9": signal.SIGKILL, "Ctrl-C": signal.SIGINT}


@dataclass
class Killed:
    point: str
    signal: str
    seconds: float | None  # from the signal until nothing of the run ran; None: still something at the bound
    left: list[str]  # what still ran at the bound
    reached: bool  # the run got to its point (not ended or failed before)
    log: str
    run: Path | None


def controller_left(mark: str) -> list[str]:
    """The controller's processes with the run's mark in their environment."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mark.encode() in environ:
            left.append(f"controller {pid} {cmdline[:160]}")
    return left


# On a node: every process the run marked, and any iperf3, netserver or netperf at all.
NODE_SCAN = ('for p in /proc/[0-9]*; do if grep -qsxzF NETLAB_BENCH_RUN=1 "$p/environ" '
             '|| grep -qsxE "iperf3|netserver|netperf" "$p/comm"; then '
             'echo "${p#/proc/} $(tr "\\0\\n" "  " < "$p/cmdline" 2>/dev/null | cut -c1-160)"; fi; done')


def nodes_left() -> list[str]:
    left = []
    for name in NODES:
        out = podman("exec", name, "sh", "-c", NODE_SCAN, check=False)
        left += [f"{name} {line}" for line in out.splitlines() if line.strip()]
    return left


def kill_run(cmd: list[str], cwd: Path, env: dict[str, str], results_dir: Path, point: str, sig: str,
             log: Path) -> Killed:
    """Start cmd, stop it with sig once POINTS[point] holds, and watch for BOUND s what of it is left."""
    mark = f"{MARK}={uuid.uuid4().hex}"
    name, value = mark.split("=")
    known = set(results_dir.iterdir())
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env={**env, name: value}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    run, reached = None, False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        new = [p for p in set(results_dir.iterdir()) - known if not p.is_symlink()]
        run = new[0] if new else None
        if POINTS[point](log.read_text(), run):
            reached = True
            break
        time.sleep(0.1)
    if point == "a test under way":
        time.sleep(0.3)  # the next test's client has started
    if proc.poll() is None:
        if SIGNALS[sig] == signal.SIGKILL:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGINT)
    killed = time.monotonic()
    seconds, left = None, []
    while time.monotonic() - killed <= BOUND:
        proc.poll()
        left = controller_left(mark) + nodes_left()
        if not left:
            seconds = time.monotonic() - killed
            break
        time.sleep(0.25)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # Still there a minute on: end it, so that its lab lock does not fail the tests after this one; the
        # caller's checks fail on what was left.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return Killed(point, sig, seconds, left, reached, log.read_text(), run)
