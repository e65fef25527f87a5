"""Every filter as a playbook calls it: looked up by name in its FilterModule, with a small real input.

The pure functions behind them have their own tests; these check the layer in between: the name a
playbook uses reaches the right function, arguments are converted as the sidecar docs promise, a bad
input becomes an AnsibleFilterError that names the filter, and every filter has its sidecar doc.
"""

import copy
import importlib
import json
import shlex
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from kube_cases import IMAGE, NODE_OBJECTS, PODS, SERVICES
from kube_cases import NODES as K8S_NODES
from test_gate import write_run
from test_inputs import GOOD
from test_matrix import MATRIX, NODES, SETTINGS
from test_proxmox import CLONE, CLUSTER, VMS
from test_proxmox import SETTINGS as PVE_SETTINGS

from ansible_collections.netlab.lab.plugins import filter as filter_plugins

FILTER_DIR = Path(filter_plugins.__path__[0])
DATA = Path(__file__).parents[1] / "data"
# Every filter file, so a new one is held to these tests too.
FILTERS = {name: fn for path in sorted(FILTER_DIR.glob("*.py"))
           for name, fn in importlib.import_module(f"{filter_plugins.__name__}.{path.stem}").FilterModule()
           .filters().items()}
RKE2 = "v1.33.5+rke2r1"
VERSION = {"kubernetes": {"major": "1", "minor": "33", "gitVersion": RKE2}}


def daemonset(name, **labels):
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"template": {"metadata": {"labels": labels}}}}


def test_every_filter_has_its_sidecar_doc():
    docs = {path.stem: yaml.safe_load(path.read_text()) for path in FILTER_DIR.glob("*.yml")}
    assert sorted(docs) == sorted(FILTERS)
    for name, doc in docs.items():
        assert doc["DOCUMENTATION"]["name"] == name
        assert doc["DOCUMENTATION"]["options"]["_input"]["description"]
        assert doc["EXAMPLES"].strip() and "_value" in doc["RETURN"]


def test_every_filter_is_called_here():
    called = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert set(FILTERS) <= called
    assert set(REFUSALS) <= set(FILTERS)


def call(name, *args, **kwargs):
    return FILTERS[name](*args, **kwargs)


def test_bench_plan():
    plan = call("bench_plan", MATRIX, NODES, SETTINGS)
    assert len(plan) == len(MATRIX) * SETTINGS["repeats"]
    assert plan[0]["scenario"] == "host-tcp-1" and plan[0]["client"]["ip"] == "198.18.0.12"


def test_bench_segments():
    plan = call("bench_plan", MATRIX, NODES, SETTINGS)
    assert [len(s["tests"]) for s in call("bench_segments", plan)] == [len(plan)]


def test_bench_congestion_reads():
    reads = call("bench_congestion_reads", [NODES[0], {"name": "c", "pods": []}])
    assert reads[0] == {"node": "a", "read_in": "pod0", "argv": [
        "ip", "netns", "exec", "pod0", "cat", "/proc/sys/net/ipv4/tcp_congestion_control",
        "/proc/sys/net/ipv4/tcp_allowed_congestion_control", "/proc/sys/net/ipv4/tcp_available_congestion_control"]}
    assert reads[1]["read_in"] == "host" and reads[1]["argv"][0] == "cat"


def test_bench_congestion():
    # This machine's sysctls, as read in a lab pod's namespace (a new namespace inherits bbr).
    results = [{"item": {"node": "a", "read_in": "pod0"}, "stdout": "bbr\nreno bbr\nreno bbr cubic\n"}]
    found = call("bench_congestion", results, "cubic")
    assert found == {"nodes": {"a": {"default": "bbr", "allowed": ["reno", "bbr"],
                                     "available": ["reno", "bbr", "cubic"], "read_in": "pod0"}}, "problems": []}
    [problem] = call("bench_congestion", results, "cubic", "kubernetes")["problems"]
    assert problem.startswith("bench_congestion cubic is available on node a but not allowed for the pods' user 65532")
    assert call("bench_congestion", results, "bbr", "kubernetes")["problems"] == []


def test_bench_servers():
    plan = call("bench_plan", MATRIX, NODES, SETTINGS)
    assert [(s["pod"], s["program"]) for s in call("bench_servers", plan, SETTINGS)] == [
        (None, "iperf3"), (None, "cpu"), ("pod0", "iperf3"), ("pod1", "iperf3")]
    assert all(s["stop"][:2] == ["sh", "-c"] for s in call("bench_servers", plan, SETTINGS))


def test_bench_watched():
    """Each node's cleanup after a killed run: its marked processes, its pid files, its own Service delete."""
    delete = [{"host": "a", "argv": ["netlab-datapath", "service-del", "netlab-iperf3"]}]
    a, b = call("bench_watched", ["a", "b"], delete)
    assert (a["host"], b["host"]) == ("a", "b") and a["argv"][:2] == ["sh", "-c"]
    assert "netlab-datapath service-del netlab-iperf3" in a["argv"][2] and "service-del" not in b["argv"][2]
    assert "NETLAB_BENCH_RUN=1" in b["argv"][2] and "/run/netlab-netserver-*.pid" in b["argv"][2]
    assert call("bench_watched", ["a"]) == [{"host": "a", "argv": b["argv"]}]


def test_bench_local_service():
    facts = [{**node, "service_cidr": "198.18.128.0/17"} for node in NODES]
    service = call("bench_local_service", facts, [*MATRIX, {"name": "svc", "placement": "service"}], SETTINGS)
    assert service["ip"] == "198.18.128.10" and len(service["add"]) == 2 * 2 and len(service["delete"]) == 2


def test_bench_ports():
    assert call("bench_ports", MATRIX, SETTINGS) == [{"name": "iperf3-tcp", "port": 5201, "protocol": "TCP"},
                                                     {"name": "iperf3-udp", "port": 5201, "protocol": "UDP"}]
    rr = [*MATRIX, {"name": "rr", "placement": "service", "protocol": "tcp_rr"}]
    assert [(p["port"], p["protocol"]) for p in call("bench_ports", rr, {**SETTINGS, "netperf_port": 13000})][2:] == [
        (13000, "TCP"), (13001, "TCP"), (13001, "UDP"), (13003, "TCP"), (13003, "UDP")]


def test_bench_input_problems():
    assert call("bench_input_problems", GOOD) == []
    assert call("bench_input_problems", {**GOOD, "repeats": 0}) == [
        "bench_repeats must be auto or an integer from 1 to 1000, got 0"]
    assert call("bench_input_problems", {**GOOD, "repeats": "auto", "max_repeats": 7, "target_ci_percent": 5}) == []


def test_bench_plan_span():
    fixed = call("bench_plan", MATRIX, NODES, SETTINGS)
    span = call("bench_plan_span", fixed, SETTINGS)
    per_test = SETTINGS["duration"] + SETTINGS["omit"]
    assert span["shortest_s"] == span["longest_s"] == len(fixed) * per_test
    assert span["msg"].startswith(f"The plan: {len(fixed)} tests, ")
    auto = {**SETTINGS, "repeats": "auto", "max_repeats": 7, "target_ci_percent": 5}
    planned = call("bench_plan", MATRIX, NODES, auto)
    span = call("bench_plan_span", planned, auto)
    assert (span["certain"], span["tests"]) == (3 * len(MATRIX), 7 * len(MATRIX))
    assert span["longest_s"] == 7 * len(MATRIX) * per_test and span["shortest_s"] == 3 * len(MATRIX) * per_test
    assert "(bench_repeats auto: 3 to 7 rounds, as each test's median needs)" in span["msg"]


def test_bench_iperf3_version(data_dir):
    assert call("bench_iperf3_version", (data_dir / "iperf3-version-3.18.txt").read_text()) == "3.18"


def test_bench_netperf_version(data_dir):
    assert call("bench_netperf_version", (data_dir / "netperf-version-2.7.0.txt").read_text()) == "2.7.0"
    # netperf -V on a node without netperf: the command failed, its stdout is empty.
    assert call("bench_netperf_version", "") is None


def test_bench_gate(tmp_path, data_dir):
    base = write_run(tmp_path, data_dir, "base")
    worse = write_run(tmp_path, data_dir, "worse", scale={"cross-node-udp": 0.5})
    result = call("bench_gate", str(worse), str(base), "10")
    assert (result["passed"], result["failed"]) == (False, ["cross-node-udp"])
    assert result["lines"][-1].startswith("FAILED: 1 of 3") and not (worse / "gate.json").exists()


def test_bench_manifests():
    docs = call("bench_manifests", "run-1", tuple(K8S_NODES), MATRIX, IMAGE, "5201")
    assert docs[0]["kind"] == "Namespace"
    servers = [d for d in docs if d["kind"] == "Pod" and "server" in d["metadata"]["name"]]
    assert servers and all(d["spec"]["containers"][0]["ports"][0]["containerPort"] == 5201 for d in servers)


def test_bench_k8s_nodes():
    first, second = call("bench_k8s_nodes", K8S_NODES, NODE_OBJECTS, PODS, SERVICES)
    assert first["pods"][0] == {"name": "iperf3-client", "ip": "10.42.1.5"}
    assert second["service_ip"] == "10.43.17.4"
    placeholders = call("bench_k8s_nodes", K8S_NODES, matrix_entries=MATRIX)
    assert [n["name"] for n in placeholders] == K8S_NODES


def test_bench_k8s_meta(data_dir):
    meta = call("bench_k8s_meta", VERSION, K8S_NODES, NODE_OBJECTS, PODS,
                (data_dir / "iperf3-version-3.18.txt").read_text())
    assert (meta["kubernetes"], meta["iperf3"], meta["netperf"]) == (RKE2, "3.18", None)
    with_netperf = call("bench_k8s_meta", VERSION, K8S_NODES, NODE_OBJECTS, PODS, "iperf 3.18", None,
                        (data_dir / "netperf-version-2.7.0.txt").read_text())
    assert with_netperf["netperf"] == "2.7.0"
    assert meta["environment_nodes"][0]["vcpus"] == 8 and meta["environment_nodes"][0]["cpu_model"] is None
    # k8s_exec's looped results, as the role registers them.
    read = [{"item": {"node": K8S_NODES[0]}, "stdout": (data_dir / "proc-cpuinfo-2cpu.txt").read_text()}]
    with_cpu = call("bench_k8s_meta", VERSION, K8S_NODES, NODE_OBJECTS, PODS, "iperf 3.18", None, None, read)
    assert [n["cpu_model"] for n in with_cpu["environment_nodes"]] == ["AMD EPYC", None]


def test_bench_k8s_calls():
    calls = call("bench_k8s_calls", K8S_NODES, cni_namespace="")
    assert calls["read_nodes"] == [{"kind": "Node", "name": n} for n in K8S_NODES]
    assert calls["read_cilium_pods"][0]["namespace"] == "kube-system"
    docs = call("bench_manifests", "run-1", K8S_NODES, MATRIX, IMAGE, 5201)
    assert call("bench_k8s_calls", K8S_NODES, docs, "300", "120")["wait_pods"]["retries"] == 150
    # bench_exec_timeout sets every short exec's task bound; the command gets 5 s less in the pod.
    slow = call("bench_k8s_calls", K8S_NODES, docs, 300, 120, exec_timeout="45")
    for one in [slow["iperf3_version"], *slow["cilium_status"], *slow["cpu_info"]]:
        assert one["task_timeout"] == 45 and shlex.split(one["command"])[:3] == ["sh", "-c", 'exec timeout 40 "$@"']


def test_bench_samplers():
    plan = call("bench_plan", MATRIX, call("bench_k8s_nodes", K8S_NODES, None, None, None, MATRIX), SETTINGS,
                {"namespace": "ns"})
    samplers = call("bench_samplers", plan, SETTINGS)
    assert sorted(s["pod"] for s in samplers) == sorted({t["cpu_pod"] for t in plan})
    assert all(s["start"]["namespace"] == "ns" and s["task_timeout"] == 20 for s in samplers)
    # A run's own exec bound (bench_exec_timeout): the task's, and 5 s less for the sampler in the pod.
    slow = call("bench_samplers", plan, {**SETTINGS, "exec_timeout": "8"})
    assert all(s["task_timeout"] == 8 and "exec timeout 3 " in s["read"]["command"] for s in slow)


def test_bench_k8s_pods_state():
    pod = {"metadata": {"name": "iperf3-client"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "iperf3", "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}}
    state = call("bench_k8s_pods_state", {"resources": [pod]}, ["iperf3-client"])
    assert state["done"] and not state["ready"]
    assert state["message"] == "pod iperf3-client cannot start: ErrImagePull: not found"


def test_bench_k8s_agents():
    agent = {"metadata": {"name": "cilium-abc"}, "status": {"phase": "Running"}}
    assert call("bench_k8s_agents", {"results": [{"resources": [agent]}]}, K8S_NODES[:1]) == ["cilium-abc"]


def test_bench_k8s_stale():
    found = call("bench_k8s_stale", {"resources": [{"metadata": {"name": "netlab-bench-old"}}]}, "netlab-bench-new")
    assert found == {"names": ["netlab-bench-old"], "interrupted": [],
                     "command": "kubectl delete namespace -l app.kubernetes.io/name=netlab-iperf3"}


def test_bench_k8s_exec_problems():
    assert call("bench_k8s_exec_problems", [[{"rc": 0, "stdout": "iperf 3.18"}, "iperf3 --version"],
                                            [{"skipped": True}, "netperf -V"]]) == []
    assert call("bench_k8s_exec_problems", [[{"rc": 2, "stderr": "no"}, "x"]]) == ["x exited 2: no"]


def test_bench_k8s_cni():
    found = call("bench_k8s_cni", {"resources": [daemonset("rke2-canal", **{"k8s-app": "canal"})]})
    assert (found["cni"], found["daemonset"]) == ("canal", "rke2-canal")


def test_bench_k8s_datapath(data_dir):
    read = {"stdout": (data_dir / "cilium-status-1.18-native.json").read_text(), "rc": 0}
    cilium = call("bench_k8s_datapath", {"cni": "cilium", "daemonset": "cilium"}, K8S_NODES, None,
                  {"results": [read, read]}, "1500\n")
    assert cilium["nodes"][K8S_NODES[1]]["routing"] == "Native"
    assert cilium["summary"].startswith("cilium 1.18.1, routing Native") and cilium["summary"].endswith("MTU 1500")
    # An agent that could not be asked stops the run with what its exec said (review F4), not "not read".
    failed = {"results": [read, {"stdout": "", "stderr": "sh: 1: cilium-dbg: not found", "rc": 127}]}
    with pytest.raises(AnsibleFilterError, match=f"cilium-dbg status on {K8S_NODES[1]} exited 127: sh: 1: cilium-dbg"):
        call("bench_k8s_datapath", {"cni": "cilium", "daemonset": "cilium"}, K8S_NODES, None, failed, "1500")
    flannel = json.loads((data_dir / "node-flannel-vxlan.json").read_text())
    flannel["metadata"]["name"] = K8S_NODES[0]
    canal = call("bench_k8s_datapath", {"cni": "canal", "daemonset": "rke2-canal"}, K8S_NODES,
                 {"resources": [flannel]}, None, "n/a")
    assert canal["summary"] == "canal: flannel vxlan"  # no MTU read: none claimed


def test_service_scale_counts():
    assert call("service_scale_counts", (1000, 0, 1000), "10.43.0.0/16", "30000") == [0, 1000]


def test_rke2_install_env():
    assert call("rke2_install_env", "tarball", RKE2, "agent") == {
        "INSTALL_RKE2_VERSION": RKE2, "INSTALL_RKE2_TYPE": "agent", "INSTALL_RKE2_METHOD": "tar"}


def test_rke2_ready_nodes():
    ready = {"metadata": {"name": "server-1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    down = {"metadata": {"name": "agent-1"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert call("rke2_ready_nodes", json.dumps({"items": [ready, down]})) == ["server-1"]


def test_rke2_datapath(data_dir):
    state = call("rke2_datapath", (data_dir / "ip-link-vxlan.json").read_text(), "canal",
                 {"backend": "vxlan", "nic_mtu": 1500})
    assert state["problems"] == [] and state["state"]["vni"] == 1


def test_rke2_profile_values():
    settings = {"routing": "vxlan", "kube_proxy_replacement": True, "host_routing": "legacy", "masquerade": "bpf",
                "mtu": 1400}
    assert call("rke2_profile_values", settings) == {
        "cilium_routing_mode": "tunnel", "cilium_kube_proxy_replacement": True, "cilium_bpf_masquerade": True,
        "cilium_host_legacy_routing": True, "cilium_mtu": 1400, "cilium_datapath_mode": "veth",
        "cilium_encryption": "none", "cilium_bandwidth_manager": False, "cilium_bandwidth_manager_bbr": False,
        "cilium_notrack": False, "cilium_big_tcp": False, "kube_proxy_mode": "iptables", "canal_mtu": 1400,
        "canal_backend": "vxlan"}
    assert call("rke2_profile_values", {**settings, "encryption": "wireguard"})["canal_backend"] == "wireguard"
    assert call("rke2_profile_values", {**settings, "routing": "native"})["canal_backend"] == "host-gw"


def test_rke2_canal_mtu():
    assert call("rke2_canal_mtu", "9000", "wireguard") == 8920


def test_rke2_ingress():
    assert call("rke2_ingress", RKE2, "none") == {"ingress-controller": "none"}


def test_proxmox_plan():
    assert [vm["vmid"] for vm in call("proxmox_plan", VMS, PVE_SETTINGS)] == [vm["vmid"] for vm in VMS]


def test_proxmox_vm_changes():
    vm = call("proxmox_plan", VMS, PVE_SETTINGS)[0]
    assert call("proxmox_vm_changes", vm, PVE_SETTINGS, CLONE)["cores"] == 8


def test_proxmox_taken():
    planned = call("proxmox_plan", VMS, PVE_SETTINGS)
    assert [vm["vmid"] for vm in call("proxmox_taken", planned, CLUSTER, "netlab", "netlab-")] == [9102]


def test_proxmox_placement():
    planned = call("proxmox_plan", VMS, PVE_SETTINGS)
    cluster = {"nodes": [{"node": "pve1", "status": "online", "maxcpu": 64, "maxmem": 2 ** 40, "mem": 0}],
               "storages": [{"storage": "local-lvm", "content": ["images"], "shared": False}],
               "vms": [{"vmid": 9000, "name": "debian-13-cloudinit", "node": "pve1", "template": 1}],
               "template_configs": {9000: {"scsi0": "local-lvm:base-9000-disk-0"}}}
    placed = call("proxmox_placement", planned, cluster, placement="spread", template="debian-13-cloudinit",
                  node_templates={}, lab_node="", pair=[])
    assert placed["problems"] == [] and {vm["node"] for vm in placed["vms"]} == {"pve1"}


def test_bench_pair():
    assert call("bench_pair", ["a", "b", "c"], {"a": "h1", "b": "h1", "c": "h2"}) == ["a", "c"]
    # A lab's agents, then its servers: the pair takes a server on another machine over an agent on the first's.
    assert call("bench_pair", ["a1", "a2"], {"a1": "h1", "a2": "h1", "s1": "h2"}, servers=["s1"]) == ["a1", "s1"]
    # A mesh: every agent, or with fewer than three, the servers too.
    assert call("bench_pair", ["a1", "a2", "a3"], {}, servers=["s1"], mesh=True) == ["a1", "a2", "a3"]
    assert call("bench_pair", ["a1", "a2"], {}, servers=["s1"], mesh=True) == ["a1", "a2", "s1"]


def test_bench_k8s_choose():
    nodes = {"results": [{"resources": [dict(item, status={**item["status"], "conditions": [
        {"type": "Ready", "status": "True"}]})]} for one in NODE_OBJECTS["results"] for item in one["resources"]]}
    assert call("bench_k8s_choose", nodes)["nodes"] == sorted(K8S_NODES)


def test_proxmox_lab_vms():
    assert [vm["vmid"] for vm in call("proxmox_lab_vms", CLUSTER, "netlab", "netlab-")] == [9101]


def test_proxmox_guest_ipv4():
    interfaces = [{"name": "lo", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4"}]},
                  {"name": "eth0", "ip-addresses": [{"ip-address": "198.18.50.23", "ip-address-type": "ipv4"}]}]
    assert call("proxmox_guest_ipv4", interfaces, "198.18.50.0/24") == ["198.18.50.23"]


def test_node_nic():
    facts = {"eth0": {"device": "eth0", "mtu": 1500, "ipv4": {"address": "198.18.0.11"}}, "hostname": "n"}
    assert call("node_nic", facts, "198.18.0.11")["device"] == "eth0"
    assert call("node_nic", facts, "198.18.0.99") == {}


def test_node_hardware():
    facts = {"ansible_nodename": "netlab-agent-1", "ansible_kernel": "6.18.44", "ansible_processor_vcpus": 2,
             "ansible_memtotal_mb": 24105, "ansible_processor": ["0", "AuthenticAMD", "AMD EPYC", "1", "AuthenticAMD",
                                                                 "AMD EPYC"], "ansible_local": {"netlab": {}}}
    assert call("node_hardware", facts) == {"name": "netlab-agent-1", "kernel": "6.18.44", "vcpus": 2,
                                            "memtotal_mb": 24105, "cpu_model": "AMD EPYC"}


def test_bpf_missing(data_dir):
    probe = json.loads((data_dir / "bpftool-feature-probe-6.18.json").read_text())
    assert call("bpf_missing", probe) == []
    probe["helpers"]["cgroup_sock_addr_available_helpers"].remove("bpf_get_prandom_u32")
    assert call("bpf_missing", probe) == ["helper bpf_get_prandom_u32 in cgroup_sock_addr programs"]


def test_bench_raw(data_dir):
    raw = json.loads((data_dir / "raw-cilium-model-service.json").read_text())
    counters = raw.pop("netlab_counters")
    stderr = "".join(f"netlab-counters {json.dumps(counters[k])}\n" for k in ("before", "after"))
    assert json.loads(call("bench_raw", json.dumps(raw), stderr, 0, "", counters["node"])) == {
        **raw, "netlab_counters": counters}
    assert json.loads(call("bench_raw", "", "Killed", 124))["error"] == "no output (exit 124): Killed"


pending = copy.deepcopy(PODS["resources"][2])
pending["status"]["phase"] = "Pending"
# A bad input to each filter that checks its input: an AnsibleFilterError that names the filter and the cause.
REFUSALS = {
    "bench_plan": (([*MATRIX[:1], {"name": "x", "placement": "host", "streams": 1000}], NODES, SETTINGS),
                   "bench_plan: x: streams must be an integer from 1 to 128, got 1000"),
    "bench_iperf3_version": (((DATA / "iperf3-version-3.12.txt").read_text(),),
                             r"bench_iperf3_version: iperf3 3\.12 is too old"),
    "bench_netperf_version": (("sh: 1: netperf: not found",), "bench_netperf_version: cannot read the netperf"),
    "bench_gate": (("/nonexistent/run", "/nonexistent/base", 10),
                   r"bench_gate: /nonexistent/base: no readable run\.json"),
    "bench_congestion": (([{"item": {"node": "a"}, "stdout": "cat: /proc/sys/net/ipv4/tcp_congestion_control: "
                                                              "No such file or directory"}], "cubic"),
                         "bench_congestion: node a: not the three congestion control sysctls"),
    "bench_local_service": ((NODES[:1], MATRIX, SETTINGS), "bench_local_service: the benchmark needs two nodes"),
    "bench_manifests": (("run-1", K8S_NODES, MATRIX, "netlab/iperf3:latest", 5201),
                        "bench_manifests: bench_pod_image must be pinned by digest"),
    "bench_k8s_nodes": ((K8S_NODES, NODE_OBJECTS, {"resources": [pending]}, SERVICES),
                        "bench_k8s_nodes: .*iperf3-server-cross is Pending"),
    "bench_k8s_meta": ((VERSION, ["netlab-agent-9"], NODE_OBJECTS, PODS, "iperf 3.18"),
                       "bench_k8s_meta: .*no node netlab-agent-9"),
    "bench_k8s_calls": ((K8S_NODES, [{"kind": "Namespace"}]), "bench_k8s_calls: 'metadata'"),
    "bench_k8s_choose": (({"resources": []},), r"bench_k8s_choose: the cluster has 0 Ready, schedulable node\(s\)"),
    "bench_k8s_agents": (({"results": [{"resources": []}]}, K8S_NODES[:1]),
                         f"bench_k8s_agents: no running Cilium agent on {K8S_NODES[0]}"),
    "bench_k8s_datapath": (({"cni": "cilium"}, K8S_NODES, None, {"results": [{"stdout": "{not json"}]}),
                           "bench_k8s_datapath: cilium-dbg status on .* printed no JSON \\(Expecting property name"),
    "service_scale_counts": (([0, 40000], "10.43.0.0/16", 30000),
                             r"service_scale_counts: service_scale_counts \[40000\] exceed"),
    "rke2_install_env": (("curl", RKE2, "server"), "rke2_install_env: .*install method"),
    "rke2_datapath": (("", "weave", {}), "rke2_datapath: cannot read the weave datapath: unknown CNI"),
    "rke2_canal_mtu": ((600, "vxlan"), "rke2_canal_mtu: .*below the IPv4 minimum"),
    "rke2_ingress": ((RKE2, "haproxy"), "rke2_ingress: .*not one of none, ingress-nginx, traefik"),
    "rke2_profile_values": (({"routing": "native"},), "rke2_profile_values: not a profile's settings, KeyError"),
    "proxmox_plan": ((VMS, PVE_SETTINGS | {"tag": "Net Lab"}), "proxmox_plan: .*tag 'Net Lab'"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_filter_refuses_a_bad_input_by_name(name):
    args, message = REFUSALS[name]
    with pytest.raises(AnsibleFilterError, match=f"^{message}"):
        call(name, *args)


def test_cni_profile():
    shipped = yaml.safe_load((Path(__file__).parents[2] / "playbooks/vars/profiles.yml").read_text())
    found = call("cni_profile", shipped["netlab_profiles"], "cilium", "", shipped["netlab_profile_defaults"])
    assert (found["name"], found["problems"], found["settings"]["host_routing"]) == ("native-bpf", [], "bpf")
    assert "no profile 'x'" in call("cni_profile", shipped["netlab_profiles"], "canal", "x")["problems"][0]


def test_cni_profile_model_problems():
    shipped = yaml.safe_load((Path(__file__).parents[2] / "playbooks/vars/profiles.yml").read_text())
    netkit = call("cni_profile", shipped["netlab_profiles"], "cilium", "native-netkit")
    kernel = {"release": "6.18.44", "source": "/proc/config.gz", "has": {"CONFIG_NETKIT": False}}
    assert "lacks CONFIG_NETKIT (read from /proc/config.gz)" in call("cni_profile_model_problems", netkit, kernel)[0]
    assert "the datapath model does not run it" in call("cni_profile_model_problems", netkit)[0]
    reference = call("cni_profile", shipped["netlab_profiles"], "cilium", "native-bpf")
    assert call("cni_profile_model_problems", reference, kernel) == []


def test_rke2_chart_problems():
    assert call("rke2_chart_problems", "v1.33.5+rke2r1", "cilium") == []
    assert call("rke2_chart_problems", "v1.27.16+rke2r1", "cilium")
    netkit = {"datapath_mode": "netkit"}
    assert call("rke2_chart_problems", "v1.33.5+rke2r1", "cilium", netkit) == []
    assert call("rke2_chart_problems", "v1.29.8+rke2r1", "cilium", netkit) == []
    assert "older than 1.16, which has no bpf.datapathMode" in call("rke2_chart_problems", "v1.30.3+rke2r1", "cilium",
                                                                     netkit)[0]
    assert call("rke2_chart_problems", "v1.30.3+rke2r1", "cilium", {}) == []
