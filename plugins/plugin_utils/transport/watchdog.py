"""The run's watchdog: nothing a run started on a node stays there when ansible-playbook dies.

A kill -9 or a Ctrl-C ends ansible-playbook without its cleanup tasks, and the run's servers (iperf3,
netserver, the /proc/stat reader) and the client of the test under way would run on, for as long as their
own timeout. So the bench role starts, before it starts anything on the nodes, one watchdog per node
(netlab.lab.bench_watch): a process of its own session on the controller, which waits for the
ansible-playbook it serves to end (a pidfd: no polling, no pid reuse), then runs the node's cleanup through
the node's connection (commands.node_cleanup: every process the run marked, killed) and exits. The run's
own cleanup tasks stop it first (``disarm``) once they have stopped the servers: a watchdog never acts
after a run that ended on its own, so it never touches the next run. A next run that takes over the lab's
lock from a killed run waits for that run's watchdogs (``wait_gone``).

Its state file (``watch-<playbook pid>-<node>.json`` in the lock directory) names it. The file runs as a
script (stdlib only), its spec as JSON on stdin: ``{playbook: {pid, start}, argv, timeout, state_file}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# A node's cleanup (an ssh and a kill) gets this long; the bound for a run's leftovers is 10 s.
CLEANUP_SECONDS = 8
# How long a next run waits for a killed run's watchdogs, and a run's cleanup for its own to stop.
WAIT_SECONDS = 15


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), None when it is gone
    or has ended (a zombie its parent has not reaped yet): with the pid, what names one process for good."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def alive(process: dict[str, Any]) -> bool:
    start = start_time(int(process["pid"]))
    return start is not None and start == process.get("start")


def state_files(directory: Path, playbook_pid: int | None = None) -> list[Path]:
    return sorted(directory.glob(f"watch-{playbook_pid if playbook_pid is not None else '*'}-*.json"))


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def spawn(spec: dict[str, Any], ready_seconds: float = 5.0) -> dict[str, Any]:
    """Start a watchdog in a session of its own; return its state once it watches (it said so on stdout)."""
    proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    ready, _, _ = select.select([proc.stdout], [], [], ready_seconds)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if not line.startswith(b"watching"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the watchdog did not start (it said {line.decode(errors='replace').strip()!r})")
    return {"pid": proc.pid, "start": start_time(proc.pid)}


def disarm(directory: Path, playbook_pid: int, seconds: float = WAIT_SECONDS) -> list[str]:
    """Stop this playbook's watchdogs without their cleanup (the run's own has run); the nodes they watched."""
    stopped = []
    for path in state_files(directory, playbook_pid):
        state = read_state(path)
        if state and alive(state):
            os.kill(state["pid"], signal.SIGTERM)
            stopped.append(state)
    # A watchdog removes its state file before it exits: wait for the processes themselves.
    deadline = time.monotonic() + seconds
    while any(alive(state) for state in stopped) and time.monotonic() < deadline:
        time.sleep(0.05)
    wait_gone(directory, playbook_pid, max(0.0, deadline - time.monotonic()))
    return [str(state.get("node")) for state in stopped]


def wait_gone(directory: Path, playbook_pid: int, seconds: float = WAIT_SECONDS) -> list[str]:
    """Wait until none of a playbook's watchdogs runs; the nodes of those still running after ``seconds``
    (their state files are then removed: a watchdog that hangs is not waited for twice)."""
    deadline = time.monotonic() + seconds
    while True:
        left = [(path, state) for path in state_files(directory, playbook_pid)
                if (state := read_state(path)) and alive(state)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for path in state_files(directory, playbook_pid):
        path.unlink(missing_ok=True)
    return [str(state.get("node")) for _, state in left]


def _watch(spec: dict[str, Any]) -> int:
    state_file = Path(spec["state_file"])
    playbook = spec["playbook"]

    def forget(*_: Any) -> None:
        state_file.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, forget)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the run is what it waits for, not its end
    try:
        pidfd = os.pidfd_open(int(playbook["pid"]))
    except OSError:
        pidfd = None
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"pid": os.getpid(), "start": start_time(os.getpid()),
                                      "node": spec.get("node"), "playbook": playbook}) + "\n")
    sys.stdout.write("watching\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    if pidfd is not None and alive(playbook):
        select.select([pidfd], [], [])  # readable once the process has ended
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(spec["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=spec.get("timeout", CLEANUP_SECONDS), check=False)
    state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(json.loads(sys.stdin.read())))
