"""The benchmark's input rules (plugin_utils/plan/inputs.py), one bad value at a time and all at once."""

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import inputs

GOOD = {"transport": "local", "duration": 30, "omit": 2, "repeats": 3, "iperf3_port": 5201, "udp_bitrate": "1G",
        "timeout_margin": 30, "pod_timeout": 300, "delete_timeout": 120, "exec_timeout": 20, "run_id": "", "resume": "",
        "matrix": [{"name": "cross-node-tcp-1", "placement": "cross-node"},
                   {"name": "cross-node-udp", "placement": "cross-node", "protocol": "udp", "bitrate": "2.5G",
                    "length": 1400}],
        "image": "", "render_only": False, "pod_overrides": {}, "nodes": [], "runs_bench": True,
        "baseline": "", "tolerance": 10, "disturbed_percent": 10, "disturbed_reruns": 2}
IMAGE = "registry.example/netlab-iperf3@sha256:" + "a" * 64


def test_good_inputs_have_no_problem():
    assert inputs.problems(GOOD) == []
    # -e key=value gives strings: numbers in them are numbers.
    assert inputs.problems(GOOD | {"duration": "5", "iperf3_port": "5201"}) == []
    # The datapath models serve Services too.
    assert inputs.problems(GOOD | {"matrix": [{"name": "svc", "placement": "service"}]}) == []
    cluster = GOOD | {"transport": "kubernetes", "image": IMAGE, "nodes": ["worker-1", "worker-2"],
                      "matrix": [{"name": "svc", "placement": "service"}]}
    assert inputs.problems(cluster) == []
    # Render-only names a placeholder image; a run without the benchmark needs none.
    assert inputs.problems(cluster | {"image": "", "render_only": True}) == []
    assert inputs.problems(cluster | {"image": "", "runs_bench": False}) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"duration": 0}, "bench_duration must be an integer from 1 to 86400, got 0"),
    ({"duration": "abc"}, "bench_duration must be an integer"),
    ({"duration": True}, "bench_duration must be an integer"),
    ({"omit": -1}, "bench_omit must be an integer from 0 to 3600, got -1"),
    ({"repeats": 0}, "bench_repeats must be auto or an integer from 1 to 1000"),
    ({"repeats": "sometimes"}, "bench_repeats must be auto or an integer from 1 to 1000, got 'sometimes'"),
    ({"repeats": "auto", "max_repeats": 2}, "bench_max_repeats must be an integer from 3 to 1000, got 2"),
    ({"repeats": "auto", "target_ci_percent": 0}, "bench_target_ci_percent must be an integer from 1 to 100, got 0"),
    ({"repeats": "auto", "resume": "r1", "resumed_repeats": 3},
     "bench_repeats auto cannot resume run r1, planned with bench_repeats 3: resume it with -e bench_repeats=3"),
    ({"repeats": 3, "resume": "r1", "resumed_repeats": "auto"},
     "bench_repeats 3 cannot resume run r1, planned with bench_repeats auto: resume it with -e bench_repeats=auto"),
    ({"iperf3_port": 99999}, "bench_iperf3_port must be an integer from 1 to 65535, got 99999"),
    ({"iperf3_port": "http"}, "bench_iperf3_port must be an integer from 1 to 65535, got 'http'"),
    ({"udp_bitrate": "lots"}, "bench_udp_bitrate must be an iperf3 bitrate above zero"),
    ({"udp_bitrate": "0M"}, "bench_udp_bitrate must be an iperf3 bitrate above zero"),
    ({"udp_bitrate": "1 G"}, "bench_udp_bitrate must be an iperf3 bitrate"),
    ({"timeout_margin": 0}, "bench_timeout_margin must be an integer from 1 to 3600"),
    ({"pod_timeout": 0}, "bench_pod_timeout must be an integer from 1 to 86400"),
    ({"delete_timeout": -5}, "bench_delete_timeout must be an integer"),
    ({"exec_timeout": 5}, "bench_exec_timeout must be an integer from 6 to 3600, got 5"),
    ({"disturbed_percent": -1}, "bench_disturbed_percent must be an integer from 0 to 100, got -1"),
    ({"disturbed_percent": 150}, "bench_disturbed_percent must be an integer from 0 to 100, got 150"),
    ({"disturbed_reruns": 11}, "bench_disturbed_reruns must be an integer from 0 to 10, got 11"),
    ({"run_id": "../x"}, "bench_run_id must be empty or a run directory's name"),
    ({"resume": "/tmp/run"}, "bench_resume must be empty or a run directory's name"),
    ({"transport": "ssh"}, "bench_transport must be one of local, kubernetes, got 'ssh'"),
    ({"matrix": "host-tcp-1"}, "bench_matrix must be a list of tests"),
    ({"matrix": []}, "the benchmark matrix is empty"),
    ({"matrix": [{"name": "a", "placement": "moon"}]}, "a: placement 'moon' is not one of"),
    ({"matrix": [{"name": "a", "placement": "host", "streams": 0}]}, "a: streams must be an integer from 1 to 128"),
    ({"matrix": [{"name": "a", "placement": "host", "port": 1}]}, "a: unknown key(s) port"),
    ({"matrix": [{"name": "a", "placement": "host", "protocol": "udp", "length": 0}]}, "a: length must be"),
    ({"matrix": [{"name": "a", "placement": "host", "length": 1400}]}, "a: bitrate and length apply to UDP"),
    ({"transport": "kubernetes", "image": "iperf3:3.18"}, "must be pinned by digest"),
    ({"transport": "kubernetes", "image": IMAGE, "pod_overrides": {"status": {}}},
     "bench_pod_overrides: unknown key(s) ['status']"),
    ({"transport": "kubernetes", "image": IMAGE, "pod_overrides": ["x"]}, "must be a mapping"),
    ({"transport": "kubernetes", "image": IMAGE, "nodes": ["worker-1"]}, "two or three different Kubernetes node"),
    ({"transport": "kubernetes", "image": IMAGE, "nodes": ["a", "a"]}, "two or three different Kubernetes node"),
    ({"transport": "kubernetes", "image": IMAGE, "nodes": ["Worker_1", "b"]}, "two or three different"),
])
def test_one_bad_input_one_problem(change, message):
    found = inputs.problems(GOOD | change)
    assert len(found) == 1 and message in found[0], found


def test_every_problem_is_reported_at_once():
    found = inputs.problems(GOOD | {"iperf3_port": 0, "udp_bitrate": "lots", "repeats": 0})
    assert [p.split()[0] for p in found] == ["bench_repeats", "bench_iperf3_port", "bench_udp_bitrate"]


def test_the_gate_inputs():
    # -e bench_tolerance=12.5 gives a string; the gate reads it as the number it holds.
    assert inputs.problems(GOOD | {"baseline": "20261122T190312Z-cilium", "tolerance": "12.5"}) == []
    assert inputs.problems(GOOD | {"tolerance": 99.5}) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"tolerance": "fast"}, "bench_tolerance must be a number of percent above 0 and below 100, got 'fast'"),
    ({"tolerance": 0}, "bench_tolerance must be a number of percent above 0 and below 100, got 0"),
    ({"tolerance": "150"}, "bench_tolerance must be a number of percent above 0 and below 100, got '150'"),
    ({"tolerance": True}, "bench_tolerance must be a number"),
    ({"baseline": "../x"}, "bench_baseline must be empty or a run directory's name (letters, digits"),
    ({"baseline": "runs/a"}, "bench_baseline must be empty or a run directory's name"),
    ({"baseline": "latest"}, "bench_baseline must be empty or a run's id (not latest, which becomes this run)"),
])
def test_a_bad_gate_input_is_one_problem(change, message):
    found = inputs.problems(GOOD | change)
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(("hosts", "label", "said"), [
    ({"a": "pve1", "b": "pve2", "c": "pve1"}, "", None),
    ({"a": "pve1", "b": "pve1", "c": "pve2"}, "",
     "bench_distinct_hosts: the cross-node pair a and b both run on pve1: name another pair (netlab_bench_nodes) or "
     "place the VMs on two hosts"),
    ({"a": "pve1", "b": "pve1", "c": "pve1"}, "",
     "bench_distinct_hosts: every node runs on one host (pve1), so no cross-node pair crosses a wire: spread the lab "
     "over more hosts, or leave bench_distinct_hosts off"),
    ({"a": "pve1"}, "", "bench_distinct_hosts: the host of b is not known (a Proxmox lab's PVE node; on a cluster of "
                        "your own, bench_host_label names the node label that says it)"),
    ({}, "topology.kubernetes.io/zone", None),  # read from the nodes, checked then
])
def test_distinct_hosts(hosts, label, said):
    found = inputs.problems({"distinct_hosts": True, "nodes": ["a", "b"], "node_hosts": hosts, "host_label": label})
    assert found == ([said] if said else [])
    assert inputs.problems({"distinct_hosts": False, "nodes": ["a", "b"], "node_hosts": {"a": "x", "b": "x"}}) == []


def test_distinct_hosts_waits_for_a_plan_that_places_the_vms():
    values = {"distinct_hosts": True, "nodes": ["a", "b"], "node_hosts": {}}
    assert inputs.problems(values | {"hosts_known": False}) == []
    assert inputs.problems(values | {"hosts_known": True}) != []


def test_a_mesh_needs_three_nodes():
    assert inputs.problems({"mesh": True, "transport": "local", "nodes": ["a", "b", "c"]}) == []
    assert inputs.problems({"mesh": True, "transport": "local", "nodes": ["a", "b"]}) == [
        "bench_mesh needs three or more benchmark nodes, got 2 (a, b): on the local lab -e netlab_agents=3 or more"]
    assert inputs.problems({"mesh": True, "transport": "local", "nodes": []}) == []  # not known before provisioning
    # The Kubernetes transport: as many node names as the mesh takes; two are not a mesh.
    assert inputs.problems({"mesh": True, "transport": "kubernetes", "nodes": ["a", "b", "c", "d"]}) == []
    assert inputs.problems({"mesh": True, "transport": "kubernetes", "nodes": ["a", "b"]}) == [
        "bench_mesh needs three or more benchmark nodes, got 2 (a, b): name them in bench_nodes (netlab_bench_nodes)"]
    assert "must be two or three different Kubernetes node names" in inputs.problems(
        {"transport": "kubernetes", "nodes": ["a", "b", "c", "d"]})[0]
