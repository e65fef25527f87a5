"""Shared fixtures: command outputs captured on the development machine (tests/data/SOURCES.md).

And SIGTERM as an interruption: a test run stopped by SIGTERM (make's, CI's, a timeout's) runs its
fixtures' teardowns, as on Ctrl-C, so that no lab node, twin guest or podman network of it is left for
the next run."""

import json
import signal
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pytest_configure(config):
    def interrupt(signum, frame):
        # Once: a second SIGTERM must not break off the teardowns the first one started.
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture
def iperf3_json():
    def load(name: str) -> dict:
        return json.loads((DATA / f"iperf3-{name}.json").read_text())

    return load


@pytest.fixture
def data_dir() -> Path:
    return DATA
