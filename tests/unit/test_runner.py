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
