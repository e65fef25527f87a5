#!/usr/bin/env python3
"""The benchmark engine's own cost per test on the running local lab, and the console it prints.

Runs ``site.yml --tags bench`` with short tests and reads the run folder: a test's raw file is
written as it ends, so the time between two raw files less the test's own iperf3 time (duration and
omit) is what the engine spent around that test (Ansible tasks, connections, server start, counter
reads, saving). Prints those figures and the console's line count; nothing is asserted here.

What keeps the figures trustworthy costs time too (issue 25): the lab's lock, the congestion control's read
and check, the watchdogs' start and stop (once per run, from ansible.posix.profile_tasks' timings, spread
over the run's tests), and the foreign CPU's two readings around each test (timed here, in this process, on
the lab's own cgroups). Their sum per test is printed beside the engine's figures; the target is under
0.6 s per test. ``--compare`` runs the plan twice, without and with the foreign CPU measured, and prints
both engines' figures. Needs root, podman and a running lab of the given CNI; run it from the repository:

    sudo env PATH=$PWD/.venv/bin:$PATH CONTAINERS_CONF=$PWD/containers.conf \\
        .venv/bin/python scripts/bench_engine.py --cni canal --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def overheads(run: Path, seconds_per_test: float) -> list[float]:
    """Engine seconds around each test after the first: raw-file gaps less the test's own length."""
    times = sorted(path.stat().st_mtime for path in (run / "raw").glob("*.json"))
    return [later - earlier - seconds_per_test for earlier, later in itertools.pairwise(times)]


# The tasks that make a run's figures trustworthy, once per run (issue 25): the lab's lock, the congestion
# control's read and check, the watchdogs' start and stop.
TRUST_TASKS = ("Take the lab's lock", "Read the TCP congestion control where each node's tests run",
               "Check that every node's kernel has the pinned congestion control",
               "Watch each benchmark node, for a run killed before its cleanup", "Stop the run's watchdogs")
PROFILED = re.compile(r"^(?:\S+ : )?(.+?) -+ +(\d+\.\d+)s$")


def task_seconds(stdout: str) -> dict[str, float]:
    """ansible.posix.profile_tasks' closing table: seconds per task name (a name seen twice: summed)."""
    seconds: dict[str, float] = {}
    for line in stdout.splitlines():
        found = PROFILED.match(line.strip())
        if found:
            seconds[found.group(1)] = seconds.get(found.group(1), 0.0) + float(found.group(2))
    return seconds


def meter_seconds(samples: int = 200) -> float | None:
    """Seconds of the foreign CPU's readings around one test (two samples and the figure), on the running lab's
    nodes' cgroups; None without a lab on this machine."""
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import foreign_cpu

    names = subprocess.run(["podman", "ps", "--filter", "name=^netlab-", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=False).stdout.split()
    cgroups = [subprocess.run(["podman", "inspect", "--format", "{{.State.CgroupPath}}", name], capture_output=True,
                              text=True, check=False).stdout.strip() for name in names]
    meter = foreign_cpu.Meter([cgroup for cgroup in cgroups if cgroup])
    if not meter.enabled:
        return None
    started = time.perf_counter()
    for _ in range(samples):
        foreign_cpu.figure(meter.sample(), meter.sample(), 10)
    return (time.perf_counter() - started) / samples


def run_once(cmd: list[str], results: Path, duration: int) -> dict:
    env = {**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "netlab.lab.bench_report,netlab.lab.lab_lock,"
                                                      "ansible.posix.profile_tasks",
           "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all", "PROFILE_TASKS_SORT_ORDER": "none"}
    print("+", " ".join(cmd), flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"the benchmark failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink() and (p / "run.json").exists()]
    tests = len(json.loads((run / "run.json").read_text())["plan"])
    gaps = overheads(run, duration)
    tasks = task_seconds(proc.stdout)
    trust = {name: round(tasks.get(name, 0.0) / tests, 3) for name in TRUST_TASKS}
    return {
        "tests": tests,
        "iperf3_seconds": tests * duration,
        "playbook_seconds": round(wall, 1),
        "engine_seconds_per_test_median": round(statistics.median(gaps), 3),
        "engine_seconds_per_test_mean": round(statistics.fmean(gaps), 3),
        "engine_seconds_per_test_max": round(max(gaps), 3),
        "console_lines": len(proc.stdout.splitlines()),
        "trust_seconds_per_test": trust,
        "run": str(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cni", choices=("canal", "cilium"), default="canal")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=1)
    # netserver ends a TCP_CRR test about 4 s after its duration: only the iperf3 tests last exactly
    # their duration, so by default only they are run and the gaps between raw files are the engine's.
    parser.add_argument("--all-tests", action="store_true", help="the whole reference matrix, netperf included")
    parser.add_argument("--compare", action="store_true",
                        help="run twice: without, then with the foreign CPU measured (no reruns either way)")
    args = parser.parse_args()
    figures = {}
    for measured in ((False, True) if args.compare else (True,)):
        results = Path(tempfile.mkdtemp(prefix="bench-engine-"))
        cmd = ["ansible-playbook", "site.yml", "--tags", "bench", "-e", f"cni={args.cni}",
               "-e", f"netlab_results_dir={results}", "-e", f"bench_duration={args.duration}",
               "-e", "bench_omit=0", "-e", f"bench_repeats={args.repeats}",
               "-e", f"bench_disturbed_percent={10 if measured else 0}", "-e", "bench_disturbed_reruns=0"]
        if not args.all_tests:
            cmd += ["-e", json.dumps({"bench_matrix": "{{ bench_reference_matrix"
                                      " | selectattr('protocol', 'in', ['tcp', 'udp']) | list }}"})]
        figures["measured" if measured else "not_measured"] = run_once(cmd, results, args.duration)
    meter = meter_seconds()
    trust = figures["measured"]["trust_seconds_per_test"]
    figures["foreign_cpu_readings_seconds_per_test"] = None if meter is None else round(meter, 6)
    figures["trust_seconds_per_test_total"] = round(sum(trust.values()) + (meter or 0.0), 3)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
