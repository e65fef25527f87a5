"""Two test lanes on one machine: the timing lock between them, and commands that leave nothing running when a
test run is interrupted.

`make test` runs the local lab's tests (lane A, which holds the only timing-sensitive asserts) beside the rest
(lane B) and names a lock file in NETLAB_TIMING_LOCK. Lane A holds it exclusively while one of its
timing-sensitive playbooks runs its benchmark task; every playbook of lane B, molecule's included, holds it
shared for each of its tasks, so lane B pauses between two tasks while lane A measures. The callback plugin
netlab_twin/callback_plugins/netlab_timing.py does both, as NETLAB_TIMING_ROLE says. Without
NETLAB_TIMING_LOCK (one pytest run alone) the lock is not taken.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

LOCK_ENV = "NETLAB_TIMING_LOCK"
# What a playbook does with the lock: "measure" (exclusive while it measures) or "yield" (shared per task).
ROLE_ENV = "NETLAB_TIMING_ROLE"
# Where Ansible finds the callback plugin that takes the lock.
CALLBACK_PLUGINS = str(Path(__file__).parent / "callback_plugins")
# Seconds a command has after SIGTERM before its process group is killed.
GRACE = 10
# Where run() notes each command's seconds (scripts/test_lanes.py names one per lane and sums them up).
RUN_LOG_ENV = "NETLAB_RUN_LOG"


class TimingLock:
    """The lock file named in NETLAB_TIMING_LOCK, taken and given back around a task."""

    def __init__(self) -> None:
        self.path = os.environ.get(LOCK_ENV, "")
        self._file: IO[str] | None = None

    def take(self, shared: bool) -> None:
        """Wait for the lock, shared or exclusive; no-op without NETLAB_TIMING_LOCK or when already held."""
        if not self.path or self._file:
            return
        # A turnstile first: while lane A waits for the lock, lane B's next task waits at the turnstile, so
        # back-to-back shared holders cannot keep lane A out.
        with open(self.path + ".turnstile", "a") as turnstile:
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            lock = open(self.path, "a")  # noqa: SIM115 (held until give_back)
            try:
                fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            except BaseException:
                lock.close()
                raise
            self._file = lock

    def give_back(self) -> None:
        if self._file:
            self._file.close()  # closing the file releases the lock
            self._file = None


def run(cmd: Sequence[str], timeout: float | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, check=False), in a process group of its own that
    is stopped as a whole (SIGTERM, then SIGKILL after GRACE seconds) when the caller is interrupted or the
    timeout passes: an ansible-playbook's workers and the podman, ssh and iperf3 they started go with it,
    instead of running on against a lab the test session is removing."""
    started = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          **kwargs) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:  # KeyboardInterrupt (SIGTERM, see tests/conftest.py) and TimeoutExpired alike
            stop(proc)
            raise
        note_run(cmd, time.monotonic() - started, proc.returncode)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def note_run(cmd: Sequence[str], seconds: float, returncode: int) -> None:
    """One line per command in the file NETLAB_RUN_LOG names (none without it): its seconds, exit status, the
    test that ran it (pytest's PYTEST_CURRENT_TEST) and the command, tab-separated."""
    log_file = os.environ.get(RUN_LOG_ENV)
    if not log_file:
        return
    # "tests/integration/test_x.py::test_y[a/b] (call)": the file's name, then the test's.
    test_file, colons, test_name = os.environ.get("PYTEST_CURRENT_TEST", "").partition("::")
    test = test_file.rsplit("/", 1)[-1] + colons + test_name
    command = " ".join(" ".join(map(str, cmd)).split())[:400]  # one line: a script's newlines and tabs go
    line = "\t".join([f"{seconds:.1f}", str(returncode), test, command])
    with open(log_file, "a") as log:
        log.write(line + "\n")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and everything it started."""
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def alive(pid: int) -> bool:
    """Whether a process of this pid runs on this host (a crashed twin's leftovers carry a dead one)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
