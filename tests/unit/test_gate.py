"""The regression gate on runs built from real captured raw files (tests/data, see SOURCES.md)."""

import copy
import json
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.filter.bench import bench_gate
from ansible_collections.netlab.lab.plugins.plugin_utils.report import gate, raw
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

# Three repeats of each test, from the local lab's and the development machine's captures: the figures
# differ per repeat.
REPEATS = {
    "cross-node-tcp-1": ("cross-node", "tcp", ["raw-cilium-model-cross-node-tcp-1.json",
                                               "raw-cilium-model-service.json", "raw-cilium-model-same-node.json"]),
    "cross-node-udp": ("cross-node", "udp", ["iperf3-udp.json"] * 3),
    "cross-node-tcp-rr": ("cross-node", "tcp_rr", ["raw-cilium-model-cross-node-tcp-rr.json",
                                                   "raw-cilium-model-service-tcp-crr.json", "netperf-tcp_rr.txt"]),
}
BASE_TCP = 12.30222359429415  # the median of 9.94, 12.30, 14.39 Gbit/s
BASE_RR = 28547.101  # the median of 28547, 7792, 51642 trans/s


def raw_doc(data_dir, name):
    """A captured raw file; netperf's bare output is wrapped as the role writes it."""
    text = (data_dir / name).read_text()
    return {"tool": "netperf", "output": text, "rc": 0} if name.endswith(".txt") else json.loads(text)


def scaled(doc, factor):
    """A copy of a raw document with its headline figure (receiver's rate, transaction rate) times factor."""
    doc = copy.deepcopy(doc)
    if doc.get("tool") == "netperf":
        doc["output"] = re.sub(r"TRANSACTION_RATE=([0-9.]+)",
                               lambda m: f"TRANSACTION_RATE={float(m[1]) * factor}", doc["output"])
    else:
        doc["end"]["sum_received"]["bits_per_second"] *= factor
    return doc


def write_run(root, data_dir, run_id, *, scale=None, provider="local", tests=REPEATS, docs=None, streams=None):
    """A run folder: plan and raw files of ``tests`` (interleaved repeats); ``scale`` maps a test to the
    factor of its figures, ``docs`` a test to the documents of its repeats, ``streams`` a test to its streams."""
    scale, docs, streams = scale or {}, docs or {}, streams or {}
    plan, written = [], {}
    for repeat in range(3):
        for name, (placement, protocol, files) in tests.items():
            test_id = f"{len(plan) + 1:04d}-{name}-r{repeat + 1}"
            netperf = protocol.endswith("rr")
            plan.append({"id": test_id, "scenario": name, "placement": placement, "protocol": protocol,
                         "streams": streams.get(name, 1), "tool": "netperf" if netperf else "iperf3",
                         "size": 1 if netperf else None})
            doc = docs[name][repeat] if name in docs else raw_doc(data_dir, files[repeat])
            written[test_id] = scaled(doc, scale.get(name, 1.0))
    run = root / run_id
    (run / "raw").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": run_id, "provider": provider, "cni": "cilium",
                                              "started": run_id, "plan": plan}))
    for test_id, doc in written.items():
        (run / "raw" / f"{test_id}.json").write_text(json.dumps(doc))
    return run


def summary_of(run):
    meta, records, problems = run_summary.load_run(run)
    assert problems == []
    return run_summary.summarize(meta, records)


@pytest.fixture
def baseline(tmp_path, data_dir):
    return summary_of(write_run(tmp_path, data_dir, "base"))


def test_the_same_figures_pass(tmp_path, data_dir, baseline):
    result = gate.check(baseline, summary_of(write_run(tmp_path, data_dir, "again")), 10)
    assert result["passed"] is True and result["failed"] == []
    assert (result["baseline"], result["run"], result["tolerance_percent"]) == ("base", "again", 10.0)
    tcp, _, rr = result["rows"]
    assert (tcp["scenario"], tcp["unit"], tcp["baseline"], tcp["change_percent"]) == (
        "cross-node-tcp-1", "Gbit/s", pytest.approx(BASE_TCP), 0.0)
    assert (rr["unit"], rr["baseline"], rr["run"]) == ("trans/s", BASE_RR, BASE_RR)
    assert [row["outcome"] for row in result["rows"]] == ["pass"] * 3
    assert [row["limit"] for row in result["rows"]] == [-10.0] * 3
    # Identical repeats: Welch's p is 1 (udp's three equal figures: two constant samples).
    assert [row["p"] for row in result["rows"]] == [pytest.approx(1.0)] * 3
    assert gate.render(result) == [
        "Regression gate: run again against baseline base, 3 test(s), tolerance 10 %",
        "PASSED: none of 3 test(s) fell more than 10 % below the baseline"]


def test_a_worsened_test_fails_and_is_named(tmp_path, data_dir, baseline):
    run = write_run(tmp_path, data_dir, "worse", scale={"cross-node-tcp-1": 0.39, "cross-node-tcp-rr": 0.95,
                                                       "cross-node-udp": 1.2})
    result = gate.check(baseline, summary_of(run), 10)
    tcp, udp, rr = result["rows"]
    assert result["passed"] is False and result["failed"] == ["cross-node-tcp-1"]
    assert (tcp["outcome"], tcp["run"], tcp["change_percent"]) == (
        "fail", pytest.approx(BASE_TCP * 0.39), pytest.approx(-61.0))
    assert tcp["p"] < 0.05  # all three repeats fell: significant too, though the verdict does not ask
    assert (rr["outcome"], rr["change_percent"]) == ("pass", pytest.approx(-5.0))
    assert (udp["outcome"], udp["change_percent"], udp["p"]) == ("pass", pytest.approx(20.0), 0.0)
    assert gate.render(result) == [
        "Regression gate: run worse against baseline base, 3 test(s), tolerance 10 %",
        "cross-node-tcp-1: 4.80 Gbit/s vs 12.30 baseline, -61.0 % (limit -10 %)",
        "FAILED: 1 of 3 test(s) fell more than 10 % below the baseline or are missing: cross-node-tcp-1"]


@pytest.mark.parametrize(("factor", "outcome"), [(0.901, "pass"), (0.899, "fail")])
def test_the_tolerance_is_the_limit(tmp_path, data_dir, baseline, factor, outcome):
    run = write_run(tmp_path, data_dir, "edge", scale={"cross-node-tcp-rr": factor})
    rows = gate.check(baseline, summary_of(run), 10)["rows"]
    assert [row["outcome"] for row in rows] == ["pass", "pass", outcome]
    assert [row["outcome"] for row in gate.check(baseline, summary_of(run), 15)["rows"]] == ["pass"] * 3


def test_a_lost_test_fails_and_a_new_one_is_only_reported(tmp_path, data_dir, baseline):
    # A refused netperf as the role keeps it (raw.document): a failed repeat.
    refused = json.loads((data_dir / "netperf-refused.json").read_text())
    refused = json.loads(raw.document(refused["stdout"], refused["stderr"], refused["rc"], tool="netperf"))
    tests = {**REPEATS, "host-tcp-1": ("host", "tcp", ["iperf3-tcp-1.json", "iperf3-tcp-reverse.json",
                                                       "iperf3-tcp-p4.json"])}
    run = write_run(tmp_path, data_dir, "lost", tests=tests, docs={"cross-node-tcp-rr": [refused] * 3})
    summary = summary_of(run)
    assert summary["failed_tests"] and summary["results"][2]["repeats"] == 0
    result = gate.check(baseline, summary, 10)
    rows = {row["scenario"]: row for row in result["rows"]}
    assert list(rows) == [*REPEATS, "host-tcp-1"]
    assert (rows["cross-node-tcp-rr"]["outcome"], rows["cross-node-tcp-rr"]["run"]) == ("missing", None)
    assert (rows["host-tcp-1"]["outcome"], rows["host-tcp-1"]["baseline"]) == ("new", None)
    assert rows["host-tcp-1"]["run"] == pytest.approx(36.552702)
    assert result["passed"] is False and result["failed"] == ["cross-node-tcp-rr"]
    assert gate.render(result)[1:] == [
        "cross-node-tcp-rr: MISSING, no successful repeat in the run (baseline 28547 trans/s)",
        "not in the baseline, not gated: host-tcp-1",
        "FAILED: 1 of 3 test(s) fell more than 10 % below the baseline or are missing: cross-node-tcp-rr"]


def test_a_test_defined_otherwise_is_missing(tmp_path, data_dir, baseline):
    run = write_run(tmp_path, data_dir, "other", streams={"cross-node-tcp-1": 4})
    result = gate.check(baseline, summary_of(run), 10)
    assert result["failed"] == ["cross-node-tcp-1"] and result["rows"][0]["outcome"] == "missing"
    assert "defined otherwise in the run (placement cross-node, protocol tcp, streams 4, tool iperf3; " \
           "baseline placement cross-node, protocol tcp, streams 1, tool iperf3)" in gate.render(result)[1]


@pytest.mark.parametrize("tolerance", [0, 100, 150, -5, "fast", "nan", True, None, [10]])
def test_a_bad_tolerance_is_refused(baseline, tolerance):
    with pytest.raises(ValueError, match=r"tolerance must be a number of percent above 0 and below 100, got"):
        gate.check(baseline, baseline, tolerance)


def test_a_tolerance_from_the_command_line_is_a_number(baseline):
    assert gate.check(baseline, baseline, "12.5")["tolerance_percent"] == 12.5


def test_runs_of_two_labs_are_refused(tmp_path, data_dir, baseline):
    other = summary_of(write_run(tmp_path, data_dir, "pve", provider="proxmox"))
    with pytest.raises(ValueError, match="baseline base is a run of provider local, run pve of proxmox"):
        gate.check(baseline, other, 10)


def test_the_filter_gates_two_run_folders_and_writes_nothing(tmp_path, data_dir):
    base = write_run(tmp_path, data_dir, "base")
    run = write_run(tmp_path, data_dir, "worse", scale={"cross-node-tcp-1": 0.39})
    result = bench_gate(str(run), str(base), "10")
    assert result["passed"] is False and result["failed"] == ["cross-node-tcp-1"]
    assert result["lines"] == gate.render(result)
    # The role keeps the verdict (a copy task, so check mode writes nothing); the filter only reads.
    assert not (run / "gate.json").exists() and not (base / "gate.json").exists()
    assert bench_gate(str(base), str(base), 10)["passed"] is True
    with pytest.raises(AnsibleFilterError, match=r"^bench_gate: the gate's tolerance must be"):
        bench_gate(str(run), str(base), "150")
    with pytest.raises(AnsibleFilterError, match=r"^bench_gate: .*nothing: no readable run\.json"):
        bench_gate(str(run), str(tmp_path / "nothing"), 10)
