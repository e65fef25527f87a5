"""Kubernetes transport: the run's objects, checked against the Kubernetes schemas; pods pinned, overrides merged."""

import copy

import kubernetes_validate
import pytest
from kube_cases import (
    IMAGE,
    NODES,
    RUN,
    SETTINGS,
    TRANSPORT,
    render,
)

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects, kube_read


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
        # Review F9: the image's own user (roles/bench_image bench_image_uid, owner of its home), and a /tmp of
        # the pod's own, where netserver 2.7.0 must write its debug file even with a read-only root.
        security = container["securityContext"]
        assert (security["runAsUser"], security["runAsGroup"], security["runAsNonRoot"]) == (65532, 65532, True)
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert spec["volumes"] == [{"name": "tmp", "emptyDir": {}}]


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
    # A probe connecting to the iperf3 port would take the one-client server from the test.
    assert all("readinessProbe" not in d["spec"]["containers"][0] for d in docs[1:])
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


MESH = [*NODES, "netlab-agent-3", "netlab-agent-4"]


@pytest.mark.parametrize("placements, on_third", [
    (["cross-node"], ["iperf3-mesh-2"]),
    (["cross-node", "same-node"], ["iperf3-client-same", "iperf3-server-same"]),
])
def test_a_mesh_puts_a_pod_on_the_pod_network_on_every_node(placements, on_third, k8s_version):
    """bench_mesh: each node's first pod serves and runs its pairs' clients; a node from the third on without
    one gets iperf3-mesh-<index>. Every pair of the plan runs from its client node's pod to its server's."""
    docs = kube_objects.manifests(RUN, MESH, placements, IMAGE, 5201, mesh=True)
    pinned = {d["metadata"]["name"]: d["spec"]["nodeName"] for d in docs if d["kind"] == "Pod"}
    assert sorted(name for name, node in pinned.items() if node == MESH[2]) == on_third
    assert [name for name, node in pinned.items() if node == MESH[3]] == ["iperf3-mesh-3"]
    assert pinned["iperf3-client"] == MESH[0] and pinned["iperf3-server-cross"] == MESH[1]
    for doc in docs:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    entries = [{"name": p, "placement": p} for p in placements]
    nodes = kube_read.placeholder_nodes(MESH, placements, mesh=True)
    plan = commands.plan(entries, nodes, {**SETTINGS, "mesh": True}, TRANSPORT)
    first_pod = {node["name"]: node["pods"][0]["name"] for node in nodes}
    cross = [t for t in plan if t.get("mesh")]
    assert len(cross) == 12 and {(t["mesh"]["client"], t["mesh"]["server"]) for t in cross} == {
        (a, b) for a in MESH for b in MESH if a != b}
    for test in cross:
        assert test["exec"]["pod"] == first_pod[test["mesh"]["client"]]
        assert f"--client POD_IP:{first_pod[test['mesh']['server']]} " in test["exec"]["command"]
        assert test["cpu_pod"] == first_pod[test["mesh"]["server"]]
    if "same-node" in placements:
        same = next(t for t in plan if t["placement"] == "same-node")
        assert (same["exec"]["pod"], same["server"]["pod"]) == ("iperf3-client-same", "iperf3-server-same")


def test_a_mesh_without_cross_node_tests_adds_no_pod_and_needs_three_different_nodes():
    docs = kube_objects.manifests(RUN, MESH, ["host"], IMAGE, 5201, mesh=True)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"] == ["iperf3-client-host", "iperf3-server-host"]
    for nodes in (NODES, [*NODES, NODES[0]]):
        with pytest.raises(kube_read.KubeError, match="mesh needs three or more different nodes"):
            kube_objects.manifests(RUN, nodes, ["cross-node"], IMAGE, 5201, mesh=True)
    # Without a mesh, a fourth node is still refused.
    with pytest.raises(kube_read.KubeError, match="two different nodes"):
        kube_objects.manifests(RUN, MESH, ["cross-node"], IMAGE, 5201)
