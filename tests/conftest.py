"""Shared fixtures: the captured iperf3 3.18 outputs in tests/data."""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def iperf3_json():
    def load(name: str) -> dict:
        return json.loads((DATA / f"iperf3-{name}.json").read_text())

    return load
