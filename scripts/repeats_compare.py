#!/usr/bin/env python3
"""Fixed three repeats against bench_repeats auto on the running local lab, idle and beside a bounded load.

Four runs of the same matrix on the same lab: ``bench_repeats=3`` and ``bench_repeats=auto`` (3 to
``--max`` rounds, target ``--target`` % of the median), each on the idle machine and beside a load of
``--load`` busy processes (each a loop that ends with the run, or after ``--load-seconds`` at most). Prints,
per test and run, how many repeats ran and the width of the median's interval (the one the auto rule stops on:
75 %, plan/repeats.py), and each run's wall time. The foreign CPU's reruns are off (bench_disturbed_percent=0):
the comparison is of the repeats' rule alone. Nothing is asserted. Needs root, podman and a running lab:

    sudo env PATH=$PWD/.venv/bin:$PATH CONTAINERS_CONF=$PWD/containers.conf \\
        .venv/bin/python scripts/repeats_compare.py --cni canal
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import repeats  # noqa: E402

LOAD = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def one_run(args: argparse.Namespace, mode: str, load: int) -> dict:
    results = Path(tempfile.mkdtemp(prefix="repeats-compare-"))
    cmd = ["ansible-playbook", "site.yml", "--tags", "bench", "-e", f"cni={args.cni}",
           "-e", f"netlab_results_dir={results}", "-e", f"bench_duration={args.duration}", "-e", "bench_omit=0",
           "-e", f"bench_repeats={mode}", "-e", f"bench_max_repeats={args.max}",
           "-e", f"bench_target_ci_percent={args.target}", "-e", "bench_disturbed_percent=0",
           "-e", json.dumps({"bench_matrix": "{{ bench_reference_matrix | selectattr('protocol', 'in', "
                                             "['tcp', 'tcp_rr']) | list }}"})]
    busy = [subprocess.Popen([sys.executable, "-c", LOAD.format(seconds=args.load_seconds)]) for _ in range(load)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    for one in busy:
        one.kill()
        one.wait()
    if proc.returncode != 0:
        sys.exit(f"the run failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    (run,) = [p for p in results.iterdir() if not p.is_symlink() and (p / "run.json").exists()]
    summary = json.loads((run / "summary.json").read_text())
    tests = {r["scenario"]: {"repeats": r["repeats"], "width": repeats.width_percent(r["values"])}
             for r in summary["results"]}
    return {"wall": wall, "tests": tests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cni", choices=("canal", "cilium"), default="canal")
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--max", type=int, default=7)
    parser.add_argument("--target", type=int, default=5)
    parser.add_argument("--load", type=int, default=1, help="busy processes beside the loaded runs")
    parser.add_argument("--load-seconds", type=int, default=900, help="the load's own bound")
    args = parser.parse_args()
    runs = {(mode, load): one_run(args, mode, load) for load in (0, args.load) for mode in ("3", "auto")}
    names = list(runs["3", 0]["tests"])
    head = " | ".join(f"{'fixed 3' if mode == '3' else 'auto'} {'loaded' if load else 'idle'}" for mode, load in runs)
    print(f"| test | {head} |")
    print("|---" * (len(runs) + 1) + "|")
    for name in names:
        cells = []
        for got in runs.values():
            test = got["tests"].get(name) or {}
            width = test.get("width")
            cells.append(f"{test.get('repeats', '-')} rep, {'-' if width is None else f'{width:.1f}'} %")
        print(f"| {name} | {' | '.join(cells)} |")
    walls = " | ".join(f"{got['wall']:.0f} s" for got in runs.values())
    print(f"| run time | {walls} |")


if __name__ == "__main__":
    main()
