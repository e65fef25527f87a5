"""How the integration tests call site.yml: the command line, extra vars as JSON, a matrix entry.
Shared by the local lab's tests (local_lab/lab_checks.py) and the bad inputs (test_bad_inputs.py)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def playbook_cmd(results_dir: Path, *args: str) -> list[str]:
    """site.yml with its results in results_dir. The local lab's tests share the machine with make test's other
    lane: nothing would be calm, so their runs do not measure foreign CPU (bench_disturbed_percent=0), and they
    run a known number of repeats (3, not the local lab's auto) unless they say otherwise (a later -e wins)."""
    return ["ansible-playbook", "site.yml", "-e", f"netlab_results_dir={results_dir}",
            "-e", "bench_disturbed_percent=0", "-e", "bench_repeats=3", *args]


def extra(**values) -> list[str]:
    return ["-e", json.dumps(values)]


def entry(**changes) -> dict:
    return {"name": "t", "placement": "cross-node", **changes}
