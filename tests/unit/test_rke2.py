"""RKE2 install command construction."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import rke2

V = "v1.33.5+rke2r1"


def test_script_method():
    assert rke2.install_environment("script", V, "server") == {
        "INSTALL_RKE2_VERSION": V, "INSTALL_RKE2_TYPE": "server"}


def test_tarball_method():
    env = rke2.install_environment("tarball", V, "agent")
    assert env == {"INSTALL_RKE2_VERSION": V, "INSTALL_RKE2_TYPE": "agent", "INSTALL_RKE2_METHOD": "tar"}


def test_airgap_method():
    env = rke2.install_environment("airgap", V, "agent", "/srv/rke2-artifacts")
    assert env["INSTALL_RKE2_ARTIFACT_PATH"] == "/srv/rke2-artifacts"
    assert "INSTALL_RKE2_METHOD" not in env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("curl", V, "server"), "install method"),
        (("script", V, "worker"), "node type"),
        (("script", "1.33.5", "server"), "must look like"),
        (("script", "v1.33.5+k3s1", "server"), "must look like"),
        (("airgap", V, "server", ""), "needs rke2_artifact_path"),
        (("airgap", V, "server", "relative/dir"), "absolute"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(rke2.InstallError, match=message):
        rke2.install_environment(*args)


# cilium-dbg status -o json documents (see tests/data/SOURCES.md): a node running what the lab configures,
# one whose agent fell back and is not Ok (cilium-dbg exits 1 but prints the document), and Cilium 1.15.
CILIUM_WANTED = {"kube_proxy_replacement": True, "routing_mode": "native", "bpf_masquerade": True}


@pytest.fixture
def cilium(data_dir):
    return lambda name: (data_dir / f"cilium-status-{name}.json").read_text()


def test_cilium_datapath_as_configured(cilium):
    result = rke2.datapath(cilium("1.18-native"), "cilium", CILIUM_WANTED)
    assert result["problems"] == []
    assert result["description"] == ("Cilium 1.18.1 (Ok): kube-proxy replacement True, routing Native, "
                                     "host routing BPF, masquerading BPF")
    assert result["state"]["mtu"] is None


def test_unhealthy_cilium_is_read_and_reported_first(cilium):
    result = rke2.datapath(cilium("1.18-failure"), "cilium", CILIUM_WANTED)
    assert result["description"] == ("Cilium 1.18.1 (Failure): kube-proxy replacement False, routing Tunnel (vxlan), "
                                     "host routing Legacy, masquerading IPTables")
    assert result["problems"][0].startswith("state is Failure: 1.18.1 (v1.18.1-0000000000)    Kubernetes service is "
                                            "not ready")
    assert result["problems"][1:] == [
        "kube_proxy_replacement is False, configured True", "routing is Tunnel, configured Native",
        "host_routing is Legacy, configured BPF", "masquerading is IPTables, configured BPF"]


def test_cilium_without_bpf_masquerade_expects_legacy_host_routing(cilium):
    wanted = CILIUM_WANTED | {"bpf_masquerade": False}
    problems = rke2.datapath(cilium("1.18-native"), "cilium", wanted)["problems"]
    assert problems == ["host_routing is BPF, configured Legacy", "masquerading is BPF, configured IPTables"]


def test_a_profiles_encryption_bandwidth_manager_and_devices_are_checked_where_reported(cilium):
    """A run labelled WireGuard, bandwidth manager or netkit is one: the agent's status must say so."""
    doc = json.loads(cilium("1.18-native"))
    doc |= {"encryption": {"mode": "Disabled"}, "bandwidth-manager": {"devices": None}, "datapath-mode": "veth"}
    asked = CILIUM_WANTED | {"encryption": "wireguard", "bandwidth_manager": True, "datapath_mode": "netkit"}
    assert rke2.datapath(json.dumps(doc), "cilium", asked)["problems"] == [
        "encryption is Disabled, configured Wireguard", "bandwidth_manager is False, configured True",
        "datapath_mode is veth, configured netkit"]
    doc |= {"encryption": {"mode": "Wireguard"}, "bandwidth-manager": {"enabled": True}, "datapath-mode": "netkit"}
    result = rke2.datapath(json.dumps(doc), "cilium", asked)
    assert result["problems"] == []
    assert result["description"].endswith("masquerading BPF, encryption Wireguard, bandwidth manager, netkit devices")
    # The defaults hold against a status without these sections (before Cilium 1.16): nothing to compare.
    assert rke2.datapath(cilium("1.18-native"), "cilium", asked)["problems"] == []
    ipsec = CILIUM_WANTED | {"encryption": "ipsec"}
    assert rke2.datapath(json.dumps(doc | {"encryption": {"mode": "IPsec"}, "bandwidth-manager": {},
                                           "datapath-mode": "veth"}), "cilium", ipsec)["problems"] == []


def test_cilium_before_116_has_no_network_routing_to_compare(cilium):
    result = rke2.datapath(cilium("1.15"), "cilium", CILIUM_WANTED | {"routing_mode": "tunnel"})
    assert result["problems"] == []
    assert (result["state"]["routing"], result["state"]["host_routing"]) == (None, "BPF")


def test_cilium_pod_mtu_becomes_the_datapath_mtu(cilium, data_dir):
    pod = (data_dir / "ip-link-pod-eth0.json").read_text()
    result = rke2.datapath(cilium("1.18-native"), "cilium", CILIUM_WANTED, pod)
    assert (result["state"]["mtu"], result["state"]["pod_mtu"]) == (1450, 1450)
    assert result["description"].endswith(", pod MTU 1450")


@pytest.mark.parametrize("output", ["", "Error: Cannot get status: Get \"http://localhost/v1/healthz\": dial unix",
                                    "{}", "[]"])
def test_cilium_rejects_other_output(output):
    with pytest.raises(ValueError, match="cilium-dbg status -o json"):
        rke2.datapath(output, "cilium", CILIUM_WANTED)


@pytest.mark.parametrize(("nic", "backend", "mtu"), [(1500, "vxlan", 1450), (9000, "vxlan", 8950),
                                                     (1500, "wireguard", 1420), ("9000", "wireguard", 8920)])
def test_canal_mtu(nic, backend, mtu):
    assert rke2.canal_mtu(nic, backend) == mtu


@pytest.mark.parametrize(("nic", "backend", "message"), [(1500, "ipip", "not one of vxlan, wireguard, host-gw"),
                                                         (600, "vxlan", "below the IPv4 minimum")])
def test_canal_mtu_refuses(nic, backend, message):
    with pytest.raises(ValueError, match=message):
        rke2.canal_mtu(nic, backend)


def test_canal_datapath_from_real_ip_output(data_dir):
    # ip -j -d link show of a VXLAN device built on the development machine (kernel 6.18) as flannel builds
    # flannel.1.
    raw = (data_dir / "ip-link-vxlan.json").read_text()
    result = rke2.datapath(raw, "canal", {"backend": "vxlan", "nic_mtu": 1500})
    assert result["state"] == {"device": "flannel.1", "backend": "vxlan", "mtu": 1450, "vni": 1, "port": 8472}
    assert result["description"] == "Canal: flannel vxlan (VNI 1, UDP 8472) on flannel.1, MTU 1450"
    assert result["problems"] == []


def test_canal_device_checked_against_the_nic_mtu(data_dir):
    # Finding 8: on a 9000-byte NIC flannel.1 must be 8950; a 1450 device means flannel saw another NIC.
    raw = (data_dir / "ip-link-vxlan.json").read_text()
    assert rke2.datapath(raw, "canal", {"backend": "vxlan", "nic_mtu": "9000"})["problems"] == [
        "mtu is 1450, configured 8950"]
    assert rke2.datapath(raw, "canal", {"backend": "wireguard", "nic_mtu": 1500})["problems"] == [
        "backend is vxlan, configured wireguard", "mtu is 1450, configured 1420"]


def test_canal_veth_mtu_checked_against_the_pod(data_dir):
    raw = (data_dir / "ip-link-vxlan.json").read_text()
    pod = json.loads((data_dir / "ip-link-pod-eth0.json").read_text())
    result = rke2.datapath(raw, "canal", {"backend": "vxlan", "nic_mtu": 1500, "veth_mtu": 1450}, pod)
    assert (result["problems"], result["state"]["pod_mtu"]) == ([], 1450)
    assert rke2.datapath(raw, "canal", {"backend": "vxlan", "nic_mtu": 1500, "veth_mtu": "1400"}, pod)["problems"] == [
        "pod_mtu is 1450, configured 1400"]
    # Without a pod reading the configured veth MTU cannot be checked, and is not.
    assert rke2.datapath(raw, "canal", {"backend": "vxlan", "nic_mtu": 1500, "veth_mtu": 1400})["problems"] == []


def test_canal_host_gw_has_no_flannel_device(data_dir):
    # ip -j -d link show of a node: its NIC and a pod's cali veth, no flannel device (host-gw only routes).
    links = [{"ifname": "lo", "mtu": 65536, "linkinfo": None}, {"ifname": "eth0", "mtu": 1500},
             {"ifname": "calipod0", "mtu": 1500, "linkinfo": {"info_kind": "veth"}}]
    result = rke2.datapath(json.dumps(links), "canal", {"backend": "host-gw", "nic_mtu": 1500, "veth_mtu": 1500})
    assert (result["state"]["backend"], result["state"]["device"], result["problems"]) == ("host-gw", None, [])
    assert result["description"].startswith("Canal: flannel host-gw")
    # flannel.1 among the links: the VXLAN backend runs, not the host-gw one asked for.
    vxlan = json.loads((data_dir / "ip-link-vxlan.json").read_text())
    assert rke2.datapath(json.dumps(links + vxlan), "canal", {"backend": "host-gw", "nic_mtu": 1500})["problems"] == [
        "backend is vxlan, configured host-gw", "mtu is 1450, configured 1500"]


def test_unknown_cni():
    with pytest.raises(ValueError, match="unknown CNI"):
        rke2.datapath("", "weave", {})


def _node(name, ready):
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready}]}}


def test_ready_nodes():
    nodes = {"items": [_node("agent-2", "True"), _node("agent-1", "Unknown"), _node("server-1", "True")]}
    assert rke2.ready_nodes(nodes) == ["agent-2", "server-1"]
    assert rke2.ready_nodes(json.dumps(nodes)) == ["agent-2", "server-1"]


@pytest.mark.parametrize("output", ["", "The connection to the server 127.0.0.1:6443 was refused", "{}"])
def test_no_ready_nodes_while_the_api_is_down(output):
    assert rke2.ready_nodes(output) == []


@pytest.mark.parametrize(("version", "controller", "config"), [
    ("v1.33.5+rke2r1", "none", {"ingress-controller": "none"}),
    ("v1.33.0+rke2r1", "traefik", {"ingress-controller": "traefik"}),
    ("v1.34.1+rke2r1", "none", {"ingress-controller": "none"}),
    ("v1.32.4+rke2r1", "none", {"ingress-controller": "none"}),
    ("v1.32.3+rke2r1", "none", {"disable": ["rke2-ingress-nginx"]}),
    ("v1.31.7+rke2r1", "ingress-nginx", {}),
    ("v1.31.8+rke2r1", "ingress-nginx", {"ingress-controller": "ingress-nginx"}),
    ("v1.30.14+rke2r1", "none", {"disable": ["rke2-ingress-nginx"]}),
])
def test_ingress_controller_by_release(version, controller, config):
    assert rke2.ingress_config(version, controller) == config


@pytest.mark.parametrize(("version", "controller", "message"), [
    ("v1.30.14+rke2r1", "traefik", "no ingress-controller flag"),
    ("v1.33.5+rke2r1", "haproxy", "not one of none, ingress-nginx, traefik"),
    ("1.33.5", "none", "must look like"),
])
def test_ingress_controller_refuses(version, controller, message):
    with pytest.raises(ValueError, match=message):
        rke2.ingress_config(version, controller)
