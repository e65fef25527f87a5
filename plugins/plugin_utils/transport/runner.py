"""The tests of a run, one after another, whichever transport runs each client: the loop both benchmark
actions share (plugins/action/bench_local.py, bench_kube.py).

Each test's client is tried again while its output says the server is busy with the previous test or not
listening yet (its bounds' retries and delay); its raw file is written before the next test starts, so an
interrupted run keeps every finished test; one line per finished test is shown. ansible-core's worker runs in
a session of its own, so a kill -9 of ansible-playbook would leave it running the tests on, blocked at its
end writing to a queue nobody reads: the kernel kills it when ansible-playbook dies (PR_SET_PDEATHSIG), and
the run's watchdog (watchdog.py) stops what it started on the nodes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw

# A client's outcome: ``{stdout, stderr, rc, msg}`` (rc None or missing: it has no exit code).
Outcome = dict[str, Any]


def retried(test: dict[str, Any], run_once: Callable[[], Outcome]) -> Outcome:
    """``run_once``'s outcome, tried again while the test's server is busy or not listening yet."""
    tries_left = test["bounds"]["retries"]
    while True:
        done = run_once()
        if tries_left == 0 or not matrix.retryable(done.get("stdout"), done.get("stderr")):
            return done
        tries_left -= 1
        time.sleep(test["bounds"]["delay"])


# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Have the kernel kill this process (SIGKILL) when its parent, ansible-playbook, dies; whether the
    parent is still the one it was (it may have died just before)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    return os.getppid() == parent and parent != 1


def run_tests(tests: list[dict[str, Any]], run_one: Callable[[dict[str, Any]], Outcome], raw_dir: Path,
              show: Callable[[str], None],
              may_start: Callable[[dict[str, Any]], bool] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The tests that ran, and the ids of those whose client failed (no exit code, or not 0). ``may_start``,
    asked before each test, stops the run when it says no (the Kubernetes transport's Lease was lost)."""
    playbook = os.getppid()
    ran: list[dict[str, Any]] = []
    failed: list[str] = []
    if not die_with_parent():
        return ran, failed
    for test in tests:
        if os.getppid() != playbook or (may_start and not may_start(test)):
            break
        done = retried(test, lambda test=test: run_one(test))
        if os.getppid() != playbook:
            break
        rc = done.get("rc", 1)
        document = raw.document(done.get("stdout"), done.get("stderr"), rc, done.get("msg", ""),
                                node=test["exec_host"], tool=test.get("tool", "iperf3"))
        files.atomic_write(raw_dir / f"{test['id']}.json", document + "\n")
        show(raw.test_line(test, document))
        ran.append(test)
        if rc != 0:
            failed.append(test["id"])
    return ran, failed
