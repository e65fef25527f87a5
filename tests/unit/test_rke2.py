"""RKE2 install command construction."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.module_utils import rke2

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



# cilium-dbg status as Cilium 1.16+ prints it (the layout of the RKE2 v1.33 bundled release), and a node
# where the agent fell back: tunnel routing, legacy host routing, iptables masquerading.
CILIUM_117 = """\
KVStore:                 Disabled
Kubernetes:              Ok         1.33 (v1.33.5+rke2r1) [linux/amd64]
KubeProxyReplacement:    True   [eth0   10.0.0.11 (Direct Routing)]
Host firewall:           Disabled
Cilium:                  Ok   1.17.6 (v1.17.6-0000000)
IPAM:                    IPv4: 4/254 allocated from 10.42.0.0/24,
BandwidthManager:        Disabled
Routing:                 Network: Native   Host: BPF
Attach Mode:             TCX
Device Mode:             veth
Masquerading:            BPF   [eth0]   10.42.0.0/16 [IPv4: Enabled, IPv6: Disabled]

KubeProxyReplacement Details:
  Status:                 True
  Masquerading:           detail lines are not the summary
"""
CILIUM_FALLBACK = """\
KubeProxyReplacement:    False
Cilium:                  Ok   1.17.6 (v1.17.6-0000000)
Routing:                 Network: Tunnel [vxlan]   Host: Legacy
Masquerading:            IPTables [IPv4: Enabled, IPv6: Disabled]
"""
# Before Cilium 1.16 there was no network routing mode in the status.
CILIUM_115 = """\
KubeProxyReplacement:    True   [eth0 10.0.0.11 (Direct Routing)]
Cilium:                  Ok   1.15.6 (v1.15.6-0000000)
Host Routing:            BPF
Masquerading:            BPF   [eth0]   10.42.0.0/16 [IPv4: Enabled, IPv6: Disabled]
"""
CILIUM_WANTED = {"kube_proxy_replacement": True, "routing_mode": "native", "bpf_masquerade": True}


def test_cilium_status_current_layout():
    assert rke2.cilium_status(CILIUM_117) == {
        "version": "1.17.6", "kube_proxy_replacement": "True", "routing": "Native",
        "host_routing": "BPF", "masquerading": "BPF"}


def test_cilium_status_before_116():
    state = rke2.cilium_status(CILIUM_115)
    assert (state["host_routing"], state["routing"], state["version"]) == ("BPF", "", "1.15.6")


def test_cilium_status_rejects_other_output():
    with pytest.raises(ValueError, match="not the output of cilium-dbg status"):
        rke2.cilium_status("Error: cannot reach the agent\n")


def test_cilium_datapath_as_configured():
    result = rke2.datapath(CILIUM_117, "cilium", CILIUM_WANTED)
    assert result["problems"] == []
    assert result["description"] == ("Cilium 1.17.6: kube-proxy replacement True, routing Native, "
                                     "host routing BPF, masquerading BPF")


def test_cilium_fallback_is_reported():
    problems = rke2.datapath(CILIUM_FALLBACK, "cilium", CILIUM_WANTED)["problems"]
    assert problems == ["kube_proxy_replacement is False, configured True", "routing is Tunnel, configured Native",
                        "host_routing is Legacy, configured BPF", "masquerading is IPTables, configured BPF"]


def test_cilium_without_bpf_masquerade_expects_legacy_host_routing():
    wanted = CILIUM_WANTED | {"bpf_masquerade": False}
    problems = rke2.datapath(CILIUM_117, "cilium", wanted)["problems"]
    assert problems == ["host_routing is BPF, configured Legacy", "masquerading is BPF, configured IPTables"]


def test_canal_datapath_from_real_ip_output(data_dir):
    # ip -j -d link show of a VXLAN device built on this machine the way flannel builds flannel.1.
    raw = (data_dir / "ip-link-vxlan.json").read_text()
    result = rke2.datapath(raw, "canal", {"backend": "vxlan", "mtu": 1450})
    assert result["state"] == {"device": "flannel.1", "backend": "vxlan", "mtu": 1450, "vni": 1, "port": 8472}
    assert result["description"] == "Canal: flannel vxlan (VNI 1, UDP 8472) on flannel.1, MTU 1450"
    assert result["problems"] == []
    assert rke2.datapath(raw, "canal", {"backend": "vxlan", "mtu": 1400})["problems"] == [
        "mtu is 1450, configured 1400"]


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
