#!/usr/bin/env python3
"""How long rebuilding a report takes for a run of many raw results, and at what peak memory.

Writes a synthetic run (the captured iperf3 3.18 outputs of tests/data with varied
throughput) to a temporary directory, then times run_report.write_reports on it.
Usage: python scripts/bench_report.py [N]   (default 10000 raw results)
"""

from __future__ import annotations

import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.netlab.lab.plugins.plugin_utils.report import run_report  # noqa: E402

FIXTURES = {"tcp": "iperf3-tcp-1.json", "tcp4": "iperf3-tcp-p4.json", "udp": "iperf3-udp.json"}


def make_run(run: Path, count: int) -> None:
    docs = {kind: json.loads((ROOT / "tests" / "data" / name).read_text()) for kind, name in FIXTURES.items()}
    captured = {kind: doc["end"]["sum_received"]["bits_per_second"] for kind, doc in docs.items()}
    scenarios = [f"s{i:02d}-{kind}" for i in range(20) for kind in FIXTURES]
    rng = random.Random(1)
    plan = []
    (run / "raw").mkdir(parents=True)
    for index in range(1, count + 1):
        scenario = scenarios[(index - 1) % len(scenarios)]
        kind = scenario.split("-")[1]
        test_id = f"{index:05d}-{scenario}"
        plan.append({"id": test_id, "scenario": scenario, "placement": "cross-node",
                     "protocol": "udp" if kind == "udp" else "tcp", "streams": 4 if kind == "tcp4" else 1})
        doc = docs[kind]
        # Within 10 % of the captured figure, so each scenario has a realistic spread.
        doc["end"]["sum_received"]["bits_per_second"] = captured[kind] * rng.uniform(0.9, 1.1)
        (run / "raw" / f"{test_id}.json").write_text(json.dumps(doc))
    meta = {"run_id": run.name, "provider": "local", "cni": "cilium", "settings": {}, "plan": plan}
    (run / "run.json").write_text(json.dumps(meta))


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "bench-run"
        make_run(run, count)
        size = sum(p.stat().st_size for p in (run / "raw").iterdir())
        print(f"raw results: {count} files, {size / 1e6:.1f} MB")
        for charts in (False, True):
            start = time.perf_counter()
            summary, problems = run_report.write_reports(run, charts=charts)
            elapsed = time.perf_counter() - start
            assert not problems and summary["complete"], problems
            # Memory in a second pass: tracemalloc slows Python down several times.
            tracemalloc.start()
            run_report.write_reports(run, charts=charts)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"write_reports (charts={charts}): {elapsed:.2f} s, "
                  f"peak Python heap {peak / 1e6:.1f} MB, {len(summary['results'])} scenarios")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
