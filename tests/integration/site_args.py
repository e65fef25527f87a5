"""How the integration tests call site.yml: the command line, extra vars as JSON, a matrix entry.
Shared by the local lab's tests (local_lab/lab_checks.py) and the bad inputs (test_bad_inputs.py)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def playbook_cmd(results_dir: Path, *args: str) -> list[str]:
    return ["ansible-playbook", "site.yml", "-e", f"netlab_results_dir={results_dir}", *args]


def extra(**values) -> list[str]:
    return ["-e", json.dumps(values)]


def entry(**changes) -> dict:
    return {"name": "t", "placement": "cross-node", **changes}
