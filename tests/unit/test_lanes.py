"""make test's lanes: each command run through netlab_twin.lanes.run is noted, and each lane's notes summed up."""

import importlib.util
import sys
from pathlib import Path

from netlab_twin import lanes

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("test_lanes_script", ROOT / "scripts" / "test_lanes.py")
test_lanes = importlib.util.module_from_spec(_SPEC)
sys.modules["test_lanes_script"] = test_lanes
_SPEC.loader.exec_module(test_lanes)


def test_each_command_is_noted_on_one_line_with_its_test(tmp_path, monkeypatch):
    log = tmp_path / "runs-A.tsv"
    monkeypatch.chdir(tmp_path)  # a note written anywhere but the log would land here
    monkeypatch.setenv(lanes.RUN_LOG_ENV, str(log))
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/integration/test_real_lab.py::test_a[cilium/native] (setup)")
    assert lanes.run(["sh", "-c", "echo a\n\texit 3"]).returncode == 3
    assert lanes.run(["true"]).returncode == 0
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    assert [row[1:] for row in rows] == [
        ["3", "test_real_lab.py::test_a[cilium/native] (setup)", "sh -c echo a exit 3"],
        ["0", "test_real_lab.py::test_a[cilium/native] (setup)", "true"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs-A.tsv"]
    summary = test_lanes.runs_summary("A", log)
    assert summary.splitlines()[0].startswith("lane A: 2 commands (ansible-playbook and the like) took 0m0")


def test_nothing_is_noted_without_a_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(lanes.RUN_LOG_ENV, raising=False)
    lanes.run(["true"])
    assert list(tmp_path.iterdir()) == []
    assert test_lanes.runs_summary("B", tmp_path / "runs-B.tsv") == "lane B: no command noted"
