"""Comparing runs: each run against a baseline, significance, labels, selection, the step table, charts."""

import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.netlab.lab.plugins.plugin_utils.report import (
    compare,
    compare_render,
    files,
    run_report,
    selection,
    stats,
)
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

HOST = [40.0, 41.0, 42.0]
PROFILES = yaml.safe_load((Path(__file__).parents[2] / "playbooks" / "vars" / "profiles.yml").read_text())
# The step chain as the report play passes it (netlab_profile_chain).
PROFILE_CHAIN = PROFILES["netlab_profile_chain"]


def result(name, placement, protocol, values, host=None):
    """A summary's result of an iperf3 test with its per-repeat figures and its pod/host ratio."""
    spread = run_summary.spread(values)
    ci = stats.median_ci(values)
    return {
        "scenario": name, "placement": placement, "protocol": protocol, "streams": 1, "tool": "iperf3",
        "repeats": len(values), "planned": 3, "values": values, "gbps_median": spread["median"],
        "gbps_min": spread["min"], "gbps_max": spread["max"], "gbps_stdev": spread["stdev"],
        "ci_low": ci["low"], "ci_high": ci["high"], "ci_confidence": ci["confidence"],
        "cv_percent": spread["cv_percent"], "noisy": (spread["cv_percent"] or 0) > 10,
        "retransmits": 10 if protocol == "tcp" else None, "lost_percent": 0.1 if protocol == "udp" else None,
        "jitter_ms": 0.01 if protocol == "udp" else None, "cpu_client_percent": 50.0, "cpu_server_percent": 40.0,
        "host_ratio": spread["median"] / run_summary.spread(host)["median"] if host else None,
    }


def summary(cni, tcp, udp, *, profile=None, settings=None, run_id=None, kernel="6.1", duration=5, complete=True,
            host=None):
    """A run summary: a host TCP test (``host``, default HOST), a cross-node TCP and a cross-node UDP test,
    each with its per-repeat Gbit/s."""
    host = host or HOST
    return {
        "run_id": run_id or f"r-{cni}" + (f"-{profile}" if profile else ""), "cni": cni, "profile": profile,
        "profile_settings": settings, "provider": "local", "datapath": f"{cni} datapath",
        "settings": {"duration": duration, "omit": 1}, "iperf3_versions": ["iperf 3.18"],
        "environment": {"nodes": [{"name": "n1", "kernel": kernel, "vcpus": 2, "memtotal_mb": 24000}]},
        "matrix": [{"name": "host-tcp-1"}, {"name": "cross-node-tcp-1"}, {"name": "cross-node-udp"}],
        "complete": complete,
        "results": [result("host-tcp-1", "host", "tcp", host),
                    result("cross-node-tcp-1", "cross-node", "tcp", tcp, host),
                    result("cross-node-udp", "cross-node", "udp", udp)],
    }


def scaled(values, factor):
    return [v * factor for v in values]


TCP = [10.0, 10.2, 10.4]
UDP = [0.9, 0.95, 1.0]


def test_two_runs_change_significance_and_ci():
    canal = summary("canal", [10.0, 10.5, 11.0], UDP)
    cilium = summary("cilium", [14.0, 15.0, 16.0], [0.9, 0.96, 1.0])
    comparison = compare.compare([canal, cilium])
    host, tcp, udp = comparison["rows"]
    assert host["runs"][1]["change_percent"] == 0.0 and host["runs"][1]["host_change_percent"] is None
    base, other = tcp["runs"]
    assert base["change_percent"] is None and base["significant"] is None
    assert other["change_percent"] == pytest.approx((15.0 - 10.5) / 10.5 * 100)
    assert other["significant"] is True and other["p"] == stats.welch([10.0, 10.5, 11.0], [14.0, 15.0, 16.0])["p"]
    assert udp["runs"][1]["significant"] is False  # 0.95 vs 0.96 is within the repeats' noise
    assert (other["ci_low"], other["ci_high"], other["ci_confidence"]) == (14.0, 16.0, 0.75)
    assert [run["label"] for run in comparison["runs"]] == ["canal", "cilium"]
    assert comparison["warnings"] == []
    text = compare_render.render_text(comparison)
    assert "canal vs cilium" in text and "15.00 (+42.9 %*)" in text and "0.96 (+1.1 %)" in text
    assert run_report.LOCAL_LAB_NOTE in text
    markdown = compare_render.render_markdown(comparison)
    assert "| cross-node-tcp-1 | 10.50 [10.00-11.00 (75%)] | 15.00 [14.00-16.00 (75%)], +42.9 %*, " in markdown
    assert compare_render.comparison_name(comparison) == "r-canal_vs_r-cilium"


def test_single_repeats_cannot_be_told_and_old_runs_show_no_ci():
    canal, cilium = summary("canal", [10.0], [1.0]), summary("cilium", [12.0], [1.0])
    for result_ in cilium["results"]:
        del result_["values"], result_["ci_low"], result_["ci_high"], result_["ci_confidence"]
    comparison = compare.compare([canal, cilium])
    assert [row["runs"][1]["significant"] for row in comparison["rows"]] == [None, None, None]
    assert "12.00 (+20.0 %?)" in compare_render.render_text(comparison)
    assert "| cross-node-tcp-1 | 10.00 [-] | 12.00 [-], +20.0 %?" in compare_render.render_markdown(comparison)


def test_host_normalised_change_cancels_a_drift_of_the_machine():
    # The second run's machine is 20 % faster: host and pod tests alike. Against its own host test the pod
    # path did not change.
    canal = summary("canal", TCP, UDP)
    drifted = summary("canal", scaled(TCP, 1.2), UDP, run_id="later", host=scaled(HOST, 1.2))
    row = compare.compare([canal, drifted])["rows"][1]
    assert row["runs"][1]["change_percent"] == pytest.approx(20.0)
    assert row["runs"][1]["significant"] is True
    assert row["runs"][1]["host_change_percent"] == pytest.approx(0.0, abs=1e-9)


def test_mismatches_are_warned_against_the_baseline():
    a = summary("canal", [10.0, 11.0], [1.0, 1.0])
    b = summary("cilium", [12.0, 13.0], [1.0, 1.0], kernel="6.8", duration=30, complete=False)
    b["iperf3_versions"] = ["iperf 3.12"]
    c = summary("cilium", [12.0, 13.0], [1.0, 1.0], profile="native-bpf")
    warnings = compare.compare([a, b, c])["warnings"]
    assert "cilium differs from the baseline canal in kernel: ['6.1'] vs ['6.8']" in warnings
    assert any("duration" in w for w in warnings)
    assert any("iperf3 version" in w for w in warnings)
    assert "run r-cilium is incomplete" in warnings
    assert not any("matrix" in w or "cilium/native-bpf" in w for w in warnings)


def test_labels_are_cni_and_profile_and_unique():
    runs = [summary("cilium", TCP, UDP, run_id="x"), summary("cilium", TCP, UDP, run_id="y"),
            summary("cilium", TCP, UDP, profile="tunnel", run_id="z"),
            {**summary("", TCP, UDP, run_id="w"), "cni": None}]
    comparison = compare.compare(runs)
    assert [run["label"] for run in comparison["runs"]] == ["cilium (x)", "cilium (y)", "cilium/tunnel", "w"]
    assert compare_render.render_text(comparison).startswith("4 runs against cilium (x)")


def test_baseline_by_index_run_id_or_label():
    runs = [summary("canal", TCP, UDP, profile="vxlan"), summary("cilium", scaled(TCP, 1.5), UDP, profile="tunnel"),
            summary("cilium", scaled(TCP, 2.0), UDP, profile="native-bpf")]
    by_label = compare.compare(runs, baseline="cilium/tunnel")
    assert by_label["baseline"] == 1 == compare.compare(runs, baseline="r-cilium-tunnel")["baseline"]
    changes = [entry["change_percent"] for entry in by_label["rows"][1]["runs"]]
    assert changes[1] is None
    assert changes[0] == pytest.approx((10.2 - 15.3) / 15.3 * 100)
    assert changes[2] == pytest.approx(100 / 3)
    assert compare_render.comparison_name(by_label) == "r-cilium-tunnel_vs_2-runs"
    assert "| cilium/tunnel (baseline) |" in compare_render.render_markdown(by_label)
    with pytest.raises(files.ResultError, match="no run cilium/kube-proxy among the compared runs: canal/vxlan, "):
        compare.compare(runs, baseline="cilium/kube-proxy")
    twice = [*runs, summary("cilium", TCP, UDP, profile="tunnel", run_id="again")]
    with pytest.raises(files.ResultError, match="cilium/tunnel names 2 of the compared runs"):
        compare.compare(twice, baseline="cilium/tunnel")
    with pytest.raises(files.ResultError, match="two or more runs, got 1"):
        compare.compare(runs[:1])


CHAIN = [("canal", "vxlan", {"routing": "tunnel", "tunnel": "vxlan", "kube_proxy": True}),
         ("cilium", "tunnel", {"routing": "tunnel", "tunnel": "vxlan", "kube_proxy": True, "bpf_lb": False}),
         ("cilium", "kube-proxy", {"routing": "native", "kube_proxy": True}),
         ("cilium", "native-legacy", {"routing": "native", "kube_proxy": False, "host_routing": "legacy"}),
         ("cilium", "native-bpf", {"routing": "native", "kube_proxy": False, "host_routing": "bpf"})]


def five_runs(factors, udp_factors=(1, 1, 1, 1, 1)):
    """The default chain's five runs, out of order (as runs may be named); TCP scaled by ``factors`` in chain order."""
    runs = [summary(cni, scaled(TCP, f), scaled(UDP, u), profile=profile, settings=settings)
            for (cni, profile, settings), f, u in zip(CHAIN, factors, udp_factors, strict=True)]
    return [runs[i] for i in (4, 0, 2, 1, 3)]


def test_step_shares_sum_to_the_total():
    assert compare.step_shares([10.0, 12.0, 20.0]) == (10.0, [20.0, 80.0])
    # Not monotonic: the second step loses ground the others make up for.
    total, shares = compare.step_shares([10.0, 16.0, 13.0, 20.0])
    assert total == 10.0 and shares == pytest.approx([60.0, -30.0, 70.0]) and sum(shares) == pytest.approx(100)
    # A chain that ends lower: the shares are of a negative total.
    assert compare.step_shares([20.0, 25.0, 10.0]) == (-10.0, [-50.0, 150.0])
    assert compare.step_shares([5.0, 7.0, 5.0]) == (0.0, None)
    with pytest.raises(ValueError, match="two or more figures"):
        compare.step_shares([5.0])


def test_the_profile_chain_goes_through_shipped_profiles():
    assert len(PROFILE_CHAIN) == len(set(PROFILE_CHAIN)) >= 2
    for label in PROFILE_CHAIN:
        cni, profile = label.split("/")
        assert profile in PROFILES["netlab_profiles"][cni], label


def test_five_runs_along_the_default_chain():
    comparison = compare.compare(five_runs((1.0, 1.1, 1.4, 1.3, 2.0)), profile_chain=PROFILE_CHAIN)
    assert [run["label"] for run in comparison["runs"]] == [
        "cilium/native-bpf", "canal/vxlan", "cilium/kube-proxy", "cilium/tunnel", "cilium/native-legacy"]
    chain = comparison["steps"]
    assert chain["chain"] == PROFILE_CHAIN
    host, tcp, udp = chain["tests"]
    assert tcp["total"] == pytest.approx(10.2) and tcp["total_percent"] == pytest.approx(100.0)
    assert tcp["total_significant"] is True
    assert tcp["shares"] == pytest.approx([10.0, 30.0, -10.0, 70.0])
    assert tcp["step_significant"] == [True, True, True, True]
    assert host["verdict"] == udp["verdict"] == compare.NO_TOTAL and host["shares"] is None
    assert chain["settings"][0]["changes"] == ["bpf_lb: unset -> False", "cni: canal -> cilium"]
    text = compare_render.render_text(comparison)
    assert max(len(line) for line in text.splitlines() if "  " in line) <= 120  # the tables, not the notes
    steps = text.split("steps along the chain")[1].splitlines()
    table = {line.split("  ")[0]: re.split(r"  +", line)[1:] for line in steps}
    assert table["cross-node-tcp-1"] == ["+10.20 Gbit/s (+100.0 %*)", "+10 %*", "+30 %*", "-10 %*", "+70 %*"]
    assert table["host-tcp-1"] == ["+0.00 Gbit/s (+0.0 %)", "no significant total difference"]
    markdown = compare_render.render_markdown(comparison)
    assert "## Where the difference comes from" in markdown
    assert "| cross-node-tcp-1 | +10.20 Gbit/s (+100.0 %*) | +10 %* | +30 %* | -10 %* | +70 %* |" in markdown
    assert ("- step 2: cilium/tunnel -> cilium/kube-proxy: bpf_lb: False -> unset; routing: tunnel -> native; "
            "tunnel: vxlan -> unset") in markdown
    assert "- step 4: cilium/native-legacy -> cilium/native-bpf: host_routing: legacy -> bpf" in markdown


def test_the_baseline_is_the_first_run_and_a_chain_can_be_named():
    runs = five_runs((1.0, 1.02, 1.4, 1.3, 2.0))
    comparison = compare.compare(runs, chain=["r-canal-vxlan", "cilium/native-legacy", "cilium/native-bpf"])
    assert comparison["runs"][comparison["baseline"]]["label"] == "cilium/native-bpf"
    tcp = comparison["steps"]["tests"][1]
    assert comparison["steps"]["chain"] == ["canal/vxlan", "cilium/native-legacy", "cilium/native-bpf"]
    assert tcp["shares"] == pytest.approx([30.0, 70.0])
    # The step of 2 % from canal/vxlan to cilium/tunnel is within the noise of the repeats.
    assert compare.compare(runs, profile_chain=PROFILE_CHAIN)["steps"]["tests"][1]["step_significant"][0] is False
    with pytest.raises(files.ResultError, match="a chain names two or more different runs"):
        compare.compare(runs, chain=["canal/vxlan", "r-canal-vxlan"])


def test_side_steps_price_one_setting_against_a_profile_of_the_chain():
    """The chain's five runs and a side run, cilium/tunnel-bpf (the reference with routing vxlan) at 0.8 of the
    reference's TCP: the side step's change is that, beside the chain's step table."""
    runs = five_runs((1.0, 1.1, 1.4, 1.3, 2.0))
    side = summary("cilium", scaled(TCP, 1.6), UDP, profile="tunnel-bpf",
                   settings={"routing": "vxlan", "kube_proxy": False, "host_routing": "bpf"})
    pairs = [["cilium/native-bpf", "cilium/tunnel-bpf"], ["canal/vxlan", "canal/host-gw"]]
    comparison = compare.compare([*runs, side], profile_chain=PROFILE_CHAIN, side_steps=pairs)
    (step,) = comparison["side_steps"]  # canal/host-gw was not compared
    assert step["chain"] == ["cilium/native-bpf", "cilium/tunnel-bpf"]
    host, tcp, _ = step["tests"]
    assert tcp["total_percent"] == pytest.approx(-20.0) and tcp["total_significant"] is True
    assert host["total_percent"] == pytest.approx(0.0)
    assert step["settings"][0]["changes"] == ["routing: native -> vxlan"]
    assert comparison["steps"]["chain"] == PROFILE_CHAIN, "the chain is as without the side run"
    header, rows = compare_render.side_rows(comparison)
    assert header == ["test", "cilium/native-bpf -> cilium/tunnel-bpf"]
    assert rows[1] == ["cross-node-tcp-1", "-20.0 %*"]
    markdown = compare_render.render_markdown(comparison)
    assert "## Side steps" in markdown
    assert "- cilium/native-bpf -> cilium/tunnel-bpf: routing: native -> vxlan" in markdown
    assert "Side steps (one setting against a profile of the chain):" in compare_render.render_text(comparison)
    # A label run twice: the step is the first run's (the comparison's own order), as the chain's.
    again = summary("cilium", scaled(TCP, 3.0), UDP, profile="tunnel-bpf", run_id="r-later",
                    settings={"routing": "vxlan", "kube_proxy": False, "host_routing": "bpf"})
    twice = compare.compare([*runs, side, again], profile_chain=PROFILE_CHAIN, side_steps=pairs)
    assert twice["side_steps"][0]["run_ids"] == [runs[0]["run_id"], side["run_id"]]
    # Without its two runs, or with none asked for: no side-step table.
    assert compare.compare(runs, profile_chain=PROFILE_CHAIN, side_steps=pairs)["side_steps"] == []
    assert "## Side steps" not in compare_render.render_markdown(compare.compare(runs, profile_chain=PROFILE_CHAIN))


def test_the_shipped_side_steps_name_shipped_profiles():
    for pair in PROFILES["netlab_profile_side_steps"]:
        assert len(pair) == 2 and pair[0] != pair[1]
        for label in pair:
            cni, profile = label.split("/")
            assert profile in PROFILES["netlab_profiles"][cni], label


def test_no_chain_without_two_of_its_runs():
    comparison = compare.compare([summary("canal", TCP, UDP), summary("cilium", TCP, UDP)],
                                 profile_chain=PROFILE_CHAIN)
    assert comparison["steps"] is None
    assert "No chain: fewer than two of canal/vxlan" in compare_render.render_markdown(comparison, None, PROFILE_CHAIN)
    assert "Where the difference comes from (" not in compare_render.render_text(comparison)
    # Old runs record no profile settings: the step says so.
    named = compare.compare([summary("canal", TCP, UDP), summary("cilium", TCP, UDP)], chain=["canal", "cilium"])
    assert compare_render.step_legend(named) == ["step 1: canal -> cilium: settings not recorded"]


def test_settings_changes():
    assert compare.settings_changes({"a": 1, "b": {"x": 1}}, {"a": 1, "b": {"x": 2}, "c": "on"}) == [
        'b: {"x": 1} -> {"x": 2}', "c: unset -> on"]
    assert compare.settings_changes({"a": None}, {}) == ["a: None -> unset"]
    assert compare.settings_changes({"a": 1}, {"a": 1}) == []
    assert compare.settings_changes(None, {"a": 1}) is None


def write_run(root, run_id, cni, started, provider="local", profile=None):
    run = root / run_id
    (run / "raw").mkdir(parents=True)
    meta = {"run_id": run_id, "cni": cni, "provider": provider, "started": started, "plan": []}
    if profile:
        meta.update(profile=profile, profile_settings={"profile": profile})
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_select_the_newest_run_of_each_cni_and_profile(tmp_path):
    write_run(tmp_path, "a", "canal", "2026-01-01T00:00:00Z")
    write_run(tmp_path, "b", "canal", "2026-01-02T00:00:00Z")
    write_run(tmp_path, "c", "cilium", "2026-01-03T00:00:00Z")
    write_run(tmp_path, "d", "cilium", "2026-01-04T00:00:00Z", provider="proxmox")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.json").write_text("{not json")
    # The newest run is proxmox, which has no canal run yet.
    with pytest.raises(files.ResultError, match="no canal run of provider proxmox yet: run the benchmark with "
                                                  "cni=canal"):
        selection.select_runs(tmp_path)
    write_run(tmp_path, "e", "cilium", "2026-01-05T00:00:00Z")
    assert [p.name for p in selection.select_runs(tmp_path)] == ["b", "e"]
    # Profiles: each (cni, profile) is a kind of run of its own, in the default chain's order.
    write_run(tmp_path, "f", "cilium", "2026-01-06T00:00:00Z", profile="native-bpf")
    write_run(tmp_path, "g", "cilium", "2026-01-07T00:00:00Z", profile="tunnel")
    write_run(tmp_path, "h", "canal", "2026-01-08T00:00:00Z", profile="vxlan")
    write_run(tmp_path, "i", "cilium", "2026-01-09T00:00:00Z", profile="native-bpf")
    # Runs from before profiles (b, e) stand aside once the lab has runs with one.
    assert [p.name for p in selection.select_runs(tmp_path, profile_chain=PROFILE_CHAIN)] == ["h", "g", "i"]
    # Without the chain, by profile name after Canal first.
    assert [p.name for p in selection.select_runs(tmp_path)] == ["h", "i", "g"]
    assert [p.name for p in selection.select_runs(tmp_path, ["e", "a", "d"])] == ["e", "a", "d"]
    with pytest.raises(files.ResultError, match="no run zz"):
        selection.select_runs(tmp_path, ["a", "zz"])
    with pytest.raises(files.ResultError, match="name two or more different runs to compare, got \\['a'\\]"):
        selection.select_runs(tmp_path, ["a"])
    with pytest.raises(files.ResultError, match="different runs"):
        selection.select_runs(tmp_path, ["a", "a"])


def test_one_kind_of_run_is_not_enough(tmp_path):
    write_run(tmp_path, "a", "canal", "1", profile="vxlan")
    write_run(tmp_path, "b", "cilium", "2", profile="tunnel", provider="proxmox")
    with pytest.raises(files.ResultError, match="no canal run of provider proxmox yet"):
        selection.select_runs(tmp_path)
    write_run(tmp_path, "c", "canal", "3", profile="vxlan", provider="proxmox")
    write_run(tmp_path, "d", "canal", "4", profile="vxlan", provider="proxmox")
    assert [p.name for p in selection.select_runs(tmp_path)] == ["d", "b"]
    write_run(tmp_path, "e", "other", "5", provider="existing")
    with pytest.raises(files.ResultError, match="no canal or cilium run of provider existing"):
        selection.select_runs(tmp_path)


TEST = {"scenario": "t", "placement": "cross-node", "protocol": "tcp", "streams": 1}
HOST_TEST = {"scenario": "h", "placement": "host", "protocol": "tcp", "streams": 1}


def lab_run(root, run_id, cni, started, gbps, *, profile=None, provider="local", host=(40.0, 41.0, 42.0),
            iperf3_json):
    """A run of a host and a cross-node test, three repeats each, from the captured iperf3 output with its
    receiver's rate set to ``gbps`` (cross-node) and ``host`` Gbit/s."""
    run = write_run(root, run_id, cni, started, provider, profile)
    meta = json.loads((run / "run.json").read_text())
    meta["plan"] = []
    for test, figures in ((HOST_TEST, host), (TEST, gbps)):
        for repeat, figure in enumerate(figures, 1):
            test_id = f"{len(meta['plan']) + 1:04d}-{test['scenario']}-r{repeat}"
            meta["plan"].append({"id": test_id, **test})
            doc = iperf3_json("tcp-1")
            doc["end"]["sum_received"]["bits_per_second"] = figure * 1e9
            (run / "raw" / f"{test_id}.json").write_text(json.dumps(doc))
    (run / "run.json").write_text(json.dumps(meta))
    return run


def write_two_runs(root, iperf3_json):
    """A Canal run r1 and a Cilium run r2 whose cross-node test is 97.4 % faster, three repeats each."""
    lab_run(root, "r1", "canal", "2026-01-01T00:00:00Z", [25.5, 26.020128, 26.5], iperf3_json=iperf3_json)
    lab_run(root, "r2", "cilium", "2026-01-02T00:00:00Z", [51.0, 51.355858, 52.0], iperf3_json=iperf3_json)


def test_write_two_runs_from_raw_files(tmp_path, iperf3_json):
    write_two_runs(tmp_path, iperf3_json)
    comparison, out = compare_render.write_comparison(tmp_path)
    assert out == tmp_path / "comparisons" / "r1_vs_r2"
    row = comparison["rows"][1]
    assert row["runs"][1]["change_percent"] == pytest.approx((51.355858 - 26.020128) / 26.020128 * 100, rel=1e-5)
    assert row["runs"][1]["significant"] is True and row["runs"][1]["values"] == pytest.approx([51.0, 51.355858, 52.0])
    for name in ("comparison.json", "comparison.csv", "comparison.md", "comparison.png", "comparison.svg"):
        assert (out / name).stat().st_size > 0
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "comparison.svg").read_text().lstrip().startswith("<?xml")
    assert "![Headline figure per test and run](comparison.png)" in (out / "comparison.md").read_text()
    assert json.loads((out / "comparison.json").read_text()) == json.loads(json.dumps(comparison))
    lines = (out / "comparison.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2 and lines[0].startswith("run_id,label,baseline,scenario,")
    assert lines[4].startswith("r2,cilium,False,t,cross-node,False,tcp,1,Gbit/s,51.35")


def test_write_three_and_five_runs_from_raw_files(tmp_path, iperf3_json):
    base = [10.0, 10.2, 10.4]
    for run_id, (cni, profile, _), factor, started in zip(
            ("p1", "p2", "p3", "p4", "p5"), CHAIN, (1.0, 1.02, 1.4, 1.3, 2.0), "13524", strict=True):
        lab_run(tmp_path, run_id, cni, started, scaled(base, factor), profile=profile, iperf3_json=iperf3_json)
    comparison, out = compare_render.write_comparison(tmp_path, ["p1", "p3", "p5"], charts=False,
                                                       profile_chain=PROFILE_CHAIN)
    assert out == tmp_path / "comparisons" / "p1_vs_2-runs"
    assert [e["change_percent"] for e in comparison["rows"][1]["runs"]] == pytest.approx([None, 40.0, 100.0])
    assert comparison["steps"]["chain"] == ["canal/vxlan", "cilium/kube-proxy", "cilium/native-bpf"]
    assert comparison["steps"]["settings"][0]["changes"] == ["cni: canal -> cilium", "profile: vxlan -> kube-proxy"]
    assert not (out / "comparison.png").exists() and "![" not in (out / "comparison.md").read_text()
    # All five, the newest of each profile, canal/vxlan first; the chart has a bar per run.
    comparison, out = compare_render.write_comparison(tmp_path, baseline="cilium/tunnel", profile_chain=PROFILE_CHAIN)
    assert out == tmp_path / "comparisons" / "p2_vs_4-runs"
    assert [run["run_id"] for run in comparison["runs"]] == ["p1", "p2", "p3", "p4", "p5"]
    tcp = comparison["steps"]["tests"][1]
    assert tcp["shares"] == pytest.approx([2.0, 38.0, -10.0, 70.0])
    assert tcp["step_significant"] == [False, True, True, True]
    svg = (out / "comparison.svg").read_text()
    for text in ("canal/vxlan", "cilium/native-legacy", "20.40", "10.20"):  # legend and value labels
        assert f"<!-- {text} -->" in svg
    first = (out / "comparison.svg").read_bytes()
    compare_render.write_comparison(tmp_path, baseline="cilium/tunnel", profile_chain=PROFILE_CHAIN)
    assert (out / "comparison.svg").read_bytes() == first


def test_run_charts_are_deterministic(tmp_path, iperf3_json):
    run = write_run(tmp_path, "r1", "canal", "1")
    meta = json.loads((run / "run.json").read_text())
    meta["plan"] = [{"id": "0001-t-r1", "scenario": "t", "placement": "host", "protocol": "tcp", "streams": 1}]
    (run / "run.json").write_text(json.dumps(meta))
    (run / "raw" / "0001-t-r1.json").write_text(json.dumps(iperf3_json("tcp-1")))
    run_report.write_reports(run)
    first = (run / "throughput.svg").read_bytes()
    run_report.write_reports(run)
    assert (run / "throughput.svg").read_bytes() == first
    assert (run / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_a_matrix_difference_names_the_tests_not_the_matrices():
    a = summary("canal", [10.0], [1.0])
    b = summary("cilium", [12.0], [1.0])
    b["matrix"] = [{"name": "host-tcp-1"}, {"name": "cross-node-tcp-1", "streams": 4}, {"name": "host-tcp-rr"},
                   {"name": "service-tcp-crr"}]
    (warning,) = [w for w in compare.compare([a, b])["warnings"] if "matrix" in w]
    assert warning == ("cilium differs from the baseline canal in matrix: only in the baseline: cross-node-udp; "
                       "only in this run: host-tcp-rr, service-tcp-crr; defined otherwise: cross-node-tcp-1")
