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
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import foreign_cpu

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


@dataclass
class Disturbance:
    """The local lab's foreign CPU around each test (foreign_cpu.py): a repeat above ``percent`` of one core is
    kept aside as disturbed and run again at the end of its round, at most ``reruns`` times."""

    meter: foreign_cpu.Meter
    percent: float
    reruns: int


def rounds(tests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The plan's rounds, in order: its tests grouped by repeat (the plan interleaves them, matrix.build_plan)."""
    grouped: list[list[dict[str, Any]]] = []
    for test in tests:
        if not grouped or grouped[-1][-1].get("repeat") != test.get("repeat"):
            grouped.append([])
        grouped[-1].append(test)
    return grouped


def earlier_figures(test: dict[str, Any], raw_dir: Path) -> list[float]:
    """The figures of a test's earlier rounds, from their raw files, as its statistics would use them."""
    records = []
    for path in raw_dir.glob("[!.]*.json"):
        found = matrix.TEST_ID.match(path.stem)
        if found and found["scenario"] == test["scenario"] and int(found["repeat"]) < test["repeat"]:
            try:
                records.append(raw.parse_raw(json.loads(path.read_text())))
            except (OSError, ValueError):
                continue
    return [repeats.figure(record) for record in repeats.usable(records)]


def run_tests(tests: list[dict[str, Any]], run_one: Callable[[dict[str, Any]], Outcome], raw_dir: Path,
              show: Callable[[str], None],
              may_start: Callable[[dict[str, Any]], bool] | None = None,
              disturbance: Disturbance | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The tests that ran, and the ids of those whose client failed (no exit code, or not 0). ``may_start``,
    asked before each test, stops the run when it says no (the Kubernetes transport's Lease was lost).

    With ``disturbance`` each test's foreign CPU is kept in its raw file (``netlab_foreign_cpu``); a repeat
    that succeeded above the threshold is written to ``raw/disturbed/<id>.<n>.json`` instead and run again
    once the rest of its round has run, until it is not disturbed or has been run again ``reruns`` times
    (the last one is then kept as it is, marked disturbed). A run killed meanwhile keeps the disturbed files;
    a resume runs the test again, as it has no raw file. A test of an auto run's later round (``stop``) runs
    only while its earlier repeats do not know its median to the target (repeats.needed); else it is left out."""
    playbook = os.getppid()
    ran: list[dict[str, Any]] = []
    failed: list[str] = []
    if not die_with_parent():
        return ran, failed
    for round_tests in rounds(tests):
        queue, reruns = list(round_tests), dict.fromkeys((t["id"] for t in round_tests), 0)
        while queue:
            test = queue.pop(0)
            if os.getppid() != playbook or (may_start and not may_start(test)):
                return ran, failed
            if test.get("stop") and not repeats.needed(test["repeat"], earlier_figures(test, raw_dir),
                                                       {"repeats": repeats.AUTO, **test["stop"]}):
                show(f"{test['index']}/{test['total']} {test['scenario']} r{test['repeat']}: not needed, its "
                     f"median is known to {test['stop']['target_ci_percent']} %")
                continue
            before = disturbance.meter.sample() if disturbance else None
            done = retried(test, lambda test=test: run_one(test))
            after = disturbance.meter.sample() if disturbance else None
            if os.getppid() != playbook:
                return ran, failed
            rc = done.get("rc", 1)
            document = raw.document(done.get("stdout"), done.get("stderr"), rc, done.get("msg", ""),
                                    node=test["exec_host"], tool=test.get("tool", "iperf3"))
            found = foreign_cpu.figure(before, after, disturbance.percent) if disturbance else None
            if found:
                document = raw.with_foreign(document, {**found, "reruns": reruns[test["id"]]})
            if found and found["disturbed"] and rc == 0 and reruns[test["id"]] < disturbance.reruns:
                reruns[test["id"]] += 1
                (raw_dir / "disturbed").mkdir(parents=True, exist_ok=True)
                files.atomic_write(raw_dir / "disturbed" / f"{test['id']}.{reruns[test['id']]}.json", document + "\n")
                show(f"{raw.test_line(test, document)}: disturbed ({found['percent']:.0f} % of a core used beside "
                     "it), run again at the end of its round")
                queue.append(test)
                continue
            files.atomic_write(raw_dir / f"{test['id']}.json", document + "\n")
            show(raw.test_line(test, document))
            ran.append(test)
            if rc != 0:
                failed.append(test["id"])
    return ran, failed
