"""Kubernetes transport: the cluster readers (pods, nodes, versions, the datapath); exec lines planned on them."""

import copy
import shlex

import pytest
from kube_cases import (
    CONTROL_PLANE,
    IMAGE,
    NODE_OBJECTS,
    NODES,
    PODS,
    SERVICES,
    SETTINGS,
    TRANSPORT,
)

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_read


def test_running_pods_become_the_planner_nodes():
    first, second = kube_read.bench_nodes(NODES, NODE_OBJECTS, PODS, SERVICES)
    assert first["pods"] == [{"name": "iperf3-client", "ip": "10.42.1.5"},
                             {"name": "iperf3-server-same", "ip": "10.42.1.6"}]
    assert (first["host_pod"], second["host_pod"]) == ("iperf3-client-host", "iperf3-server-host")
    assert (first["ip"], second["ip"]) == ("192.168.1.11", "192.168.1.12")
    assert second["pods"] == [{"name": "iperf3-server-cross", "ip": "10.42.2.7"}]
    assert second["service_ip"] == "10.43.17.4"


def test_a_pod_not_running_or_on_another_node_is_refused():
    pending = copy.deepcopy(PODS)
    pending["resources"][2]["status"]["phase"] = "Pending"
    with pytest.raises(kube_read.KubeError, match="iperf3-server-cross is Pending"):
        kube_read.bench_nodes(NODES, NODE_OBJECTS, pending, SERVICES)
    moved = copy.deepcopy(PODS)
    moved["resources"][2]["spec"]["nodeName"] = NODES[0]
    with pytest.raises(kube_read.KubeError, match="runs on netlab-agent-1, not on netlab-agent-2"):
        kube_read.bench_nodes(NODES, NODE_OBJECTS, moved, SERVICES)


def test_kubernetes_plan_execs_in_the_pinned_pods_with_an_in_pod_timeout(reference):
    nodes = kube_read.bench_nodes(NODES, NODE_OBJECTS, PODS, SERVICES)
    plan = {t["scenario"]: t for t in commands.plan(reference, nodes, SETTINGS, TRANSPORT)}
    cross = plan["cross-node-tcp-1"]
    # Between two readings of the client node's /proc/stat (cpu.around), in the client pod.
    assert cross["exec"] == {
        "namespace": "netlab-bench-x", "pod": "iperf3-client", "container": "iperf3",
        "command": shlex.join(cpu.around(shlex.split(
            "timeout 62 iperf3 --client 10.42.2.7 --port 5201 --json --time 30 --omit 2")))}
    assert cross["client_cmd"] == shlex.split(cross["exec"]["command"]), "k8s_exec splits with shlex"
    # The server node's /proc/stat is sampled in the server pod for the whole run (review F5): one sampler per
    # server pod, started before the tests and read after them, bounded by the plan's length.
    assert cross["cpu_pod"] == "iperf3-server-cross" and cross["cpu_exec"] is None
    samplers = {s["pod"]: s for s in commands.samplers(list(plan.values()), SETTINGS)}
    assert set(samplers) == {t["server"]["pod"] for t in plan.values()}
    length = len(plan) * (77 + 20) + 120
    assert shlex.split(samplers["iperf3-server-cross"]["start"]["command"])[4:] == cpu.sampler("iperf3-server-cross",
                                                                                              length)
    assert shlex.split(samplers["iperf3-server-cross"]["read"]["command"])[:4] == ["sh", "-c", 'exec timeout 15 "$@"',
                                                                                   "sh"]
    assert cross["cpu_peer"] is None
    assert "server_cmd" not in cross and cross["exec_host"] is None
    # In the pod 62 s; the task 77 s; busy or refused retried for the test's own 32 s.
    assert cross["bounds"] == {"in_pod_timeout": 62, "task_timeout": 77, "exec_timeout": 20, "retries": 16,
                               "delay": 2}
    assert "--client 10.43.17.4 " in plan["service-tcp-1"]["exec"]["command"]
    assert plan["service-tcp-1"]["server"]["host"] == NODES[1]
    assert plan["host-tcp-1"]["exec"]["pod"] == "iperf3-client-host"
    assert "--client 192.168.1.12 " in plan["host-tcp-1"]["exec"]["command"]
    assert "--client 10.42.1.6 " in plan["same-node-tcp-4"]["exec"]["command"]


def test_iperf3_version_from_real_output(data_dir):
    assert kube_read.iperf3_version((data_dir / "iperf3-version-3.18.txt").read_text()) == "3.18"
    with pytest.raises(kube_read.KubeError, match=r"iperf3 3\.12 is too old: the benchmark needs 3\.16"):
        kube_read.iperf3_version((data_dir / "iperf3-version-3.12.txt").read_text())
    with pytest.raises(kube_read.KubeError, match="cannot read"):
        kube_read.iperf3_version("sh: iperf3: not found")


def test_netperf_version_from_real_output(data_dir):
    assert kube_read.netperf_version((data_dir / "netperf-version-2.7.0.txt").read_text()) == "2.7.0"
    assert kube_read.netperf_version("\n") is None
    with pytest.raises(kube_read.KubeError, match="cannot read the netperf version"):
        kube_read.netperf_version("netperf: invalid option -- 'V'")


def test_run_metadata_records_where_the_pods_ran_and_the_taints():
    # k8s_cluster_info's version.server: the dynamic client's /version document under "kubernetes".
    version = {"kubernetes": {"major": "1", "minor": "33", "gitVersion": "v1.33.5+rke2r1"}}
    records = kube_read.node_records(NODES, NODE_OBJECTS, {NODES[0]: "pve1", NODES[1]: "pve1"})
    meta = kube_read.run_metadata(version, records, PODS)
    assert meta["kubernetes"] == meta["rke2"] == "v1.33.5+rke2r1"
    first, second = meta["nodes"]
    assert (first["name"], first["kernel"], first["cpu"]) == (NODES[0], "6.12.48-1-amd64", "8")
    assert (first["provider_id"], first["system_uuid"], first["host"]) == (
        "aws:///eu-west-1a/i-0a", "netlab-agent-1-uuid", "pve1")
    assert second["provider_id"] is None
    assert second["taints"] == CONTROL_PLANE and meta["tainted_nodes"] == [NODES[1]]
    assert meta["image_ids"] == [IMAGE]
    assert kube_read.environment_nodes(records)[0] == {"name": NODES[0], "kernel": "6.12.48-1-amd64", "vcpus": 8,
                                                  "memtotal_mb": 32089, "cpu_model": None}


def test_the_cpu_model_comes_from_proc_cpuinfo_read_on_each_node(data_dir):
    captured = (data_dir / "proc-cpuinfo-2cpu.txt").read_text()
    assert kube_read.cpuinfo_model(captured) == "AMD EPYC"
    # arm64's /proc/cpuinfo names no model (its keys, by hand): the model stays unknown, not guessed.
    assert kube_read.cpuinfo_model("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n") is None
    records = kube_read.node_records(NODES, NODE_OBJECTS)
    nodes = kube_read.environment_nodes(records, {NODES[1]: captured})
    assert [n["cpu_model"] for n in nodes] == [None, "AMD EPYC"]


def test_a_missing_node_is_named():
    with pytest.raises(kube_read.KubeError, match="no node netlab-agent-9"):
        kube_read.node_records([NODES[0], "netlab-agent-9"], NODE_OBJECTS)


def test_datapath_summary_from_the_readers_outputs():
    cilium = kube_read.datapath({"cni": "cilium", "daemonset": "cilium"}, {NODES[0]: {
        "version": "1.18.2", "state": "Ok", "kube_proxy_replacement": "True", "routing": "native",
        "host_routing": "BPF", "masquerading": "BPF", "tunnel_protocol": None, "mtu": 1500}}, 1500)
    assert cilium["summary"] == ("cilium 1.18.2, routing native, kube-proxy replacement True, host routing BPF, "
                                 "masquerading BPF, pod MTU 1500")
    canal = kube_read.datapath({"cni": "canal", "daemonset": "rke2-canal"}, {NODES[0]: {"backend": "vxlan"}}, 1450)
    assert canal["summary"] == "canal: flannel vxlan, pod MTU 1450" and canal["known"]
    images = {"calico-node": "rancher/hardened-calico:v3.30.3-build20250909",
              "kube-flannel": "rancher/hardened-flannel:v0.27.3-build20250901"}
    canal = kube_read.datapath({"cni": "canal", "daemonset": "rke2-canal", "images": images},
                          {NODES[0]: {"backend": "vxlan"}}, 1450)
    assert canal["summary"] == ("canal: flannel vxlan (calico-node v3.30.3-build20250909, kube-flannel "
                                "v0.27.3-build20250901), pod MTU 1450")
    assert canal["images"] == images
    other = kube_read.datapath({"cni": "calico", "daemonset": "calico-node", "names": ["calico-node"]}, {}, None)
    assert other["summary"] == "calico CNI (DaemonSets: calico-node): datapath not read"
    assert not other["known"]
    unknown = kube_read.datapath({"cni": "unknown", "daemonset": None, "names": ["kube-router", "rke2-ingress"]},
                                 {}, None)
    assert unknown["summary"] == "unknown CNI (DaemonSets: kube-router, rke2-ingress): datapath not read"
    assert unknown["daemonsets"] == ["kube-router", "rke2-ingress"]


def test_a_mesh_reads_a_pod_on_every_node():
    """bench_mesh: the mesh pods (iperf3-mesh-<index>) are the run's, pinned and Running like the others."""
    from kube_cases import node_item, pod_item
    names = [*NODES, "netlab-agent-3", "netlab-agent-4"]
    pods = {"resources": [pod_item("client", names[0], "10.42.1.5"), pod_item("server-cross", names[1], "10.42.2.7"),
                          pod_item("mesh-2", names[2], "10.42.3.8"), pod_item("mesh-3", names[3], "10.42.4.9")]}
    objects = {"results": [{"resources": [node_item(name, f"192.168.1.{11 + i}")]} for i, name in enumerate(names)]}
    nodes = kube_read.bench_nodes(names, objects, pods, {"resources": []}, mesh=True)
    assert [(n["name"], n["ip"], [p["name"] for p in n["pods"]]) for n in nodes] == [
        (names[0], "192.168.1.11", ["iperf3-client"]), (names[1], "192.168.1.12", ["iperf3-server-cross"]),
        (names[2], "192.168.1.13", ["iperf3-mesh-2"]), (names[3], "192.168.1.14", ["iperf3-mesh-3"])]
    moved = copy.deepcopy(pods)
    moved["resources"][3]["spec"]["nodeName"] = names[2]
    with pytest.raises(kube_read.KubeError, match="iperf3-mesh-3 runs on netlab-agent-3, not on netlab-agent-4"):
        kube_read.bench_nodes(names, objects, moved, {"resources": []}, mesh=True)


def _cluster_nodes(*specs):
    """Nodes as k8s_info lists them (Node v1 core): (name, zone label or None, taint effect or None, Ready,
    cordoned)."""
    from kube_cases import node_item
    items = []
    for i, (name, zone, taint, ready, cordoned) in enumerate(specs):
        item = node_item(name, f"192.168.1.{11 + i}", taints=[{"key": "k", "effect": taint}] if taint else None)
        item["metadata"]["labels"] = {"topology.kubernetes.io/zone": zone} if zone else {}
        item["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
        if cordoned:
            item["spec"]["unschedulable"] = True
        items.append(item)
    return {"resources": items}


ZONE = "topology.kubernetes.io/zone"


def test_without_node_names_the_pair_is_chosen_on_two_machines_untainted_first():
    nodes = _cluster_nodes(("cp-1", "pve1", "NoSchedule", True, False), ("w-1", "pve2", None, True, False),
                           ("w-2", "pve2", None, True, False), ("w-3", "pve1", None, True, False),
                           ("w-4", "pve3", None, False, False), ("w-5", "pve3", None, True, True))
    chosen = kube_read.choose_nodes(nodes, ZONE)
    assert chosen["nodes"] == ["w-1", "w-3"] and chosen["hosts"] == {"w-1": "pve2", "w-3": "pve1"}
    assert chosen["candidates"] == ["w-1", "w-2", "w-3", "cp-1"], "not Ready and cordoned nodes are left out"
    assert chosen["said"] == ("bench_nodes not set: the pair w-1 (on pve2), w-3 (on pve1), chosen from the cluster's "
                              "4 Ready, schedulable nodes (1 tainted, taken last)")
    # Machines not known: the first two.
    assert kube_read.choose_nodes(nodes)["nodes"] == ["w-1", "w-2"]
    # A mesh: every untainted node; the tainted too where fewer than three are untainted.
    assert kube_read.choose_nodes(nodes, ZONE, mesh=True)["nodes"] == ["w-1", "w-2", "w-3"]
    few = _cluster_nodes(("cp-1", None, "NoExecute", True, False), ("w-1", None, None, True, False),
                         ("w-2", None, "PreferNoSchedule", True, False))
    assert kube_read.choose_nodes(few, mesh=True)["nodes"] == ["w-1", "w-2", "cp-1"]


def test_a_cluster_with_too_few_ready_nodes_is_named():
    nodes = _cluster_nodes(("a", None, None, True, False), ("b", None, None, False, False))
    with pytest.raises(kube_read.KubeError, match=r"1 Ready, schedulable node\(s\) \(a\); the benchmark needs 2"):
        kube_read.choose_nodes(nodes)
    with pytest.raises(kube_read.KubeError, match="the mesh needs 3"):
        kube_read.choose_nodes(_cluster_nodes(("a", None, None, True, False), ("b", None, None, True, False)),
                               mesh=True)
