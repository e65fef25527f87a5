"""The history of a results directory: index.json from the run folders, history.md and the trend chart."""

import json
import os

import pytest
from test_compare import lab_run

from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts, history, run_report

NODES = [{"name": "server", "kernel": "6.1.0", "vcpus": 4, "memtotal_mb": 8000, "cpu_model": "EPYC 7302"},
         {"name": "agent-1", "kernel": "6.1.0", "vcpus": 2, "memtotal_mb": 8000}]


def with_environment(run, nodes=NODES):
    meta = json.loads((run / "run.json").read_text())
    meta["environment"] = {"nodes": nodes}
    (run / "run.json").write_text(json.dumps(meta))
    return run


def age(path, seconds):
    """Set a file's modification time ``seconds`` into the past."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


@pytest.fixture
def lab(tmp_path, iperf3_json):
    """Three runs of the local lab (one reported, one never reported, one cut short) and one of proxmox."""
    reported = with_environment(lab_run(tmp_path, "r1", "canal", "2026-01-01T10:00:00Z", [10.0, 10.2, 10.4],
                                        profile="vxlan", iperf3_json=iperf3_json))
    run_report.write_reports(reported, charts=False)
    with_environment(lab_run(tmp_path, "r2", "cilium", "2026-01-02T10:00:00Z", [20.0, 20.2, 20.4],
                             profile="native-bpf", iperf3_json=iperf3_json))
    cut = lab_run(tmp_path, "r3", "cilium", "2026-01-03T10:00:00Z", [21.0, 21.5], profile="native-bpf",
                  iperf3_json=iperf3_json)
    meta = json.loads((cut / "run.json").read_text())
    meta["plan"].append({**meta["plan"][-1], "id": "0007-t-r3"})  # planned, never run
    (cut / "run.json").write_text(json.dumps(meta))
    lab_run(tmp_path, "p1", "canal", "2026-01-04T10:00:00Z", [5.0, 5.1, 5.2], provider="proxmox",
            iperf3_json=iperf3_json)
    (tmp_path / "scale-run").mkdir()
    (tmp_path / "scale-run" / "scale.json").write_text("{}")  # not a benchmark run: left out
    return tmp_path


def test_the_index_has_one_entry_per_run(lab):
    index = history.rebuild_index(lab)
    assert json.loads((lab / "index.json").read_text()) == index
    assert [run["run_id"] for run in index["runs"]] == ["r1", "r2", "r3", "p1"]
    r1, r2, r3, p1 = index["runs"]
    assert (r1["provider"], r1["cni"], r1["profile"], r1["started"]) == ("local", "canal", "vxlan",
                                                                          "2026-01-01T10:00:00Z")
    assert r1["environment"] == {"kernels": ["6.1.0"], "vcpus": [2, 4], "memory_mb": [8000],
                                 "cpu_models": ["EPYC 7302"]}
    assert p1["environment"] == {"kernels": [], "vcpus": [], "memory_mb": [], "cpu_models": []}
    assert r1["tests"] == [{"scenario": "h", "median": pytest.approx(41.0), "unit": "Gbit/s"},
                           {"scenario": "t", "median": pytest.approx(10.2), "unit": "Gbit/s"}]
    # r2 has no summary.json: rebuilt from its raw files.
    assert not (lab / "r2" / "summary.json").exists() and r2["tests"][1]["median"] == pytest.approx(20.2)
    assert r2["complete"] and not r3["complete"] and r3["tests"][1]["median"] == pytest.approx(21.25)
    assert (p1["profile"], p1["provider"]) == (None, "proxmox")


def test_a_summary_older_than_the_raw_files_is_not_trusted(lab):
    summary = lab / "r1" / "summary.json"
    stale = json.loads(summary.read_text())
    stale["results"][1]["gbps_median"] = 99.0
    summary.write_text(json.dumps(stale))
    assert history.rebuild_index(lab)["runs"][0]["tests"][1]["median"] == 99.0  # newer than the raw files: read
    age(summary, 3600)
    assert history.rebuild_index(lab)["runs"][0]["tests"][1]["median"] == pytest.approx(10.2)
    summary.write_text("{torn")
    assert history.rebuild_index(lab)["runs"][0]["tests"][1]["median"] == pytest.approx(10.2)


def test_history_writes_the_table_and_the_trend_of_the_newest_runs_lab(lab):
    _, out, drawn = history.write_history(lab)
    assert out == lab / "history" and drawn == [out / "trend.png", out / "trend.svg"]
    assert (out / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "history.md").read_text()
    # The newest run is proxmox: its lab first, with the chart.
    assert markdown.index("## Lab proxmox") < markdown.index("## Lab local")
    assert "![Headline figure per test over time, lab proxmox](trend.png)" in markdown
    assert "| `r3` | 2026-01-03T10:00:00Z | cilium | native-bpf | no | 2 | - | - | - | - |" in markdown
    assert "| `r1` | 2026-01-01T10:00:00Z | canal | vxlan | yes | 2 | 6.1.0 | 2, 4 | 8000 | EPYC 7302 |" in markdown
    first = (out / "trend.svg").read_bytes()
    history.write_history(lab)
    assert (out / "trend.svg").read_bytes() == first


def test_the_trend_chart_draws_one_line_per_cni_and_profile(lab, tmp_path):
    index = history.rebuild_index(lab)
    drawn = charts.trend_chart(index, "local", tmp_path / "local")
    svg = drawn[1].read_text()
    for text in ("canal/vxlan", "cilium/native-bpf", "t (Gbit/s)", "h (Gbit/s)"):
        assert f"<!-- {text} -->" in svg
    assert "<!-- canal -->" not in svg  # the proxmox run is another lab
    assert charts.trend_chart(index, "existing", tmp_path / "none") == []
    # A run without a readable start time has no place on the time axis.
    index["runs"][0]["started"] = "when?"
    assert "<!-- canal/vxlan -->" not in charts.trend_chart(index, "local", tmp_path / "local")[1].read_text()
    assert not (tmp_path / "none.png").exists()


def test_no_charts_and_an_empty_results_directory(tmp_path):
    index, out, drawn = history.write_history(tmp_path, charts=False)
    assert index == {"schema_version": history.INDEX_VERSION, "runs": []} and drawn == []
    assert "![" not in (out / "history.md").read_text()
