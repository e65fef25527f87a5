"""Kubernetes transport: rendered objects (checked against the Kubernetes schemas), exec lines, pod reading."""

import copy

import kubernetes_validate
import pytest
import yaml

from ansible_collections.netlab.lab.plugins.module_utils import kube, matrix

ROOT_DEFAULTS = "roles/{}/defaults/main.yml"
IMAGE = "netlab/iperf3@sha256:" + "0" * 64
RUN = "20261122T190312Z-cilium"
NODES = ["netlab-agent-1", "netlab-agent-2"]


@pytest.fixture(scope="module")
def defaults(request):
    root = request.config.rootpath
    return {role: yaml.safe_load((root / ROOT_DEFAULTS.format(role)).read_text()) for role in ("iperf3_bench", "rke2")}


@pytest.fixture(scope="module")
def k8s_version(defaults):
    # The Kubernetes minor of the RKE2 release the lab installs, e.g. v1.33.5+rke2r1 -> 1.33.
    return ".".join(defaults["rke2"]["rke2_version"].lstrip("v").split(".")[:2])


@pytest.fixture(scope="module")
def reference(defaults):
    return defaults["iperf3_bench"]["iperf3_bench_reference_matrix"]


def render(entries, run=RUN):
    placements = [e["placement"] for e in matrix.normalize_matrix(entries)]
    return kube.manifests(run, NODES, placements, IMAGE, 5201)


def test_every_object_is_valid_for_the_lab_kubernetes(reference, k8s_version):
    docs = render(reference)
    assert [d["kind"] for d in docs] == ["Namespace"] + ["Pod"] * 5 + ["Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, k8s_version, strict=True)


def test_schema_validation_would_catch_a_bad_field(reference, k8s_version):
    doc = copy.deepcopy(render(reference)[1])
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
    service = docs[-1]
    server = next(d for d in docs if d["metadata"]["name"] == "iperf3-server-cross")
    assert service["spec"]["selector"].items() <= server["metadata"]["labels"].items()
    assert {p["protocol"] for p in service["spec"]["ports"]} == {"TCP", "UDP"}
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_only_the_pods_a_matrix_needs():
    docs = render([{"name": "cross", "placement": "cross-node"}])
    assert [d["metadata"]["name"] for d in docs[1:]] == ["iperf3-client", "iperf3-server-cross"]
    # No hostNetwork pod: the namespace can enforce the restricted Pod Security level.
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_is_a_dns_label_for_any_run_id():
    name = kube.namespace("My Run_" + "x" * 80)
    assert len(name) <= 63 and name.startswith("netlab-bench-my-run-x")
    assert not name.endswith("-")


@pytest.mark.parametrize("image", ["", "netlab/iperf3:3.18", "netlab/iperf3@sha256:abc"])
def test_image_must_be_pinned_by_digest(image):
    with pytest.raises(kube.KubeError, match="pinned by digest"):
        kube.manifests(RUN, NODES, ["cross-node"], image, 5201)


def pod_item(component, node, ip, phase="Running"):
    return {"metadata": {"name": f"iperf3-{component}", "labels": {"app.kubernetes.io/component": component}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "podIP": ip,
                       "containerStatuses": [{"imageID": IMAGE}]}}


PODS = {"items": [pod_item("client", NODES[0], "10.42.1.5"), pod_item("server-same", NODES[0], "10.42.1.6"),
                  pod_item("server-cross", NODES[1], "10.42.2.7"),
                  pod_item("client-host", NODES[0], "192.168.1.11"),
                  pod_item("server-host", NODES[1], "192.168.1.12")]}
SERVICES = {"items": [{"metadata": {"name": "iperf3-cross"}, "spec": {"clusterIP": "10.43.17.4"}}]}
NODE_IPS = [{"name": NODES[0], "ip": "192.168.1.11", "cni": "cilium"}, {"name": NODES[1], "ip": "192.168.1.12"}]
SETTINGS = {"duration": 30, "omit": 2, "repeats": 1, "port": 5201, "udp_bitrate": "1G", "timeout_margin": 30}
TRANSPORT = {"namespace": "netlab-bench-x", "kubectl": ["kubectl", "--kubeconfig", "/etc/rancher/rke2/rke2.yaml"],
             "host": "netlab-server-1"}


def test_running_pods_become_the_planner_nodes():
    first, second = kube.bench_nodes(NODE_IPS, PODS, SERVICES)
    assert first["pods"] == [{"name": "iperf3-client", "ip": "10.42.1.5"},
                             {"name": "iperf3-server-same", "ip": "10.42.1.6"}]
    assert (first["host_pod"], second["host_pod"]) == ("iperf3-client-host", "iperf3-server-host")
    assert second["pods"] == [{"name": "iperf3-server-cross", "ip": "10.42.2.7"}]
    assert second["service_ip"] == "10.43.17.4"


def test_a_pod_not_running_or_on_another_node_is_refused():
    pending = copy.deepcopy(PODS)
    pending["items"][2]["status"]["phase"] = "Pending"
    with pytest.raises(kube.KubeError, match="iperf3-server-cross is Pending"):
        kube.bench_nodes(NODE_IPS, pending, SERVICES)
    moved = copy.deepcopy(PODS)
    moved["items"][2]["spec"]["nodeName"] = NODES[0]
    with pytest.raises(kube.KubeError, match="runs on netlab-agent-1, not on netlab-agent-2"):
        kube.bench_nodes(NODE_IPS, moved, SERVICES)


def test_kubernetes_plan_execs_in_the_pinned_pods(reference):
    nodes = kube.bench_nodes(NODE_IPS, PODS, SERVICES)
    plan = {t["scenario"]: t for t in matrix.build_plan(reference, nodes, SETTINGS, TRANSPORT)}
    exec_prefix = ["timeout", "62", "kubectl", "--kubeconfig", "/etc/rancher/rke2/rke2.yaml", "exec",
                   "--namespace", "netlab-bench-x"]
    cross = plan["cross-node-tcp-1"]
    assert cross["client_cmd"] == [*exec_prefix, "iperf3-client", "--container", "iperf3", "--",
                                   "iperf3", "--client", "10.42.2.7", "--port", "5201", "--json",
                                   "--time", "30", "--omit", "2"]
    assert cross["server_cmd"] is None and cross["exec_host"] == "netlab-server-1"
    assert plan["service-tcp-1"]["client_cmd"][-9:-7] == ["--client", "10.43.17.4"]
    assert plan["service-tcp-1"]["server"]["host"] == NODES[1]
    assert plan["host-tcp-1"]["client_cmd"][8:9] == ["iperf3-client-host"]
    assert plan["host-tcp-1"]["client_cmd"][-9:-7] == ["--client", "192.168.1.12"]
    assert plan["same-node-tcp-4"]["client_cmd"][-11:-9] == ["--client", "10.42.1.6"]


def test_service_placement_on_the_local_lab_is_refused():
    local = [{"name": "a", "ip": "1.1.1.1", "pods": [{"name": "pod0", "ip": "2.2.2.2"}]},
             {"name": "b", "ip": "1.1.1.2", "pods": [{"name": "pod0", "ip": "2.2.3.2"}]}]
    with pytest.raises(matrix.MatrixError, match="the local lab has none"):
        matrix.build_plan([{"name": "svc", "placement": "service"}], local, SETTINGS)


def test_iperf3_version_from_real_output(data_dir):
    assert kube.iperf3_version((data_dir / "iperf3-version-3.18.txt").read_text()) == "3.18"
    with pytest.raises(kube.KubeError, match=r"has iperf3 3\.12; the benchmark needs 3\.16"):
        kube.iperf3_version((data_dir / "iperf3-version-3.12.txt").read_text())
    with pytest.raises(kube.KubeError, match="cannot read"):
        kube.iperf3_version("sh: iperf3: not found")


def test_run_metadata():
    nodes_json = {"items": [
        {"metadata": {"name": name}, "status": {
            "nodeInfo": {"kubeletVersion": "v1.33.5+rke2r1", "kernelVersion": "6.12.48-1-amd64",
                         "osImage": "Debian GNU/Linux 13 (trixie)", "containerRuntimeVersion": "containerd://2.1.4"},
            "capacity": {"cpu": "8", "memory": "32859948Ki"}}} for name in [*NODES, "netlab-server-1"]]}
    version = {"serverVersion": {"gitVersion": "v1.33.5+rke2r1"}}
    meta = kube.run_metadata(version, nodes_json, PODS, NODES)
    assert meta["kubernetes"] == meta["rke2"] == "v1.33.5+rke2r1"
    assert [n["name"] for n in meta["nodes"]] == NODES
    assert meta["nodes"][0]["kernel"] == "6.12.48-1-amd64" and meta["nodes"][0]["cpu"] == "8"
    assert meta["image_ids"] == [IMAGE]
