"""The tests of a run one after another (plugin_utils/transport/runner.py), as both benchmark actions run them."""

import json

from test_matrix import BUSY

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import runner

BOUNDS = {"retries": 2, "delay": 0}


def planned(index, name):
    return {"id": f"{index:04d}-{name}-r1", "index": index, "total": 2, "scenario": name, "repeat": 1,
            "exec_host": None, "tool": "iperf3", "bounds": BOUNDS}


def test_a_busy_server_is_tried_again_and_each_raw_file_is_kept_as_its_test_ends(tmp_path):
    answers = {"0001-a-r1": [{"stdout": BUSY, "stderr": "", "rc": 1}, {"stdout": "{}", "stderr": "", "rc": 0}],
               "0002-b-r1": [{"stdout": "", "stderr": "", "rc": None, "msg": "the exec stream ended"}]}
    calls, shown = [], []

    def run_one(t):
        calls.append(t["id"])
        return answers[t["id"]].pop(0)

    ran, failed = runner.run_tests([planned(1, "a"), planned(2, "b")], run_one, tmp_path, shown.append)
    assert calls == ["0001-a-r1", "0001-a-r1", "0002-b-r1"]
    assert [t["id"] for t in ran] == ["0001-a-r1", "0002-b-r1"] and failed == ["0002-b-r1"]
    assert json.loads((tmp_path / "0002-b-r1.json").read_text())["error"].startswith("no output")
    assert len(shown) == 2 and "FAILED" in shown[1]


def test_retries_end_at_the_bound():
    outcomes = []

    def busy():
        outcomes.append(1)
        return {"stdout": BUSY, "stderr": "", "rc": 1}

    assert runner.retried(planned(1, "a"), busy)["rc"] == 1 and len(outcomes) == 3


class FakeMeter:
    """foreign_cpu.Meter's samples as a script of foreign CPU: each test's window 1 s, ``percents`` in turn."""

    enabled = True

    def __init__(self, percents):
        self.percents, self.clock = list(percents), 0.0
        self.busy = self.lab = 0.0
        self.started = False

    def sample(self):
        if self.started:  # the end of a window: it had the next scripted foreign CPU
            self.clock += 1
            self.busy += self.percents.pop(0) / 100
        self.started = not self.started
        return {"wall": self.clock, "busy": self.busy, "lab": self.lab}


def rounds_plan(names, repeats):
    return [{**planned(i, name), "id": f"{i:04d}-{name}-r{repeat}", "repeat": repeat}
            for i, (repeat, name) in enumerate(((r, n) for r in range(1, repeats + 1) for n in names), 1)]


def test_a_disturbed_repeat_is_kept_aside_and_run_again_at_the_end_of_its_round(tmp_path):
    calls, shown = [], []

    def run_one(t):
        calls.append(t["id"])
        return {"stdout": "{}", "stderr": "", "rc": 0}

    # Round 1: a disturbed (40 %), b calm, a again calm. Round 2: a calm, b disturbed three times: its
    # second rerun is the bound, and is kept as it is, marked.
    meter = FakeMeter([40, 2, 3, 1, 50, 60, 70])
    disturbance = runner.Disturbance(meter, 10, 2)
    ran, failed = runner.run_tests(rounds_plan(["a", "b"], 2), run_one, tmp_path, shown.append,
                                   disturbance=disturbance)
    assert calls == ["0001-a-r1", "0002-b-r1", "0001-a-r1", "0003-a-r2", "0004-b-r2", "0004-b-r2", "0004-b-r2"]
    assert [t["id"] for t in ran] == ["0002-b-r1", "0001-a-r1", "0003-a-r2", "0004-b-r2"] and failed == []
    kept = json.loads((tmp_path / "disturbed" / "0001-a-r1.1.json").read_text())["netlab_foreign_cpu"]
    assert kept["percent"] == 40.0 and kept["disturbed"] and kept["reruns"] == 0
    final = json.loads((tmp_path / "0001-a-r1.json").read_text())["netlab_foreign_cpu"]
    assert final["percent"] == 3.0 and not final["disturbed"] and final["reruns"] == 1
    still = json.loads((tmp_path / "0004-b-r2.json").read_text())["netlab_foreign_cpu"]
    assert still["disturbed"] and still["reruns"] == 2 and still["percent"] == 70.0
    assert sorted(p.name for p in (tmp_path / "disturbed").iterdir()) == [
        "0001-a-r1.1.json", "0004-b-r2.1.json", "0004-b-r2.2.json"]
    assert "disturbed (40 % of a core used beside it), run again at the end of its round" in shown[0]


def test_without_a_meter_nothing_is_measured_nor_run_again(tmp_path):
    runner.run_tests(rounds_plan(["a"], 1), lambda t: {"stdout": "{}", "stderr": "", "rc": 0}, tmp_path,
                     lambda line: None)
    assert "netlab_foreign_cpu" not in json.loads((tmp_path / "0001-a-r1.json").read_text())


def test_a_failed_test_is_not_run_again_for_being_disturbed(tmp_path):
    calls = []

    def run_one(t):
        calls.append(t["id"])
        return {"stdout": "", "stderr": "", "rc": 1, "msg": "boom"}

    _, failed = runner.run_tests(rounds_plan(["a"], 1), run_one, tmp_path, lambda line: None,
                                 disturbance=runner.Disturbance(FakeMeter([90]), 10, 2))
    assert calls == ["0001-a-r1"] and failed == ["0001-a-r1"] and not (tmp_path / "disturbed").exists()
