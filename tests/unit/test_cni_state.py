"""Reading the datapath a cluster runs: cilium-dbg status JSON, flannel's node annotations, DaemonSets, ip link."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state


@pytest.fixture
def load(data_dir):
    return lambda name: json.loads((data_dir / name).read_text())


def test_cilium_status_current_layout(data_dir):
    raw = (data_dir / "cilium-status-1.18-native.json").read_text()
    assert cni_state.cilium_status(raw) == {
        "version": "1.18.1", "state": "Ok", "message": "1.18.1 (v1.18.1-0000000000)",
        "kube_proxy_replacement": "True", "routing": "Native", "host_routing": "BPF", "masquerading": "BPF",
        "tunnel_protocol": None, "mtu": None, "encryption": None, "bandwidth_manager": None, "datapath_mode": None}


def test_cilium_status_encryption_bandwidth_manager_and_devices(load):
    """Cilium 1.16+'s sections (api/v1/openapi.yaml: EncryptionStatus, BandwidthManager, DatapathMode): the
    bandwidth manager's enabled is left out of the JSON when false."""
    doc = load("cilium-status-1.18-native.json")
    doc |= {"encryption": {"mode": "Disabled"}, "bandwidth-manager": {"devices": None}, "datapath-mode": "veth"}
    state = cni_state.cilium_status(doc)
    assert (state["encryption"], state["bandwidth_manager"], state["datapath_mode"]) == ("Disabled", False, "veth")
    doc |= {"encryption": {"mode": "Wireguard", "wireguard": {"node-encryption": "Disabled"}},
            "bandwidth-manager": {"enabled": True, "devices": ["eth0"], "congestionControl": "cubic"},
            "datapath-mode": "netkit"}
    state = cni_state.cilium_status(doc)
    assert (state["encryption"], state["bandwidth_manager"], state["datapath_mode"]) == ("Wireguard", True, "netkit")


def test_cilium_status_unhealthy_agent(load):
    state = cni_state.cilium_status(load("cilium-status-1.18-failure.json"))
    assert state["state"] == "Failure"
    assert "Kubernetes service is not ready" in state["message"]
    datapath = ("version", "kube_proxy_replacement", "routing", "tunnel_protocol", "host_routing", "masquerading")
    assert [state[key] for key in datapath] == ["1.18.1", "False", "Tunnel", "vxlan", "Legacy", "IPTables"]


def test_cilium_status_before_116(load):
    state = cni_state.cilium_status(load("cilium-status-1.15.json"))
    assert (state["version"], state["routing"], state["host_routing"]) == ("1.15.6", None, "BPF")


def test_cilium_status_early_and_old_values(load):
    doc = load("cilium-status-1.15.json")
    # Before all probes ran the agent reports a Warning without version and without the datapath sections.
    early = {"cilium": {"state": "Warning", "msg": "Not all probes executed at least once"}}
    assert cni_state.cilium_status(early) | {"message": ""} == {
        "version": None, "state": "Warning", "message": "", "kube_proxy_replacement": None, "routing": None,
        "host_routing": None, "masquerading": None, "tunnel_protocol": None, "mtu": None, "encryption": None,
        "bandwidth_manager": None, "datapath_mode": None}
    # Cilium before 1.14 said Strict/Disabled for kube-proxy replacement; masquerading can be off.
    doc["kube-proxy-replacement"]["mode"] = "Strict"
    doc["masquerading"] = {"enabled": False}
    assert (cni_state.cilium_status(doc)["kube_proxy_replacement"], cni_state.cilium_status(doc)["masquerading"]) == (
        "True", "Disabled")
    doc["kube-proxy-replacement"]["mode"] = "Partial"
    assert cni_state.cilium_status(doc)["kube_proxy_replacement"] == "Partial"


@pytest.mark.parametrize(("doc", "message"), [
    ("", "empty output"),
    ("level=fatal msg=\"unable to connect\"", "not JSON"),
    ([], "no cilium.state"),
    ({"cilium": "Ok"}, "no cilium.state"),
    ({"kind": "Node"}, "no cilium.state"),
])
def test_cilium_status_rejects_other_documents(doc, message):
    with pytest.raises(ValueError, match=message):
        cni_state.cilium_status(doc)


def test_flannel_node_vxlan(load):
    assert cni_state.flannel_node(load("node-flannel-vxlan.json")) == {
        "name": "test", "backend": "vxlan", "public_ip": "192.168.77.17", "vtep_mac": "96:59:b2:3f:04:ee",
        "kube_subnet_manager": True, "pod_cidr": "10.244.7.0/24"}


def test_flannel_node_wireguard_has_no_vtep(data_dir):
    state = cni_state.flannel_node((data_dir / "node-flannel-wireguard.json").read_text())
    assert (state["backend"], state["public_ip"], state["vtep_mac"]) == ("wireguard", "192.168.1.12", None)


def test_flannel_node_other_prefix(load):
    node = load("node-flannel-vxlan.json")
    node["metadata"]["annotations"] = {k.replace("flannel.alpha.coreos.com/", "example.org/flannel-"): v
                                       for k, v in node["metadata"]["annotations"].items()}
    assert cni_state.flannel_node(node, "example.org/flannel-")["backend"] == "vxlan"
    with pytest.raises(ValueError, match=r"no flannel\.alpha\.coreos\.com/backend-type annotation"):
        cni_state.flannel_node(node)


@pytest.mark.parametrize(("node", "message"), [
    ({"kind": "Node"}, "no metadata"),
    ({"metadata": {"name": "agent-1", "annotations": {"cilium.io/something": "x"}}}, "agent-1 has no"),
    ({"metadata": {"name": "agent-1", "annotations": {"flannel.alpha.coreos.com/backend-type": "vxlan",
                                                      "flannel.alpha.coreos.com/backend-data": "{"}}},
     "backend-data is not JSON"),
])
def test_flannel_node_refuses(node, message):
    with pytest.raises(ValueError, match=message):
        cni_state.flannel_node(node)


def _ds(name, namespace="kube-system", **labels):
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": labels}}}}


# Names and pod labels of RKE2's CNI charts (rancher/rke2-charts packages/rke2-*, see cni_state._CNIS).
@pytest.mark.parametrize(("daemonsets", "cni", "name"), [
    ([_ds("rke2-ingress-nginx-controller", **{"app.kubernetes.io/name": "rke2-ingress-nginx"}),
      _ds("cilium-envoy", **{"k8s-app": "cilium-envoy"}), _ds("cilium", **{"k8s-app": "cilium"})], "cilium", "cilium"),
    ([_ds("rke2-canal", **{"k8s-app": "canal"})], "canal", "rke2-canal"),
    ([_ds("calico-node", "calico-system", **{"k8s-app": "calico-node"})], "calico", "calico-node"),
    ([_ds("kube-flannel-ds", "kube-flannel", app="flannel", tier="node")], "flannel", "kube-flannel-ds"),
    # A renamed DaemonSet is still found by its pod label.
    ([_ds("my-canal", **{"k8s-app": "canal"})], "canal", "my-canal"),
])
def test_identify_cni(daemonsets, cni, name):
    found = cni_state.identify_cni(daemonsets)
    assert (found["cni"], found["daemonset"]) == (cni, name)
    assert found["names"] == sorted(ds["metadata"]["name"] for ds in daemonsets)


def test_identify_cni_from_kubectl_list_and_unknown():
    listing = {"kind": "DaemonSetList", "items": [_ds("kube-router", **{"k8s-app": "kube-router"}), _ds("rke2-multus")]}
    assert cni_state.identify_cni(json.dumps(listing)) == {
        "cni": "unknown", "daemonset": None, "namespace": None, "names": ["kube-router", "rke2-multus"], "images": {},
        "twin": None}
    assert cni_state.identify_cni({"resources": [_ds("rke2-canal")]})["cni"] == "canal"
    with pytest.raises(ValueError, match="not a DaemonSet list"):
        cni_state.identify_cni('"cilium"')


# RKE2's Canal DaemonSet as its chart renders it (rancher/rke2-charts packages/rke2-canal/charts:
# templates/daemonset.yaml at 034831355b68, images from values.yaml at 0087a8647430, no system registry).
RKE2_CANAL = {
    "kind": "DaemonSet", "metadata": {"name": "rke2-canal", "namespace": "kube-system", "labels": {"k8s-app": "canal"}},
    "spec": {"template": {"metadata": {"labels": {"k8s-app": "canal"}}, "spec": {
        "initContainers": [{"name": "install-cni", "image": "rancher/hardened-calico:v3.30.3-build20250909"},
                           {"name": "flexvol-driver", "image": "rancher/hardened-calico:v3.30.3-build20250909"}],
        "containers": [{"name": "calico-node", "image": "rancher/hardened-calico:v3.30.3-build20250909"},
                       {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.27.3-build20250901"}]}}}}


def test_identify_cni_records_the_cni_images():
    found = cni_state.identify_cni([_ds("rke2-ingress-nginx-controller"), RKE2_CANAL])
    assert found["images"] == {"calico-node": "rancher/hardened-calico:v3.30.3-build20250909",
                               "kube-flannel": "rancher/hardened-flannel:v0.27.3-build20250901"}
    assert cni_state.image_versions(found["images"]) == {"calico-node": "v3.30.3-build20250909",
                                                         "kube-flannel": "v0.27.3-build20250901"}
    # A digest pin is not the version; a registry port is not a tag; no tag leaves the image's name.
    assert cni_state.image_versions({"a": "cilium/cilium:v1.18.2@sha256:" + "0" * 64,
                                     "b": "registry.example:5000/flannel", "c": "flannel"}) == {
        "a": "v1.18.2", "b": "flannel", "c": "flannel"}


def test_mtu_from_ip_link(data_dir, load):
    assert cni_state.mtu_from_ip_link((data_dir / "ip-link-pod-eth0.json").read_text()) == 1450
    pod, vxlan = load("ip-link-pod-eth0.json"), load("ip-link-vxlan.json")
    assert cni_state.mtu_from_ip_link(pod + vxlan) == 1450
    with pytest.raises(ValueError, match="differ in MTU: eth0 1450, eth0 9000"):
        cni_state.mtu_from_ip_link([*pod, pod[0] | {"mtu": 9000}])


@pytest.mark.parametrize("output", ["", "[]", "Device \"eth0\" does not exist.", '[{"ifname": "eth0"}]'])
def test_mtu_from_ip_link_refuses(output):
    with pytest.raises(ValueError):
        cni_state.mtu_from_ip_link(output)


def test_a_daemonset_the_kubernetes_twin_invented_is_named_in_the_datapath():
    """The twin's CNI DaemonSet carries netlab.io/twin: the run's datapath says no CNI agent answered."""
    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_read

    ds = {"metadata": {"name": "cilium", "namespace": "kube-system", "annotations": {"netlab.io/twin": "model"}},
          "spec": {"template": {"metadata": {"labels": {"k8s-app": "cilium"}}, "spec": {"containers": []}}}}
    found = cni_state.identify_cni([ds])
    assert (found["cni"], found["twin"]) == ("cilium", "model")
    summary = kube_read.datapath(found, {"n1": {"version": "1.18.1", "routing": "Native"}}, 1500)["summary"]
    assert summary.endswith("pod MTU 1500, as the Kubernetes twin's model answers, not a CNI agent")
    del ds["metadata"]["annotations"]
    assert "twin" not in kube_read.datapath(cni_state.identify_cni([ds]), {}, None)["summary"]
