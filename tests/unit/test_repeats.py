"""Enough repeats, not a fixed three (plan/repeats.py): the stop rule, the planner's rounds, the runner's skip and the
summary's count of what an auto run needed."""

import json

from test_matrix import MATRIX, NODES, SETTINGS
from test_runner import planned

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import runner

AUTO = {**SETTINGS, "repeats": "auto", "max_repeats": 7, "target_ci_percent": 5}


def test_three_rounds_always_then_only_while_the_median_is_not_known_to_the_target():
    assert repeats.needed(3, [], AUTO) and not repeats.is_auto(SETTINGS) and repeats.needed(9, [1, 1, 1], SETTINGS)
    assert not repeats.needed(4, [10.0, 10.1, 10.2], AUTO)  # [min, max] 2 % of the median
    assert repeats.needed(4, [10.0, 10.1, 12.0], AUTO)  # 20 %
    # Up to five repeats the 75 % interval is [min, max]; at six it leaves out the extremes: one outlier no
    # longer keeps the test running.
    assert repeats.needed(6, [10.0, 10.1, 12.0, 10.05, 10.1], AUTO)
    assert not repeats.needed(7, [10.0, 10.1, 12.0, 10.05, 10.1, 10.08], AUTO)
    assert repeats.width_percent([10.0, 10.1, 12.0, 10.05, 10.1, 10.08]) < 5
    assert repeats.verdict([10.0, 10.1, 10.2], AUTO) == {"width_percent": 1.98, "target_percent": 5.0,
                                                        "reached": True, "repeats": 3, "max_repeats": 7}
    assert repeats.verdict([10.0], SETTINGS) is None


def test_an_auto_plan_has_its_max_rounds_the_later_ones_with_their_rule():
    plan = commands.plan(MATRIX, NODES, AUTO)
    assert len(plan) == 7 * len(MATRIX) and {t["repeat"] for t in plan} == set(range(1, 8))
    assert all(("stop" in t) == (t["repeat"] > 3) for t in plan)
    assert plan[-1]["stop"] == {"target_ci_percent": 5}


def iperf3_doc(gbps):
    bits = gbps * 1e9
    return {"start": {"test_start": {"protocol": "TCP", "num_streams": 1}},
            "end": {"sum_received": {"bits_per_second": bits, "seconds": 1.0},
                    "sum_sent": {"bits_per_second": bits, "retransmits": 0, "seconds": 1.0}}}


def test_the_runner_runs_a_later_round_only_while_it_is_needed_and_the_summary_agrees(tmp_path):
    """a: steady (3 repeats reach the target); b: one outlier in its first three (runs on to its 6th, whose
    interval leaves the outlier out); the summary counts neither a's skipped rounds nor b's 7th as missing."""
    figures = {"a": [10.0, 10.1, 10.2], "b": [10.0, 12.0, 10.1, 10.05, 10.1, 10.08]}
    plan = [{**planned(i, name), "id": f"{i:04d}-{name}-r{r}", "repeat": r, "placement": "cross-node",
             "protocol": "tcp", "streams": 1, **({"stop": {"target_ci_percent": 5}} if r > 3 else {})}
            for i, (r, name) in enumerate(((r, n) for r in range(1, 8) for n in "ab"), 1)]
    calls, shown = [], []

    def run_one(test):
        calls.append(test["id"])
        return {"stdout": json.dumps(iperf3_doc(figures[test["scenario"]][test["repeat"] - 1])), "stderr": "",
                "rc": 0}

    (tmp_path / "raw").mkdir()
    runner.run_tests(plan, run_one, tmp_path / "raw", shown.append)
    assert [c for c in calls if "-a-" in c] == ["0001-a-r1", "0003-a-r2", "0005-a-r3"]
    assert [c.rsplit("-r", 1)[1] for c in calls if "-b-" in c] == ["1", "2", "3", "4", "5", "6"]
    assert any("a r4: not needed, its median is known to 5 %" in line for line in shown)
    records = {p.stem: run_summary.raw.parse_raw(json.loads(p.read_text())) for p in (tmp_path / "raw").glob("*.json")}
    summary = run_summary.summarize({"run_id": "r", "settings": AUTO, "plan": plan}, records)
    assert summary["complete"] and summary["missing_tests"] == []
    a, b = summary["results"]
    assert (a["repeats"], a["planned"], a["auto"]["reached"]) == (3, 3, True)
    assert (b["repeats"], b["planned"], b["auto"]["reached"]) == (6, 6, True)
    # Interrupted after b's 4th: its later rounds are needed as far as its four repeats tell, so missing (a
    # resume decides each again as it comes).
    cut = {k: v for k, v in records.items() if not k.endswith(("-b-r5", "-b-r6"))}
    assert run_summary.summarize({"run_id": "r", "settings": AUTO, "plan": plan}, cut)["missing_tests"] == [
        "0010-b-r5", "0012-b-r6", "0014-b-r7"]
