"""Fixtures shared by the integration tests: the controller's login key for the twin's nodes, and the
readers of what a playbook run leaves (its PLAY RECAP, the newest run's summary)."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from netlab_twin import session_key


@pytest.fixture(scope="session")
def key(tmp_path_factory):
    """(private key path, public key) the lab's VMs get as their cloud-init key."""
    return session_key(tmp_path_factory.mktemp("lab-key"))


@pytest.fixture(scope="session")
def recap() -> Callable[[str], dict[str, dict[str, int]]]:
    """The PLAY RECAP counters per host of an ansible-playbook output: recap(proc.stdout)[host]["changed"]."""

    def counters(stdout: str) -> dict[str, dict[str, int]]:
        return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
                for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", stdout, re.MULTILINE)}

    return counters


@pytest.fixture(scope="session")
def short_bench() -> list[str]:
    """Extra vars of a short benchmark: its figures are checked for being real, not for being precise."""
    return ["-e", "bench_duration=1", "-e", "bench_omit=0", "-e", "bench_repeats=1"]


@pytest.fixture(scope="session")
def latest_summary() -> Callable[[Path], dict]:
    """summary.json of the newest run (results/latest) in a results directory."""
    return lambda results_dir: json.loads((Path(results_dir) / "latest" / "summary.json").read_text())
