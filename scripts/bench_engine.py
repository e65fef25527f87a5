#!/usr/bin/env python3
"""The benchmark engine's own cost per test on the running local lab, and the console it prints.

Runs ``site.yml --tags bench`` with short tests and reads the run folder: a test's raw file is
written as it ends, so the time between two raw files less the test's own iperf3 time (duration and
omit) is what the engine spent around that test (Ansible tasks, connections, server start, counter
reads, saving). Prints those figures and the console's line count; nothing is asserted here.
Needs root, podman and a running lab of the given CNI; run it from the repository:

    sudo env PATH=$PWD/.venv/bin:$PATH CONTAINERS_CONF=$PWD/containers.conf \\
        .venv/bin/python scripts/bench_engine.py --cni canal --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cni", choices=("canal", "cilium"), default="canal")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=1)
    # netserver ends a TCP_CRR test about 4 s after its duration: only the iperf3 tests last exactly
    # their duration, so by default only they are run and the gaps between raw files are the engine's.
    parser.add_argument("--all-tests", action="store_true", help="the whole reference matrix, netperf included")
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    cmd = ["ansible-playbook", "site.yml", "--tags", "bench", "-e", f"cni={args.cni}",
           "-e", f"netlab_results_dir={results}", "-e", f"bench_duration={args.duration}",
           "-e", "bench_omit=0", "-e", f"bench_repeats={args.repeats}"]
    if not args.all_tests:
        cmd += ["-e", json.dumps({"bench_matrix": "{{ bench_reference_matrix"
                                  " | selectattr('protocol', 'in', ['tcp', 'udp']) | list }}"})]
    print("+", " ".join(cmd), flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"the benchmark failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink() and (p / "run.json").exists()]
    tests = len(json.loads((run / "run.json").read_text())["plan"])
    gaps = overheads(run, args.duration)
    print(json.dumps({
        "tests": tests,
        "iperf3_seconds": tests * args.duration,
        "playbook_seconds": round(wall, 1),
        "engine_seconds_per_test_median": round(statistics.median(gaps), 3),
        "engine_seconds_per_test_mean": round(statistics.fmean(gaps), 3),
        "engine_seconds_per_test_max": round(max(gaps), 3),
        "console_lines": len(proc.stdout.splitlines()),
        "run": str(run),
    }, indent=2))


if __name__ == "__main__":
    main()
