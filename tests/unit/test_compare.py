"""Comparing two runs: table values, spread, warnings, run selection, charts."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils import compare, results


def summary(cni, medians, *, run_id=None, kernel="6.1", duration=5, repeats=3, complete=True):
    """A run summary with one TCP and one UDP test; medians = (tcp values, udp values)."""
    out = []
    for name, protocol, values in (("cross-node-tcp-1", "tcp", medians[0]), ("cross-node-udp", "udp", medians[1])):
        stats = results.spread(values)
        out.append({
            "scenario": name, "placement": "cross-node", "protocol": protocol, "streams": 1,
            "repeats": len(values), "planned": repeats, "gbps_median": stats["median"], "gbps_min": stats["min"],
            "gbps_max": stats["max"], "gbps_stdev": stats["stdev"], "gbps_iqr": stats["iqr"],
            "cv_percent": stats["cv_percent"], "noisy": (stats["cv_percent"] or 0) > 10,
            "retransmits": 10 if protocol == "tcp" else None, "lost_percent": 0.1 if protocol == "udp" else None,
            "jitter_ms": 0.01 if protocol == "udp" else None, "cpu_client_percent": 50.0,
            "cpu_server_percent": 40.0,
        })
    return {
        "run_id": run_id or f"r-{cni}", "cni": cni, "provider": "local", "datapath": f"{cni} datapath",
        "settings": {"duration": duration, "omit": 1}, "iperf3_versions": ["iperf 3.18"],
        "environment": {"nodes": [{"name": "n1", "kernel": kernel, "vcpus": 2, "memtotal_mb": 24000}]},
        "matrix": [{"name": "cross-node-tcp-1"}, {"name": "cross-node-udp"}],
        "complete": complete, "results": out,
    }


def test_change_and_spread():
    canal = summary("canal", ([10.0, 10.5, 11.0], [0.9, 0.95, 1.0]))
    cilium = summary("cilium", ([14.0, 15.0, 16.0], [0.9, 0.96, 1.0]))
    comparison = compare.compare(canal, cilium)
    tcp, udp = comparison["rows"]
    assert tcp["change_percent"] == pytest.approx((15.0 - 10.5) / 10.5 * 100)
    assert tcp["beyond_spread"] is True
    assert udp["beyond_spread"] is False  # ranges overlap
    assert comparison["labels"] == {"a": "canal", "b": "cilium"}
    assert comparison["warnings"] == []
    text = compare.render_text(comparison)
    assert "canal Gbps" in text and "+42.9" in text and results.LOCAL_LAB_NOTE in text


def test_single_runs_have_no_spread_verdict():
    comparison = compare.compare(summary("canal", ([10.0], [1.0])), summary("cilium", ([12.0], [1.0])))
    assert [row["beyond_spread"] for row in comparison["rows"]] == [None, None]
    assert "n/a" in compare.render_markdown(comparison)


def test_mismatches_are_warned():
    a = summary("canal", ([10.0, 11.0], [1.0, 1.0]))
    b = summary("cilium", ([12.0, 13.0], [1.0, 1.0]), kernel="6.8", duration=30, complete=False)
    b["iperf3_versions"] = ["iperf 3.12"]
    warnings = compare.compare(a, b)["warnings"]
    assert any("kernel" in w for w in warnings)
    assert any("duration" in w for w in warnings)
    assert any("iperf3 version" in w for w in warnings)
    assert any("incomplete" in w for w in warnings)
    assert not any("matrix" in w for w in warnings)


def test_same_cni_is_labelled_by_run():
    comparison = compare.compare(summary("cilium", ([1.0], [1.0]), run_id="x"),
                                 summary("cilium", ([2.0], [1.0]), run_id="y"))
    assert comparison["labels"] == {"a": "x", "b": "y"}


def write_run(root, run_id, cni, started, provider="local"):
    run = root / run_id
    (run / "raw").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": run_id, "cni": cni, "provider": provider,
                                              "started": started, "plan": []}))
    return run


def test_select_newest_canal_and_cilium(tmp_path):
    write_run(tmp_path, "a", "canal", "2026-01-01T00:00:00Z")
    write_run(tmp_path, "b", "canal", "2026-01-02T00:00:00Z")
    write_run(tmp_path, "c", "cilium", "2026-01-03T00:00:00Z")
    write_run(tmp_path, "d", "cilium", "2026-01-04T00:00:00Z", provider="proxmox")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.json").write_text("{not json")
    # The newest run is proxmox, which has no canal run yet.
    with pytest.raises(results.ResultError, match="no canal run of provider proxmox"):
        compare.select_runs(tmp_path)
    write_run(tmp_path, "e", "cilium", "2026-01-05T00:00:00Z")
    assert [p.name for p in compare.select_runs(tmp_path)] == ["b", "e"]
    assert [p.name for p in compare.select_runs(tmp_path, ["e", "a"])] == ["e", "a"]
    with pytest.raises(results.ResultError, match="no run zz"):
        compare.select_runs(tmp_path, ["a", "zz"])


def write_two_runs(root, iperf3_json):
    """A Canal run r1 and a Cilium run r2 of one cross-node test each, from captured iperf3 output."""
    for run_id, cni, started, fixture in (("r1", "canal", "1", "tcp-1"), ("r2", "cilium", "2", "tcp-p4")):
        run = write_run(root, run_id, cni, started)
        meta = json.loads((run / "run.json").read_text())
        meta["plan"] = [{"id": "0001-t-r1", "scenario": "t", "placement": "cross-node", "protocol": "tcp",
                         "streams": 1}]
        (run / "run.json").write_text(json.dumps(meta))
        (run / "raw" / "0001-t-r1.json").write_text(json.dumps(iperf3_json(fixture)))


def test_write_comparison_from_raw_files(tmp_path, iperf3_json):
    write_two_runs(tmp_path, iperf3_json)
    comparison, out = compare.write_comparison(tmp_path)
    assert out == tmp_path / "comparisons" / "r1_vs_r2"
    assert comparison["rows"][0]["change_percent"] == pytest.approx((51.355858 - 26.020128) / 26.020128 * 100,
                                                                   rel=1e-5)
    for name in ("comparison.json", "comparison.csv", "comparison.md", "comparison.png", "comparison.svg"):
        assert (out / name).stat().st_size > 0
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "comparison.svg").read_text().lstrip().startswith("<?xml")
    assert "![Throughput per test](comparison.png)" in (out / "comparison.md").read_text()


def test_run_charts_are_deterministic(tmp_path, iperf3_json):
    run = write_run(tmp_path, "r1", "canal", "1")
    meta = json.loads((run / "run.json").read_text())
    meta["plan"] = [{"id": "0001-t-r1", "scenario": "t", "placement": "host", "protocol": "tcp", "streams": 1}]
    (run / "run.json").write_text(json.dumps(meta))
    (run / "raw" / "0001-t-r1.json").write_text(json.dumps(iperf3_json("tcp-1")))
    results.write_reports(run)
    first = (run / "throughput.svg").read_bytes()
    results.write_reports(run)
    assert (run / "throughput.svg").read_bytes() == first
    assert (run / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_a_matrix_difference_names_the_tests_not_the_matrices():
    a = summary("canal", ([10.0], [1.0]))
    b = summary("cilium", ([12.0], [1.0]))
    b["matrix"] = [{"name": "cross-node-tcp-1", "streams": 4}, {"name": "host-tcp-rr"}, {"name": "service-tcp-crr"}]
    (warning,) = [w for w in compare.compare(a, b)["warnings"] if "matrix" in w]
    assert warning == ("the runs differ in matrix: only in the first: cross-node-udp; only in the second: "
                       "host-tcp-rr, service-tcp-crr; defined otherwise: cross-node-tcp-1")
