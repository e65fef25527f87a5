"""Shared fixtures: command outputs captured on this machine, in tests/data."""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def iperf3_json():
    def load(name: str) -> dict:
        return json.loads((DATA / f"iperf3-{name}.json").read_text())

    return load


@pytest.fixture
def data_dir() -> Path:
    return DATA
