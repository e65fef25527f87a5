"""TCP congestion control, named and pinned: the command lines, what iperf3 and netperf report, the refusal
before a run and the warnings of comparisons and the gate (samples captured with -C, tests/data/SOURCES.md)."""

import copy
import json

import pytest
from test_compare import TCP, UDP, summary
from test_gate import raw_doc, summary_of, write_run
from test_inputs import GOOD
from test_matrix import SETTINGS

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, inputs, matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.report import compare, gate, raw, run_report
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import congestion, kube_calls, kube_objects

PINNED = {**SETTINGS, "netperf_port": 12865, "congestion": "cubic"}
# This machine's three sysctls (kernel 6.18, CONFIG_DEFAULT_TCP_CONG="bbr"), as cat prints them in a lab pod.
HERE = "bbr\nreno bbr\nreno bbr cubic\n"
# A stock Debian node: CUBIC built in and its default, BBR a module that is not loaded.
STOCK = "cubic\nreno cubic\nreno cubic\n"


def entry(**fields):
    return matrix.normalize_entry({"name": "t", "placement": "cross-node", **fields})


def test_iperf3_tcp_tests_pin_both_ends_and_udp_tests_do_not():
    argv = commands.client_argv(entry(streams=4, reverse=True), "198.19.3.10", PINNED)
    assert argv[-2:] == ["--congestion", "cubic"] and "--reverse" in argv
    assert "--congestion" not in commands.client_argv(entry(protocol="udp"), "198.19.3.10", PINNED)
    # A run planned before the pin (resumed with its own settings) keeps its command lines.
    assert "--congestion" not in commands.client_argv(entry(), "198.19.3.10", SETTINGS)


@pytest.mark.parametrize("protocol", ["tcp_rr", "tcp_crr"])
def test_netperf_tcp_tests_pin_both_ends_and_tcp_rr_reports_what_they_used(protocol):
    argv = commands.client_argv(entry(protocol=protocol), "198.19.3.10", {**PINNED, "congestion": "bbr"})
    options = argv[argv.index("--") + 1:]
    assert options[options.index("-K") + 1] == "bbr,bbr"
    # TCP_CRR's selectors come back empty (tests/data/netperf-tcp_crr-cubic.txt): not asked for.
    assert options[options.index("-k") + 1].endswith(",LOCAL_CONG_CONTROL,REMOTE_CONG_CONTROL") == (
        protocol == "tcp_rr")


def test_netperf_udp_rr_has_no_congestion_control():
    argv = commands.client_argv(entry(protocol="udp_rr"), "198.19.3.10", PINNED)
    assert "-K" not in argv and "CONG_CONTROL" not in argv[-1]


def test_the_sysctls_are_read_where_the_tests_sockets_live():
    nodes = [{"name": "a", "pods": [{"name": "netlab-a-p0", "ip": "198.19.2.10"}]}, {"name": "b", "pods": []}]
    reads = commands.congestion_reads(nodes)
    assert reads[0]["argv"][:4] == ["ip", "netns", "exec", "netlab-a-p0"] and reads[0]["read_in"] == "netlab-a-p0"
    assert reads[1]["argv"] == congestion.read_argv() and reads[1]["read_in"] == "host"
    # Kubernetes: in a pod on the pod network where the node has one, else in its hostNetwork pod.
    docs = kube_objects.run_objects("run-1", ["n1", "n2"], [{"name": "h", "placement": "host"},
                                                           {"name": "x", "placement": "cross-node"}],
                                    "r/i@sha256:" + "a" * 64, 5201, None, 12865)
    pods = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pod"}
    calls = kube_calls.calls(docs, 300, 120)["congestion"]
    assert [c["node"] for c in calls] == ["n1", "n2"]
    assert all(not pods[c["read_in"]]["spec"].get("hostNetwork") and c["pod"] == c["read_in"] for c in calls)
    assert "tcp_allowed_congestion_control" in calls[0]["command"]


def test_iperf3_reports_what_each_end_used(data_dir):
    cubic = raw.parse_iperf3(json.loads((data_dir / "iperf3-tcp-cubic.json").read_text()))
    assert (cubic["congestion_client"], cubic["congestion_server"]) == ("cubic", "cubic")
    # --reverse: the server sends; its socket is the sender's.
    doc = json.loads((data_dir / "iperf3-tcp-bbr-reverse.json").read_text())
    doc["end"]["receiver_tcp_congestion"] = "cubic"  # as a client whose pin its kernel refused would report
    reverse = raw.parse_iperf3(doc)
    assert (reverse["congestion_client"], reverse["congestion_server"]) == ("cubic", "bbr")
    udp = raw.parse_iperf3(json.loads((data_dir / "iperf3-udp.json").read_text()))
    assert (udp["congestion_client"], udp["congestion_server"]) == (None, None)


def test_netperf_reports_what_each_end_used(data_dir):
    record = raw.parse_netperf(raw_doc(data_dir, "netperf-tcp_rr-cubic.txt"))
    assert record["ok"] and (record["congestion_client"], record["congestion_server"]) == ("cubic", "cubic")
    # As the pods' user 65532 on this machine: -K cubic is refused by the kernel, netperf says nothing, exits 0
    # and runs on the namespace's default; the record says what was used.
    record = raw.parse_netperf(raw_doc(data_dir, "netperf-tcp_rr-cubic-unprivileged.txt"))
    assert record["ok"] and (record["congestion_client"], record["congestion_server"]) == ("bbr", "bbr")
    # Empty selectors (TCP_CRR) and none asked for (a run from before the pin) are no report.
    for name in ("netperf-tcp_crr-cubic.txt", "netperf-tcp_rr.txt"):
        record = raw.parse_netperf(raw_doc(data_dir, name))
        assert record["ok"] and (record["congestion_client"], record["congestion_server"]) == (None, None)


def test_the_pinned_one_is_refused_where_the_kernel_lacks_it_naming_what_it_has():
    nodes = congestion.environment([{"node": "a", "stdout": HERE, "read_in": "p0"},
                                    {"node": "b", "stdout": STOCK, "read_in": "p1"}])
    assert nodes["a"] == {"default": "bbr", "allowed": ["reno", "bbr"], "available": ["reno", "bbr", "cubic"],
                          "read_in": "p0"}
    assert congestion.problems("cubic", nodes) == []
    assert congestion.problems("bbr", nodes) == [
        "bench_congestion bbr is not available on node b: its kernel has reno cubic "
        "(tcp_available_congestion_control); pin one of those"]


def test_an_available_one_the_pods_user_may_not_pick_is_refused_in_words():
    nodes = congestion.environment([{"node": "a", "stdout": HERE}])
    [problem] = congestion.problems("cubic", nodes, kube_objects.UID)
    assert problem == (
        "bench_congestion cubic is available on node a but not allowed for the pods' user 65532: an unprivileged "
        "socket may only pick one of tcp_allowed_congestion_control (reno bbr); pin one of those, or add cubic "
        "to net.ipv4.tcp_allowed_congestion_control on the node")
    assert congestion.problems("bbr", nodes, kube_objects.UID) == []


def test_a_reading_that_is_not_the_sysctls_is_refused():
    with pytest.raises(congestion.CongestionError, match="node a: not the three congestion control sysctls"):
        congestion.environment([{"node": "a", "stdout": "sh: 1: cat: not found"}])


@pytest.mark.parametrize(("value", "ok"), [("cubic", True), ("bbr", True), ("reno", True), ("vegas", False),
                                           ("CUBIC", False), ("", False)])
def test_an_unknown_congestion_control_is_a_clear_input_error(value, ok):
    found = inputs.problems({**GOOD, "congestion": value})
    assert found == ([] if ok else [f"bench_congestion must be one of cubic, bbr, reno, got {value!r}"])


def with_congestion(run_summary, used, pinned="cubic", default="bbr"):
    run_summary = copy.deepcopy(run_summary)
    run_summary["congestion"] = {"pinned": pinned, "default": default, "used": used}
    return run_summary


def test_comparisons_and_the_step_table_warn_when_two_runs_used_different_congestion_control():
    a = with_congestion(summary("canal", TCP, UDP, settings={"routing": "vxlan"}), "cubic")
    b = with_congestion(summary("cilium", TCP, UDP, settings={"routing": "native"}), "bbr", pinned="bbr")
    c = with_congestion(summary("cilium", TCP, UDP, profile="p", settings={"routing": "native"}), "bbr", pinned="bbr")
    comparison = compare.compare([a, b, c], chain=["canal", "cilium", "cilium/p"])
    assert comparison["warnings"] == [
        "cilium differs from the baseline canal in TCP congestion control: cubic vs bbr",
        "cilium/p differs from the baseline canal in TCP congestion control: cubic vs bbr"]
    first, second = comparison["steps"]["settings"]
    assert first["changes"][0] == "TCP congestion control: cubic -> bbr"
    assert not any("congestion" in change for change in second["changes"])
    # Runs from before the pin: what their tests used (iperf3 reports it), else nothing to hold them to.
    assert compare.compare([summary("canal", TCP, UDP), summary("cilium", TCP, UDP)])["warnings"] == []


def test_a_profile_s_congestion_control_is_its_side_step_s_one_change_said_once():
    base = with_congestion(summary("cilium", TCP, UDP, profile="native-bpf", settings={"routing": "native"}), "cubic")
    bbr = with_congestion(summary("cilium", TCP, UDP, profile="native-bbr",
                                  settings={"routing": "native", "congestion": "bbr"}), "bbr", pinned="bbr")
    [step] = compare.compare([base, bbr], side_steps=[["cilium/native-bpf", "cilium/native-bbr"]])["side_steps"]
    assert step["settings"][0]["changes"] == ["TCP congestion control: cubic -> bbr"]
    # The bbr variant's report says what it does not price: the bandwidth manager's fq pacing.
    assert run_report.bbr_note(bbr)[0].startswith("BBR WITHOUT FQ: ")
    assert run_report.bbr_note(base) == []
    with_fq = {**bbr, "profile_settings": {**bbr["profile_settings"], "bandwidth_manager": True}}
    assert run_report.bbr_note(with_fq) == []


def test_the_gate_warns_without_changing_its_verdict(tmp_path, data_dir):
    base = summary_of(write_run(tmp_path, data_dir, "base"))
    run = summary_of(write_run(tmp_path, data_dir, "run"))
    # The captured raw files' iperf3 tests used bbr (this machine's default, before the pin).
    assert base["congestion"] == {"pinned": None, "default": None, "used": "bbr"}
    assert gate.check(base, run, 10)["warnings"] == []
    cubic = with_congestion(run, "cubic")
    verdict = gate.check(base, cubic, 10)
    assert verdict["passed"] and verdict["warnings"] == [
        "TCP congestion control differs: baseline base used bbr, run run cubic; TCP figures may differ by that "
        "alone (bench_congestion pins it)"]
    assert f"WARNING: {verdict['warnings'][0]}" in gate.render(verdict)


def test_the_context_names_the_pinned_one_and_the_nodes_default():
    run = summary("cilium", TCP, UDP)
    found = dict(run_report.context(with_congestion(run, "cubic")))
    assert found["TCP congestion control"] == "pinned cubic, node default bbr"
    mixed = {"pinned": "cubic", "default": "bbr (a), cubic (b)", "used": "bbr/cubic"}
    assert dict(run_report.context({**run, "congestion": mixed}))["TCP congestion control"] == (
        "pinned cubic, node default bbr (a), cubic (b), tests used bbr/cubic")
    assert dict(run_report.context(run))["TCP congestion control"] == "-"
    assert run_report.context_digest(with_congestion(run, "cubic")).endswith(
        "; TCP congestion control pinned cubic, node default bbr")
    assert congestion.describe({"a": {"default": "bbr"}, "b": {"default": "cubic"}}) == "bbr (a), cubic (b)"
