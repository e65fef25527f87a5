"""The callback netlab.lab.bench_report, driven as ansible-playbook drives it: the run's aggregated
set_stats in v2_playbook_on_stats, its options from its own DOCUMENTATION, a display that records.

The run folders are built from the captured iperf3 outputs in tests/data.
"""

import json

import pytest
import yaml
from ansible import constants as C
from ansible.executor.stats import AggregateStats
from test_compare import PROFILE_CHAIN, lab_run, write_run, write_two_runs
from test_run_report import make_run
from test_service_scale import record, scale_run

from ansible_collections.netlab.lab.plugins.callback import bench_report

RAW = {"0001-tcp-r1": "tcp-1", "0002-udp-r1": "udp", "0003-tcp-r2": "tcp-reverse", "0004-udp-r2": "udp"}


class Display:
    """What the callback printed, in order: (kind, text)."""

    verbosity = 0

    def __init__(self):
        self.lines = []

    def display(self, msg, **_):
        self.lines.append(("display", msg))

    def warning(self, msg, **_):
        self.lines.append(("warning", msg))

    def banner(self, msg, **_):
        self.lines.append(("banner", msg))

    def of(self, kind):
        return [text for k, text in self.lines if k == kind]


@pytest.fixture
def callback():
    """The plugin as the loader sets it up: its options defined by its DOCUMENTATION, then read."""
    name = "netlab.lab.bench_report"
    C.config.initialize_plugin_configuration_definitions(
        "callback", name, yaml.safe_load(bench_report.DOCUMENTATION)["options"])

    def make():
        plugin = bench_report.CallbackModule(display=Display())
        plugin._load_name = name
        plugin.set_options()
        return plugin

    return make


def stats(**custom):
    """The playbook's stats after set_stats with aggregate: true, as the callback gets them."""
    out = AggregateStats()
    for key, value in custom.items():
        out.update_custom_stats(key, value)
    return out


def test_a_run_is_reported_once_with_its_problems_table_and_files(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    run = tmp_path / "r1"
    run.mkdir()
    make_run(run, iperf3_json, {**RAW, "0004-udp-r2": "{torn"})
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_run_dirs=[str(run), str(run)]))
    display = plugin._display
    assert display.of("banner") == ["BENCHMARK SUMMARY"]
    assert len(display.of("warning")) == 1
    assert display.of("warning")[0].startswith(f"bench_report: {run}: 0004-udp-r2.json: ")
    table, files, runs = display.of("display")
    assert table.startswith("run r1: cni=cilium provider=local")
    assert table.splitlines()[1].startswith("context: local; cilium; ")
    assert [line.split()[:2] for line in table.splitlines()[5:7]] == [["tcp", "cross-node"], ["udp", "cross-node"]]
    assert files == f"reports: {run}/report.md, summary.json, summary.csv, throughput.png/.svg"
    # Then the history of the results directory the run is in, once.
    assert runs == f"history: {tmp_path}/index.json (runs: 1), {tmp_path}/history/history.md"
    assert [r["run_id"] for r in json.loads((tmp_path / "index.json").read_text())["runs"]] == ["r1"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["results"][1]["repeats"] == 1 and summary["problems"] == display.of("warning")[0].split(
        f"{run}: ")[1:]
    # charts: false from the environment, as the option's env entry says.
    assert not (run / "throughput.png").exists()
    assert "![" not in (run / "report.md").read_text()


def test_charts_are_drawn_by_default(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.delenv("NETLAB_CHARTS", raising=False)
    make_run(tmp_path, iperf3_json, RAW)
    plugin = callback()
    assert (plugin.get_option("charts"), plugin.get_option("noisy_cv_percent")) == (True, 10.0)
    plugin.v2_playbook_on_stats(stats(netlab_run_dirs=[str(tmp_path)]))
    assert (tmp_path / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Throughput per test, median with min-max range](throughput.png)" in (tmp_path / "report.md").read_text()


def test_noisy_threshold_comes_from_the_option(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    make_run(tmp_path, iperf3_json, {**RAW, "0003-tcp-r2": "tcp-p4"})
    for threshold, flagged in (("10", True), ("90", False)):
        monkeypatch.setenv("NETLAB_NOISY_CV_PERCENT", threshold)
        callback().v2_playbook_on_stats(stats(netlab_run_dirs=[str(tmp_path)]))
        assert json.loads((tmp_path / "summary.json").read_text())["results"][0]["noisy"] is flagged


def test_a_folder_that_is_no_run_is_a_warning_not_a_crash(callback, tmp_path):
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_run_dirs=[str(tmp_path)], netlab_scale_dirs=[str(tmp_path)]))
    assert plugin._display.lines == [
        ("warning", f"bench_report: cannot build the report of {tmp_path}: {tmp_path}: no readable run.json "
                    f"([Errno 2] No such file or directory: '{tmp_path}/run.json')"),
        ("warning", f"bench_report: cannot build the Service scale report of {tmp_path}: {tmp_path}: no readable "
                    f"scale.json ([Errno 2] No such file or directory: '{tmp_path}/scale.json')"),
    ]


def test_scale_runs_of_both_cnis_are_reported_together(callback, tmp_path, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    scale_run(tmp_path, "s1", "canal", "1", [record(0, 200.0, 5.0)], [0])
    cilium = scale_run(tmp_path, "s2", "cilium", "2", [record(0, 100.0, 1.0)], [0, 1000])
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_scale_dirs=[str(cilium)]))
    display = plugin._display
    assert display.of("banner") == ["SERVICE SCALE"]
    assert display.of("warning") == ["bench_report: s2: INCOMPLETE: no record for 1000 Services"]
    table, own, both = display.of("display")
    models = (["iptables"], ["bpf-socket-lb"])
    assert [line.split()[0] for line in table.splitlines() if line.split()[1:2] in models] == ["canal", "cilium"]
    assert own == f"report: {cilium}/scale.md, scale.csv, scale.png/.svg"
    assert both == f"all CNIs: {tmp_path}/comparisons/service-scale/scale.md, scale.csv, scale.png/.svg"
    assert (tmp_path / "comparisons" / "service-scale" / "scale.csv").read_text().count("\n") == 3


def test_comparisons_asked_twice_are_written_once(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    write_two_runs(tmp_path, iperf3_json)
    request = {"results_dir": str(tmp_path), "runs": [], "profile_chain": PROFILE_CHAIN}
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_compare=[request, {**request, "baseline": "", "chain": []}]))
    display = plugin._display
    assert display.of("banner") == ["CNI COMPARISON"]
    table, files = display.of("display")
    assert "test (Gbit/s)  canal" in table and "51.36 (+97.4 %*)" in table
    out = tmp_path / "comparisons" / "r1_vs_r2"
    assert files == f"comparison: {out}/comparison.md, comparison.json, comparison.csv, comparison.png/.svg"
    assert [run["label"] for run in json.loads((out / "comparison.json").read_text())["runs"]] == ["canal", "cilium"]


def test_a_comparison_with_its_baseline_and_chain(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    write_two_runs(tmp_path, iperf3_json)
    lab_run(tmp_path, "r3", "cilium", "2026-01-03T00:00:00Z", [40.0, 40.5, 41.0], profile="native-bpf",
            iperf3_json=iperf3_json)
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_compare=[{"results_dir": str(tmp_path), "runs": ["r1", "r2", "r3"],
                                                       "baseline": "cilium", "chain": ["r1", "r3", "r2"],
                                                       "profile_chain": PROFILE_CHAIN}]))
    table, files = plugin._display.of("display")
    assert files.startswith(f"comparison: {tmp_path}/comparisons/r2_vs_2-runs/comparison.md")
    assert "(baseline): run r2" in table and "step 2: cilium/native-bpf -> cilium: settings not recorded" in table
    comparison = json.loads((tmp_path / "comparisons" / "r2_vs_2-runs" / "comparison.json").read_text())
    assert comparison["baseline"] == 1 and comparison["steps"]["run_ids"] == ["r1", "r3", "r2"]


def test_the_profile_chain_orders_the_runs_and_is_the_default_chain(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.setenv("NETLAB_CHARTS", "false")
    for run_id, (cni, profile), started in zip(("r1", "r2", "r3"), (("canal", "vxlan"), ("cilium", "native-bpf"),
                                                                     ("cilium", "tunnel")), "123", strict=True):
        lab_run(tmp_path, run_id, cni, started, [10.0, 10.2, 10.4], profile=profile, iperf3_json=iperf3_json)
    request = {"results_dir": str(tmp_path), "runs": [], "baseline": "", "chain": []}
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_compare=[{**request, "profile_chain": PROFILE_CHAIN}, request]))
    out = tmp_path / "comparisons" / "r1_vs_2-runs"
    # Asked with and without the chain: two comparisons, the later one's files written last.
    assert plugin._display.of("banner") == ["CNI COMPARISON"] * 2
    with_chain, without = plugin._display.of("display")[0::2]
    assert with_chain.splitlines()[1:4] == ["  canal/vxlan (baseline): run r1", "  cilium/tunnel: run r3",
                                            "  cilium/native-bpf: run r2"]
    assert "step 2: cilium/tunnel -> cilium/native-bpf: profile: tunnel -> native-bpf" in with_chain
    # No profile chain: by profile name after Canal first, and no step table unless one is named.
    assert without.splitlines()[2:4] == ["  cilium/native-bpf: run r2", "  cilium/tunnel: run r3"]
    assert "Where the difference comes from" not in without
    assert "No chain: none named (name one with -e compare_chain=...)." in (out / "comparison.md").read_text()


def test_a_bad_chain_skips_the_comparison_with_its_reason(callback, tmp_path, iperf3_json):
    write_two_runs(tmp_path, iperf3_json)
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_compare=[{"results_dir": str(tmp_path), "runs": [],
                                                       "chain": ["canal", "cilium/tunnel"]}]))
    assert plugin._display.lines == [
        ("display", "comparison skipped: no run cilium/tunnel among the compared runs: canal, cilium")]


def test_the_history_and_its_trend_chart_follow_the_reports(callback, tmp_path, iperf3_json, monkeypatch):
    monkeypatch.delenv("NETLAB_CHARTS", raising=False)
    write_two_runs(tmp_path, iperf3_json)
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_run_dirs=[str(tmp_path / "r2"), str(tmp_path / "r1")]))
    assert plugin._display.of("display")[-1] == (f"history: {tmp_path}/index.json (runs: 2), "
                                                 f"{tmp_path}/history/history.md, trend.png/.svg")
    assert (tmp_path / "history" / "trend.svg").stat().st_size > 0


def test_a_comparison_without_both_cnis_is_skipped_with_its_reason(callback, tmp_path):
    write_run(tmp_path, "r1", "canal", "1")
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_compare=[{"results_dir": str(tmp_path), "runs": []}]))
    assert plugin._display.lines == [
        ("display", "comparison skipped: no cilium run of provider local yet: run the benchmark with cni=cilium")]


def test_kubeconfig_is_named_last(callback):
    plugin = callback()
    plugin.v2_playbook_on_stats(stats(netlab_kubeconfig="/lab/artifacts/admin.conf"))
    assert plugin._display.lines == [
        ("display", "kubeconfig: /lab/artifacts/admin.conf (mode 0600; export KUBECONFIG=... to use it)")]


def test_a_playbook_that_announced_nothing_prints_nothing(callback):
    plugin = callback()
    plugin.v2_playbook_on_stats(stats())
    assert plugin._display.lines == []
