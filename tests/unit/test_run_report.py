"""A run's summary (statistics per test, its path, its context) and its reports, rebuilt from raw files."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.report import compare, compare_render, files, raw, run_report
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary


def test_spread():
    s = run_summary.spread([10.0, 12.0, 11.0])
    assert s["median"] == 11.0 and s["min"] == 10.0 and s["max"] == 12.0
    assert s["stdev"] == pytest.approx(1.0)
    assert s["iqr"] == pytest.approx(1.0)
    assert s["cv_percent"] == pytest.approx(100 / 11)
    assert run_summary.spread([5.0])["stdev"] == 0.0
    assert run_summary.spread([])["median"] is None


def test_spread_of_three_repeats():
    # Was the filter spread's test (the filter is gone: no role or playbook used it).
    assert run_summary.spread([1.0, 2.0, 3.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "stdev": 1.0, "iqr": 1.0,
                                                   "cv_percent": 50.0}


def make_run(tmp_path, iperf3_json, raw_files: dict[str, str]):
    """A run dir; raw_files maps test id to a captured fixture name, or to literal text starting with '{'."""
    plan = [
        {"id": "0001-tcp-r1", "scenario": "tcp", "placement": "cross-node", "protocol": "tcp", "streams": 1},
        {"id": "0002-udp-r1", "scenario": "udp", "placement": "cross-node", "protocol": "udp", "streams": 1},
        {"id": "0003-tcp-r2", "scenario": "tcp", "placement": "cross-node", "protocol": "tcp", "streams": 1},
        {"id": "0004-udp-r2", "scenario": "udp", "placement": "cross-node", "protocol": "udp", "streams": 1},
    ]
    meta = {"run_id": "r1", "provider": "local", "cni": "cilium", "datapath": "native routing",
            "settings": {"duration": 2, "omit": 1, "repeats": 2}, "plan": plan}
    (tmp_path / "raw").mkdir()
    (tmp_path / "run.json").write_text(json.dumps(meta))
    for test_id, content in raw_files.items():
        text = content if content.startswith("{") else json.dumps(iperf3_json(content))
        (tmp_path / "raw" / f"{test_id}.json").write_text(text)
    return tmp_path


def test_complete_run_report(tmp_path, iperf3_json):
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "tcp-1", "0002-udp-r1": "udp",
                                           "0003-tcp-r2": "tcp-reverse", "0004-udp-r2": "udp"})
    summary, problems = run_report.write_reports(run)
    assert problems == [] and summary["complete"]
    tcp, udp = summary["results"]
    assert tcp["repeats"] == 2 and tcp["gbps_median"] == pytest.approx((26.020128 + 36.552702) / 2, rel=1e-6)
    assert tcp["gbps_min"] < tcp["gbps_max"] and tcp["retransmits"] == 3.5
    assert udp["lost_percent"] == pytest.approx(0.0261986, rel=1e-5)
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["cni"] == "cilium"
    assert {"run_id", "provider", "cni", "results"} <= on_disk.keys()
    assert set(run_summary.SUMMARY_FIELDS) <= on_disk["results"][0].keys()
    csv_lines = (run / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run_id,cni,provider,scenario") and len(csv_lines) == 3
    report = (run / "report.md").read_text()
    assert "| tcp | cross-node | tcp | 1 | 2/2 |" in report
    assert run_report.LOCAL_LAB_NOTE in report


def test_the_path_of_each_test_from_its_counters(tmp_path, iperf3_json, data_dir):
    """Raw files of a real Cilium-model run: the service test's counters prove the socket LB and BPF
    host routing; the same-node test's counters, filed as a cross-node test, contradict it."""
    service = (data_dir / "raw-cilium-model-service.json").read_text()
    same_node = (data_dir / "raw-cilium-model-same-node.json").read_text()
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": service, "0003-tcp-r2": same_node,
                                           "0002-udp-r1": "udp", "0004-udp-r2": "udp"})
    summary, _ = run_report.write_reports(run, charts=False)
    tcp, udp = summary["results"]
    assert udp["proof"] is None, "no counters (a Kubernetes run): no proof"
    assert tcp["proof"]["runs"] == 2
    assert "BPF socket LB: Service address translated at connect()" in tcp["proof"]["mechanisms"]
    assert tcp["proof"]["contradictions"] == [
        "BPF from-container: bpf_fib_lookup + bpf_redirect_neigh to another node did not move",
        "BPF from-netdev: bpf_redirect_peer from the wire into the pod did not move"]
    assert tcp["proof"]["counters"]["iptables.forward"] == 0
    report = (run / "report.md").read_text()
    assert "## Path of each test" in report and "| tcp | CONTRADICTS |" in report
    assert "> CONTRADICTS THE MODEL tcp: BPF from-container" in report
    assert "CONTRADICTS" in (run / "summary.csv").read_text().splitlines()[1]


def test_interrupted_run_keeps_what_finished(tmp_path, iperf3_json):
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "tcp-1", "0002-udp-r1": "udp"})
    summary, _ = run_report.write_reports(run)
    assert not summary["complete"]
    assert summary["missing_tests"] == ["0003-tcp-r2", "0004-udp-r2"]
    assert [r["repeats"] for r in summary["results"]] == [1, 1]
    assert "INCOMPLETE: 2 planned test(s)" in (run / "report.md").read_text()


def test_corrupt_foreign_and_failed_files(tmp_path, iperf3_json):
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "{truncated", "0002-udp-r1": "error-refused",
                                           "0003-tcp-r2": "tcp-1", "stray": "tcp-1",
                                           ".ansible_tmpab120004-udp-r2": "{half"})
    summary, problems = run_report.write_reports(run)
    assert any(p.startswith("0001-tcp-r1.json") for p in problems)
    assert any(p.startswith("stray.json: not a test") for p in problems)
    assert not any(p.startswith(".") for p in problems)
    assert summary["failed_tests"][0]["test"] == "0002-udp-r1"
    assert "Connection refused" in run_report.render_text(summary)
    assert summary["results"][1]["gbps_median"] is None


def test_noisy_tests_are_flagged(tmp_path, iperf3_json):
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "tcp-1", "0002-udp-r1": "udp",
                                           "0003-tcp-r2": "tcp-p4", "0004-udp-r2": "udp"})
    summary, _ = run_report.write_reports(run, noisy_cv_percent=10.0)
    tcp, udp = summary["results"]
    assert tcp["cv_percent"] > 10 and tcp["noisy"] is True
    assert udp["noisy"] is False
    assert "NOISY (CV > 10 %): tcp" in (run / "report.md").read_text()
    assert not run_report.write_reports(run, noisy_cv_percent=90.0)[0]["results"][0]["noisy"]


def test_disturbed_repeats_are_counted_and_those_still_disturbed_left_out(tmp_path, iperf3_json):
    """tcp: r1 calm after one rerun, r2 still disturbed after two (left out: the median is r1's alone); udp:
    both repeats disturbed (used, and said so)."""
    def measured(name, percent, reruns):
        return raw.with_foreign(json.dumps(iperf3_json(name)), {"percent": percent, "disturbed": percent > 10,
                                                                 "reruns": reruns})
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": measured("tcp-1", 2.5, 1),
                                           "0002-udp-r1": measured("udp", 30, 2),
                                           "0003-tcp-r2": measured("tcp-reverse", 45, 2),
                                           "0004-udp-r2": measured("udp", 20, 2)})
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "settings": {**meta["settings"], "disturbed_percent": 10}}))
    summary, problems = run_report.write_reports(run)
    tcp, udp = summary["results"]
    assert problems == [] and tcp["repeats"] == 1 and tcp["gbps_median"] == pytest.approx(26.020128, rel=1e-6)
    assert (tcp["disturbed_rerun"], tcp["disturbed_left_out"], tcp["disturbed_used"]) == (3, 1, 0)
    assert tcp["foreign_cpu_percent"] == 2.5
    assert (udp["repeats"], udp["disturbed_rerun"], udp["disturbed_left_out"], udp["disturbed_used"]) == (2, 4, 0, 2)
    report = (run / "report.md").read_text()
    assert "DISTURBED: repeats that ran beside more than 10 % of a core of other work" in report
    assert "tcp (3), udp (4)" in report
    assert "DISTURBED STILL: repeats still disturbed after their reruns, left out of the statistics: tcp (1)." in report
    assert "DISTURBED ONLY: every repeat of udp was disturbed" in report


def test_busy_nodes_of_a_cluster_are_counted_and_kept(tmp_path, iperf3_json):
    """A cluster's repeats (cpu.beside_pods): one above the threshold is counted and said, never left out."""
    def on_nodes(name, client_node_ticks):
        doc = iperf3_json(name)
        # 2 s windows; the client's pod used 1.2 s: client_node_ticks / 100 - 1.2 s beside it on the node.
        doc["netlab_cpu"] = {
            "client": {"before": "b 10 cpu 0 0 0 0 0 0 0 0", "after": f"b 12 cpu {client_node_ticks} 0 0 0 0 0 0 0"},
            "server": {"before": "s 10 cpu 0 0 0 0 0 0 0 0", "after": "s 12 cpu 60 0 0 0 0 0 0 0"},
            "client_pod": {"before": "7 0 1000000", "after": "7 1200000 1000000"},
            "server_pod": {"before": "8 0 1000000", "after": "8 500000 1000000"}}
        return json.dumps(doc)
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": on_nodes("tcp-1", 130),
                                           "0002-udp-r1": on_nodes("udp", 125),
                                           "0003-tcp-r2": on_nodes("tcp-reverse", 180)})
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "settings": {**meta["settings"], "disturbed_percent": 10}}))
    summary, problems = run_report.write_reports(run)
    tcp, udp = summary["results"]
    assert problems == [] and tcp["repeats"] == 2 and tcp["foreign_on"] == "nodes"
    # 5 % and 30 %: the median 17.5 %, one repeat above 10 %, both used.
    assert (tcp["foreign_cpu_percent"], tcp["busy_node_repeats"], tcp["disturbed_rerun"]) == (17.5, 1, 0)
    assert (udp["foreign_cpu_percent"], udp["busy_node_repeats"]) == (5.0, 0)
    report = (run / "report.md").read_text()
    assert "BUSY NODES: repeats whose nodes spent more than 10 % of a core beside the test's pods" in report
    assert "not run again on a cluster: tcp (1)." in report and "DISTURBED" not in report
    (run / "run.json").write_text(json.dumps({**meta, "settings": {**meta["settings"], "disturbed_percent": 0}}))
    assert run_report.write_reports(run)[0]["results"][0]["busy_node_repeats"] == 0, "0: not judged"


def test_missing_run_json(tmp_path):
    with pytest.raises(files.ResultError, match=r"no readable run\.json"):
        run_report.write_reports(tmp_path)


def test_a_pair_on_one_hypervisor_is_labelled_in_every_report():
    plan = [{"id": "0001-x-r1", "scenario": "x", "placement": "cross-node", "protocol": "tcp", "streams": 1,
             "same_host": True},
            {"id": "0002-y-r1", "scenario": "y", "placement": "cross-node", "protocol": "tcp", "streams": 1,
             "same_host": None}]
    meta = {"run_id": "r", "cni": "cilium", "provider": "proxmox", "settings": {}, "plan": plan}
    summary = run_summary.summarize(meta, {})
    assert [r["same_host"] for r in summary["results"]] == [True, False]
    label = "cross-node, same host: the traffic never reaches a NIC"
    assert label in run_report.render_markdown(summary) and label in run_report.render_text(summary)
    assert "| x | cross-node, same host |" in run_report.render_markdown(summary)
    assert "\nr,cilium,proxmox,x,cross-node,True," in run_report.render_csv(summary)
    other = {**summary, "run_id": "s", "cni": "canal"}
    comparison = compare.compare([other, summary])
    assert comparison["rows"][0]["same_host"] and label in compare_render.render_text(comparison)
    assert "x (same host)" in compare_render.render_markdown(comparison)


def test_each_result_keeps_its_repeats_and_the_interval_of_its_median(iperf3_json, data_dir):
    """Three iperf3 repeats (real captures, in repeat order, not sorted) and six netperf repeats
    (netperf's real output with its rate set per repeat): [min, max] at 75 % for three, at 96.9 % for six."""
    tcp = [f"000{i}-tcp-r{i}" for i in (1, 2, 3)]
    rr = [f"00{i + 4:02d}-rr-r{i}" for i in range(1, 7)]
    plan = [{"id": i, "scenario": "tcp", "placement": "cross-node", "protocol": "tcp", "streams": 1} for i in tcp]
    plan += [{"id": i, "scenario": "rr", "placement": "cross-node", "protocol": "tcp_rr", "streams": 1,
              "tool": "netperf", "size": 1} for i in rr]
    records = {test_id: raw.parse_iperf3(iperf3_json(name))
               for test_id, name in zip(tcp, ("tcp-p4", "tcp-1", "tcp-reverse"), strict=True)}
    netperf = raw.parse_netperf({"tool": "netperf", "output": (data_dir / "netperf-tcp_rr.txt").read_text()})
    rates = (30100.0, 29800.0, 31050.0, 30400.0, 29900.0, 30700.0)
    records.update({test_id: {**netperf, "trans_per_s": rate} for test_id, rate in zip(rr, rates, strict=True)})
    summary = run_summary.summarize({"run_id": "r", "cni": "cilium", "provider": "local", "plan": plan}, records)
    first, second = summary["results"]
    assert first["values"] == pytest.approx([51.355858, 26.020128, 36.552702], rel=1e-6)
    assert (first["ci_low"], first["ci_high"]) == (min(first["values"]), max(first["values"]))
    assert first["ci_confidence"] == 0.75
    assert second["values"] == list(rates)
    assert (second["ci_low"], second["ci_high"], second["ci_confidence"]) == (29800.0, 31050.0, 0.96875)
    report = run_report.render_markdown(summary)
    # The captures' senders ran at a full core: the median is flagged CPU-bound.
    assert "| 36.55 CPU-bound | 26.02 | 51.36 | 26.02-51.36 (75%) |" in report
    assert "| 30250 | 29800 | 31050 | 29800-31050 |" in report
    assert run_report.CI_NOTE[0] in report
    header = run_report.render_csv(summary).splitlines()[0].split(",")
    assert {"ci_low", "ci_high", "ci_confidence"} <= set(header) and "values" not in header


def test_one_repeat_has_no_interval(tmp_path, iperf3_json):
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "tcp-1", "0002-udp-r1": "udp"})
    summary, _ = run_report.write_reports(run, charts=False)
    assert [(r["values"] == [r["gbps_median"]], r["ci_low"], r["ci_confidence"]) for r in summary["results"]] == [
        (True, None, None), (True, None, None)]
    report = (run / "report.md").read_text()
    assert run_report.CI_NOTE[0] not in report and "| 26.02 CPU-bound | 26.02 | 26.02 | - |" in report


def _records(iperf3_json, data_dir, *names):
    """Parsed records of captured iperf3 outputs (fixture names) or raw files of the lab (tests/data file names)."""
    return [raw.parse_iperf3(json.loads((data_dir / name).read_text()) if name.endswith(".json")
                                 else iperf3_json(name)) for name in names]


def test_a_sender_at_a_full_core_is_cpu_limited(iperf3_json, data_dir):
    # One stream at 26 Gbit/s with the client at 99 %: its sending thread was pegged.
    assert run_summary.cpu_limited("tcp", _records(iperf3_json, data_dir, "tcp-1"), 2) is True
    # --reverse: the server sends; its 98 % (remote_total) counts, not the receiving client's 65 %.
    reverse = _records(iperf3_json, data_dir, "tcp-reverse")
    assert reverse[0]["cpu_client_percent"] < run_summary.CPU_LIMITED_PERCENT
    assert run_summary.cpu_limited("tcp", reverse, 2) is True
    # The Service test of the Cilium model: the client sent at 8 %, the server received at 84 %.
    assert run_summary.cpu_limited("tcp", _records(iperf3_json, data_dir, "raw-cilium-model-service.json"), 2) is False


def test_parallel_streams_are_judged_per_core_they_can_use(iperf3_json, data_dir):
    # Four stream threads at 105 % in all: half of each of 2 vCPUs, a core's worth on a 1-vCPU node.
    p4 = _records(iperf3_json, data_dir, "tcp-p4")
    assert run_summary.cpu_limited("tcp", p4, 2) is False
    assert run_summary.cpu_limited("tcp", p4, None) is False
    assert run_summary.cpu_limited("tcp", p4, 1) is True


def test_a_udp_sender_is_cpu_limited_only_below_the_offered_rate(iperf3_json, data_dir):
    canal, cilium = _records(iperf3_json, data_dir, "raw-canal-model-cross-node-udp.json",
                             "raw-cilium-model-cross-node-udp.json")
    assert canal["offered_gbps"] == 1.0 and canal["sent_gbps"] == pytest.approx(0.49984, rel=1e-4)
    # Both senders read above 90 % (iperf3 paces UDP by polling); only canal's fell short of 1 Gbit/s.
    assert min(canal["cpu_client_percent"], cilium["cpu_client_percent"]) > run_summary.CPU_LIMITED_PERCENT
    assert run_summary.cpu_limited("udp", [canal], 2) is True
    assert run_summary.cpu_limited("udp", [cilium], 2) is False
    assert run_summary.cpu_limited("udp", _records(iperf3_json, data_dir, "udp"), 2) is False
    assert run_summary.cpu_limited("udp", [{**canal, "cpu_client_percent": None}], 2) is None


def test_cpu_bound_results_are_flagged_in_the_summary_and_reports(tmp_path, iperf3_json, data_dir):
    canal_udp = (data_dir / "raw-canal-model-cross-node-udp.json").read_text()
    run = make_run(tmp_path, iperf3_json, {"0001-tcp-r1": "tcp-1", "0003-tcp-r2": "tcp-1",
                                           "0002-udp-r1": canal_udp, "0004-udp-r2": "udp"})
    meta = json.loads((run / "run.json").read_text())
    # Nodes of 8 vCPUs: a single stream is still judged against one core.
    (run / "run.json").write_text(json.dumps({**meta, "environment": {"nodes": [{"name": "a", "vcpus": 8}]}}))
    summary, _ = run_report.write_reports(run, charts=False)
    tcp, udp = summary["results"]
    assert tcp["cpu_limited"] is True
    # UDP over its two repeats: short of the offered rate (median 0.75), but the median CPU is 54 %.
    assert udp["cpu_limited"] is False
    report = (run / "report.md").read_text()
    assert "| tcp | cross-node | tcp | 1 | 2/2 | 26.02 CPU-bound |" in report
    assert "> CPU-BOUND: tcp" in report and "limited by the sender's CPU" in report
    assert "cpu_limited" in (run / "summary.csv").read_text().splitlines()[0]


LOCAL_ENV = {  # run.json environment as nodes_local.yml records it
    "iperf3": {"netlab-agent-1": "3.18", "netlab-agent-2": "3.18"},
    "netperf": {"netlab-agent-1": "2.7.0", "netlab-agent-2": "2.7.0"},
    "nodes": [{"name": name, "kernel": kernel, "vcpus": 2, "memtotal_mb": 24105, "cpu_model": "AMD EPYC"}
              for name, kernel in (("netlab-agent-1", "6.18.44"), ("netlab-agent-2", "6.18.45"))],
    "pod_mtu": {"netlab-agent-1": 1450, "netlab-agent-2": 1450},
    "link_mtu": {"netlab-agent-1": 1500, "netlab-agent-2": 1500},
    "cni_state": {"netlab-agent-1": None, "netlab-agent-2": None},
}


def context_of(meta):
    return dict(run_report.context(run_summary.summarize({"run_id": "r", "settings": {}, "plan": [], **meta}, {})))


def test_the_context_of_a_local_run():
    meta = {"provider": "local", "cni": "cilium", "profile": "native-bpf", "profile_settings": {"routing": "native"},
            "started": "2026-11-23T18:11:09Z", "environment": LOCAL_ENV,
            "settings": {"duration": 5, "omit": 1, "repeats": 3, "udp_bitrate": "1G"}}
    found = context_of(meta)
    assert found["Date"] == "2026-11-23T18:11:09Z" and found["CNI"] == "cilium/native-bpf"
    assert found["CPU model"] == "AMD EPYC" and found["vCPUs"] == "2" and found["Memory"] == "23.5 GiB"
    # Nodes that differ are named.
    assert found["Kernel"] == "6.18.44 (netlab-agent-1), 6.18.45 (netlab-agent-2)"
    assert found["Versions"] == "iperf3 3.18, netperf 2.7.0" and found["MTU"] == "pod 1450, link 1500"
    assert found["Settings"] == ("5 s per test, 1 s omitted (iperf3), 3 repeat(s), UDP offered 1Gbit/s per stream, "
                                 "routing=native")
    summary = run_summary.summarize({"run_id": "r", "plan": [], **meta}, {})
    assert (summary["profile"], summary["profile_settings"]) == ("native-bpf", {"routing": "native"})
    report = run_report.render_markdown(summary)
    assert report.index("## Context") < report.index("- CPU model: AMD EPYC")
    assert "- CNI: **cilium/native-bpf**" in report
    assert run_report.render_text(summary).splitlines()[1] == (
        "context: 2026-11-23T18:11:09Z; local; cilium/native-bpf; kernel 6.18.44 (netlab-agent-1), 6.18.45 "
        "(netlab-agent-2); AMD EPYC; 2 vCPUs; 23.5 GiB; iperf3 3.18, netperf 2.7.0; MTU pod 1450, link 1500")


def test_the_context_of_a_kubernetes_run(data_dir):
    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state

    status = cni_state.cilium_status((data_dir / "cilium-status-1.18-native.json").read_text())
    cluster = {"kubernetes": "v1.33.5+rke2r1", "rke2": "v1.33.5+rke2r1", "iperf3": "3.18", "netperf": None,
               "datapath": {"cni": "cilium", "pod_mtu": 1450, "nodes": {"a": status, "b": status}}}
    found = context_of({"provider": "proxmox", "cni": "cilium", "environment": {
        "nodes": [{"name": "a", "kernel": "6.12.48", "vcpus": 4, "memtotal_mb": 8192}], "kubernetes": cluster}})
    assert found["CNI"] == "cilium" and found["CPU model"] == "-" and found["Memory"] == "8.0 GiB"
    assert found["Versions"] == "iperf3 3.18, RKE2 v1.33.5+rke2r1, Cilium 1.18.1" and found["MTU"] == "pod 1450"
    plain = context_of({"provider": "existing", "cni": "canal", "environment": {
        "kubernetes": {**cluster, "rke2": None, "kubernetes": "v1.31.2", "datapath": {"pod_mtu": None}}}})
    assert plain["Versions"] == "iperf3 3.18, Kubernetes v1.31.2" and plain["MTU"] == "-"


def test_an_older_run_says_what_it_did_not_record():
    found = context_of({"provider": "local", "cni": "canal"})
    assert found["CNI"] == "canal" and found["Date"] == "-" and found["Kernel"] == "-" and found["Versions"] == "-"
    assert run_summary.summarize({"plan": []}, {})["profile"] is None


def test_the_context_lists_each_nodes_host_where_known():
    summary = {"run_id": "r",
               "node_hosts": {"netlab-agent-2": "pve2", "netlab-agent-1": "pve1", "netlab-server-1": None}}
    found = dict(run_report.context(summary))
    assert found["Hosts"] == "netlab-agent-1 on pve1, netlab-agent-2 on pve2, netlab-server-1 on ?"
    assert "Hosts" not in dict(run_report.context({"run_id": "r", "node_hosts": {}}))
