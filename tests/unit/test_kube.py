"""Kubernetes transport: rendered objects (checked against the Kubernetes schemas), exec lines, pod reading."""

import copy
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_calls, kube_objects, kube_read

ROOT_DEFAULTS = "roles/{}/defaults/main.yml"
IMAGE = "netlab/iperf3@sha256:" + "0" * 64
RUN = "20261122T190312Z-cilium"
NODES = ["netlab-agent-1", "netlab-agent-2"]


@pytest.fixture(scope="module")
def defaults(request):
    root = request.config.rootpath
    return {role: yaml.safe_load((root / ROOT_DEFAULTS.format(role)).read_text()) for role in ("bench", "rke2")}


@pytest.fixture(scope="module")
def k8s_version(defaults):
    # The Kubernetes minor of the RKE2 release the lab installs, e.g. v1.33.5+rke2r1 -> 1.33.
    return ".".join(defaults["rke2"]["rke2_version"].lstrip("v").split(".")[:2])


@pytest.fixture(scope="module")
def reference(defaults):
    return defaults["bench"]["bench_reference_matrix"]


def render(entries, run=RUN):
    placements = [e["placement"] for e in matrix.normalize_matrix(entries)]
    return kube_objects.manifests(run, NODES, placements, IMAGE, 5201)


def test_every_object_is_valid_for_the_lab_kubernetes(reference, k8s_version):
    docs = render(reference)
    assert [d["kind"] for d in docs] == ["Namespace", "Service"] + ["Pod"] * 5
    for doc in docs:
        kubernetes_validate.validate(doc, k8s_version, strict=True)


def test_schema_validation_would_catch_a_bad_field(reference, k8s_version):
    doc = copy.deepcopy(render(reference)[2])
    doc["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, k8s_version, strict=True)


def test_pods_are_pinned_to_their_nodes(reference):
    pods = {d["metadata"]["name"]: d["spec"] for d in render(reference) if d["kind"] == "Pod"}
    assert {name: spec["nodeName"] for name, spec in pods.items()} == {
        "iperf3-client": "netlab-agent-1", "iperf3-server-same": "netlab-agent-1",
        "iperf3-server-cross": "netlab-agent-2", "iperf3-client-host": "netlab-agent-1",
        "iperf3-server-host": "netlab-agent-2"}
    assert {name for name, spec in pods.items() if spec.get("hostNetwork")} == {
        "iperf3-client-host", "iperf3-server-host"}
    for spec in pods.values():
        container = spec["containers"][0]
        assert container["image"] == IMAGE
        assert container["command"] == ["iperf3", "--server", "--port", "5201"]
        assert "limits" not in container["resources"], "a CPU limit would measure the quota"
        assert "affinity" not in spec, "placement is nodeName, never a scheduler preference"


def test_one_namespace_per_run_and_the_service_selects_the_cross_node_server(reference):
    docs = render(reference)
    namespace = docs[0]["metadata"]["name"]
    assert namespace == "netlab-bench-20261122t190312z-cilium"
    assert all(d["metadata"]["namespace"] == namespace for d in docs[1:])
    service = docs[1]
    server = next(d for d in docs if d["metadata"]["name"] == "iperf3-server-cross")
    assert service["spec"]["selector"].items() <= server["metadata"]["labels"].items()
    assert {p["protocol"] for p in service["spec"]["ports"]} == {"TCP", "UDP"}
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_only_the_pods_a_matrix_needs():
    docs = render([{"name": "cross", "placement": "cross-node"}])
    assert [d["metadata"]["name"] for d in docs[1:]] == ["iperf3-client", "iperf3-server-cross"]
    assert all("readinessProbe" not in d["spec"]["containers"][0] for d in docs[1:]), "finding 9: no probe"
    # No hostNetwork pod: the namespace can enforce the restricted Pod Security level.
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_is_a_dns_label_for_any_run_id():
    name = kube_objects.namespace("My Run_" + "x" * 80)
    assert len(name) <= 63 and name.startswith("netlab-bench-my-run-x")
    assert not name.endswith("-")


@pytest.mark.parametrize("image", ["", "netlab/iperf3:3.18", "netlab/iperf3@sha256:abc"])
def test_image_must_be_pinned_by_digest(image):
    with pytest.raises(kube_read.KubeError, match="pinned by digest"):
        kube_objects.manifests(RUN, NODES, ["cross-node"], image, 5201)


def pod_item(component, node, ip, phase="Running"):
    # Shaped as k8s_info returns a Pod (Kubernetes API reference v1.33, Pod v1 core: metadata,
    # spec.nodeName, status.phase/podIP/containerStatuses[].imageID).
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"iperf3-{component}", "labels": {"app.kubernetes.io/component": component}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "podIP": ip, "containerStatuses": [{"imageID": IMAGE}]}}


def node_item(name, ip, taints=None, provider_id=None):
    # A Node as in the Kubernetes API reference v1.33 (Node v1 core): spec.providerID and spec.taints,
    # status.addresses (InternalIP, Hostname), status.capacity and status.nodeInfo (systemUUID ...).
    spec = {"podCIDR": "10.42.1.0/24"}
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec, "status": {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "8", "memory": "32859948Ki", "pods": "110"},
        "nodeInfo": {"kubeletVersion": "v1.33.5+rke2r1", "kernelVersion": "6.12.48-1-amd64",
                     "osImage": "Debian GNU/Linux 13 (trixie)", "containerRuntimeVersion": "containerd://2.1.4",
                     "systemUUID": f"{name}-uuid", "machineID": "m", "architecture": "amd64",
                     "operatingSystem": "linux"}}}


# k8s_info returns {"resources": [...]}; a looped call {"results": [{"resources": [...]}, ...]}.
PODS = {"resources": [pod_item("client", NODES[0], "10.42.1.5"), pod_item("server-same", NODES[0], "10.42.1.6"),
                      pod_item("server-cross", NODES[1], "10.42.2.7"),
                      pod_item("client-host", NODES[0], "192.168.1.11"),
                      pod_item("server-host", NODES[1], "192.168.1.12")]}
SERVICES = {"resources": [{"metadata": {"name": "iperf3-cross"}, "spec": {"clusterIP": "10.43.17.4"}}]}
# The control-plane taint as kubeadm/RKE2 document it (Kubernetes docs, "Taints and Tolerations").
CONTROL_PLANE = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
NODE_OBJECTS = {"results": [{"resources": [node_item(NODES[0], "192.168.1.11", provider_id="aws:///eu-west-1a/i-0a")]},
                            {"resources": [node_item(NODES[1], "192.168.1.12", taints=CONTROL_PLANE)]}]}
SETTINGS = {"duration": 30, "omit": 2, "repeats": 1, "port": 5201, "udp_bitrate": "1G", "timeout_margin": 30}
TRANSPORT = {"namespace": "netlab-bench-x"}


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
    # The server node's /proc/stat is read in the server pod, before and after.
    assert cross["cpu_exec"] == {"namespace": "netlab-bench-x", "pod": "iperf3-server-cross", "container": "iperf3",
                                 "command": shlex.join(cpu.READ)}
    assert cross["cpu_peer"] is None
    assert "server_cmd" not in cross and cross["exec_host"] is None
    # In the pod 62 s; the task 77 s; busy or refused retried for the test's own 32 s.
    assert cross["bounds"] == {"in_pod_timeout": 62, "task_timeout": 77, "retries": 16, "delay": 2}
    assert "--client 10.43.17.4 " in plan["service-tcp-1"]["exec"]["command"]
    assert plan["service-tcp-1"]["server"]["host"] == NODES[1]
    assert plan["host-tcp-1"]["exec"]["pod"] == "iperf3-client-host"
    assert "--client 192.168.1.12 " in plan["host-tcp-1"]["exec"]["command"]
    assert "--client 10.42.1.6 " in plan["same-node-tcp-4"]["exec"]["command"]


def test_a_third_node_holds_the_same_node_pair(reference, k8s_version):
    third = [*NODES, "netlab-agent-3"]
    docs = kube_objects.manifests(RUN, third, [e["placement"] for e in reference], IMAGE, 5201)
    pinned = {d["metadata"]["name"]: d["spec"]["nodeName"] for d in docs if d["kind"] == "Pod"}
    assert pinned["iperf3-client-same"] == pinned["iperf3-server-same"] == "netlab-agent-3"
    assert pinned["iperf3-client"] == NODES[0]
    for doc in docs:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    nodes = kube_read.placeholder_nodes(third, [e["placement"] for e in reference])
    plan = {t["scenario"]: t for t in commands.plan(reference, nodes, SETTINGS, TRANSPORT)}
    same = plan["same-node-tcp-1"]
    assert same["client"]["host"] == same["server"]["host"] == "netlab-agent-3"
    assert same["exec"]["pod"] == "iperf3-client-same"
    assert "--client POD_IP:iperf3-server-same " in same["exec"]["command"]


@pytest.mark.parametrize("nodes", [["a"], ["a", "a"], ["a", "b", "c", "d"]])
def test_node_names_are_checked(nodes):
    with pytest.raises(kube_read.KubeError, match="two different nodes"):
        kube_objects.manifests(RUN, nodes, ["cross-node"], IMAGE, 5201)


OVERRIDES = {
    "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}, "labels": {"team": "net"}},
    "spec": {"imagePullSecrets": [{"name": "registry"}], "priorityClassName": "benchmark"},
    "container": {"resources": {"requests": {"cpu": "2", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                  "imagePullPolicy": "IfNotPresent"},
}


def test_pod_overrides_are_merged_into_every_pod_and_stay_valid(reference, k8s_version):
    placements = [e["placement"] for e in reference]
    docs = kube_objects.manifests(RUN, NODES, placements, IMAGE, 5201, OVERRIDES)
    pods = [d for d in docs if d["kind"] == "Pod"]
    for pod in pods:
        kubernetes_validate.validate(pod, k8s_version, strict=True)
        assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        assert pod["metadata"]["labels"]["team"] == "net"
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == kube_objects.APP, "merged, not replaced"
        assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
        assert pod["spec"]["priorityClassName"] == "benchmark"
        assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
        container = pod["spec"]["containers"][0]
        assert container["resources"] == OVERRIDES["container"]["resources"]
        assert container["imagePullPolicy"] == "IfNotPresent" and container["image"] == IMAGE
    assert [d for d in docs if d["kind"] != "Pod"] == [d for d in render(reference) if d["kind"] != "Pod"]
    # A misspelt override is caught by the same strict schemas.
    bad = kube_objects.manifests(RUN, NODES, ["cross-node"], IMAGE, 5201, {"spec": {"priorityClass": "x"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad[1], k8s_version, strict=True)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"spec": {"nodeName": "other"}}, "may not set"),
    ({"spec": {"affinity": {}}}, "may not set"),
    ({"container": {"image": "x"}}, "may not set"),
    ({"metadata": {"labels": {"app.kubernetes.io/component": "x"}}}, "may not set the labels"),
    ({"pod": {}}, "unknown key"),
])
def test_overrides_cannot_move_or_change_the_benchmark(overrides, message):
    with pytest.raises(kube_read.KubeError, match=message):
        kube_objects.manifests(RUN, NODES, ["cross-node"], IMAGE, 5201, overrides)


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


def test_every_kubernetes_core_call(reference):
    docs = render(reference)
    nodes = kube_read.placeholder_nodes(NODES, [e["placement"] for e in reference])
    plan = commands.plan(reference, nodes, SETTINGS, {"namespace": docs[0]["metadata"]["name"]})
    calls = kube_calls.all_calls(NODES, docs, 300, 120, plan)
    assert [d["kind"] for d in calls["create_namespace"]["definition"]] == ["Namespace", "Service"]
    assert calls["create_pods"]["wait_condition"] == {"type": "Ready", "status": "True"}
    assert calls["create_pods"]["wait_timeout"] == 300 and len(calls["create_pods"]["definition"]) == 5
    assert calls["delete_namespace"] == {"state": "absent", "api_version": "v1", "kind": "Namespace",
                                         "name": docs[0]["metadata"]["name"], "wait": True, "wait_timeout": 120}
    assert calls["read_cilium_pods"][1]["field_selectors"] == [f"spec.nodeName={NODES[1]}"]
    assert "namespace" not in calls["read_daemonsets"], "a CNI may run outside kube-system"
    moved = kube_calls.all_calls(NODES, cni_namespace="cilium-system")
    assert {c["namespace"] for c in moved["read_cilium_pods"] + moved["cilium_status"]} == {"cilium-system"}
    assert calls["cilium_status"][0]["container"] == "cilium-agent"
    assert calls["pod_mtu"]["pod"] == "iperf3-client"
    # One /proc/cpuinfo read per node, in a pod that runs on it.
    on = {d["metadata"]["name"]: d["spec"]["nodeName"] for d in docs if d["kind"] == "Pod"}
    assert sorted(c["node"] for c in calls["cpu_info"]) == sorted(NODES)
    assert all(on[c["pod"]] == c["node"] and c["command"] == "cat /proc/cpuinfo" for c in calls["cpu_info"])
    # The image needs netperf only when the pods serve it: then, and only then, its version is read.
    assert "netperf_version" not in calls
    placements = [e["placement"] for e in matrix.normalize_matrix(reference)]
    netperf_docs = kube_objects.manifests(RUN, NODES, placements, IMAGE, 5201, netperf_port=12865)
    assert kube_calls.all_calls(NODES, netperf_docs, 300, 120)["netperf_version"] == {
        "namespace": docs[0]["metadata"]["name"], "pod": "iperf3-client", "container": "iperf3",
        "command": "netperf -V"}
    assert len(calls["tests"]) == len(reference)
    lines = [shlex.split(t["args"]["command"])[4:] for t in calls["tests"]]
    assert shlex.join(lines[1]).startswith("timeout 62 iperf3 --client POD_IP:iperf3-server-cross")
    assert shlex.join(lines[0]).startswith("timeout 62 iperf3 --client NODE_IP:netlab-agent-2")
    assert calls["tests"][0]["cpu_args"]["pod"] == "iperf3-server-host"


def role_k8s_tasks(root):
    """(file, module, args, task) of every kubernetes.core task of the role."""
    out = []
    for path in sorted((root / "roles/bench/tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            for inner in [task, *task.get("block", [])]:
                for key, value in inner.items():
                    if key.startswith("kubernetes.core."):
                        out.append((path.name, key, value, inner))
    return out


def test_every_kubernetes_core_call_gets_the_kubeconfig(request):
    """Each module the role calls is in kubernetes.core's k8s group or has a module_defaults entry of its own."""
    import ansible_collections.kubernetes.core as core

    runtime = yaml.safe_load((Path(next(iter(core.__path__))) / "meta" / "runtime.yml").read_text())
    group = {f"kubernetes.core.{m}" for m in runtime["action_groups"]["k8s"]}
    main = yaml.safe_load((request.config.rootpath / "roles/bench/tasks/main.yml").read_text())
    defaults = main[0]["module_defaults"]
    assert set(defaults["group/kubernetes.core.k8s"]) == {"kubeconfig", "context"}
    used = {module for _, module, _, _ in role_k8s_tasks(request.config.rootpath)}
    for module in used - group:
        assert defaults.get(module) == defaults["group/kubernetes.core.k8s"], module


def templated(value):
    return isinstance(value, str) and "{{" in value


def test_the_role_passes_exactly_the_rendered_arguments(request):
    """Every kubernetes.core task writes how its module is asked (kube_calls.FIXED) literally and takes each
    argument that depends on the run from the rendered calls, and no other; every rendered call has its task,
    so k8s_calls.yaml (the calls whole) describes what the role runs."""
    tasks = role_k8s_tasks(request.config.rootpath)
    assert {module for _, module, _, _ in tasks} == {"kubernetes.core.k8s", "kubernetes.core.k8s_info",
                                                     "kubernetes.core.k8s_exec", "kubernetes.core.k8s_cluster_info"}
    entries = [{"name": "svc", "placement": "service"}, {"name": "rr", "placement": "service", "protocol": "tcp_rr"}]
    docs = kube_objects.run_objects(RUN, NODES, entries, IMAGE, 5201, None, 12865)
    cluster_steps = kube_calls.cluster_calls(NODES)
    data = {**cluster_steps, **kube_calls.calls(docs, 300, 120, [])}
    whole = kube_calls.all_calls(NODES, docs, 300, 120, [])
    seen = set()
    for name, _, args, task in tasks:
        literal = {key: value for key, value in args.items() if not templated(value)}
        values = " ".join(value for value in args.values() if templated(value))
        if "bench_test.exec" in values or "bench_test.cpu_exec" in values:  # the plan's per-test calls
            assert set(args) == {"namespace", "pod", "container", "command"} and not literal, name
            continue
        loop = str(task.get("loop", ""))
        named = set(re.findall(r"calls\.(\w+)", f"{values} {loop}"))
        assert len(named) <= 1, (name, named)
        step = named.pop() if named else None
        if step is None:  # every argument written here: a call that takes nothing from the run
            step = next(s for s in data if data[s] == {} and kube_calls.FIXED.get(s) == literal)
        seen.add(step)
        assert literal == kube_calls.FIXED.get(step, {}), (name, step)
        one = data[step][0] if isinstance(data[step], list) else data[step]
        run_keys = set(one) - {"node"}  # cpu_info's node names the loop item, it is no argument
        assert set(args) == run_keys | set(literal), (name, step)
        assert whole[step] == ([kube_calls.whole(step, item) for item in data[step]] if isinstance(data[step], list)
                               else kube_calls.whole(step, data[step])), step
        var = "bench_cluster_calls" if step in cluster_steps else "bench_calls"
        for key in run_keys:
            if step == "cilium_status":  # zipped with the Cilium agent found the step before
                want = ("{{ item.0.resources[0].metadata.name }}" if key == "pod" else f"{{{{ item.1.{key} }}}}")
                assert loop == f"{{{{ bench_k8s_cilium_pods.results | zip({var}.{step}) | list }}}}", name
            elif isinstance(data[step], list):
                want = f"{{{{ item.{key} }}}}"
                assert loop == f"{{{{ {var}.{step} }}}}", name
            else:
                want = f"{{{{ {var}.{step}.{key} }}}}"
            assert args[key] == want, (name, key)
    assert seen == set(data) - {"tests"}, "every rendered call has its task"
    tasks_dir = request.config.rootpath / "roles/bench/tasks"
    for name in {name for name, _, _, _ in tasks}:
        assert "become" not in (tasks_dir / name).read_text(), f"{name}: no become for the cluster"
        assert "delegate_to" not in (tasks_dir / name).read_text(), f"{name}: the cluster is driven from here"
