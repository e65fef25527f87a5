"""What lab_cni leaves on a node: unit, script, fact, and a datapath that carries traffic."""

import json
import os

import pytest

CNI = os.environ["LAB_CNI"]
POD_CIDR = {"molecule-node-1": "198.19.11", "molecule-node-2": "198.19.12"}
NODE_IP = {"molecule-node-1": "198.18.1.11", "molecule-node-2": "198.18.1.12"}


@pytest.fixture
def me(node):
    return node.backend.get_hostname()


@pytest.fixture
def peer(me):
    return next(name for name in POD_CIDR if name != me)


def test_unit_is_enabled_and_active(node):
    unit = node.service("netlab-datapath")
    assert unit.is_enabled and unit.is_running
    script = node.file("/usr/local/sbin/netlab-datapath")
    assert script.mode == 0o755 and script.user == "root"


def test_fact_describes_the_datapath(node, me):
    fact = json.loads(node.file("/etc/ansible/facts.d/netlab.fact").content_string)
    assert fact["cni"] == CNI and fact["model"] is True
    assert fact["pods"] == [{"name": "pod0", "ip": f"{POD_CIDR[me]}.10"},
                            {"name": "pod1", "ip": f"{POD_CIDR[me]}.11"}]
    assert fact["mtu"] == (1450 if CNI == "canal" else 1500)


def test_devices_match_the_cni(node, me, peer):
    routes = node.check_output("ip -4 route show")
    if CNI == "canal":
        assert node.interface("cni0").exists and node.interface("flannel.1").exists
        assert not node.interface("cilium_host").exists
        assert f"{POD_CIDR[peer]}.0/24 via {POD_CIDR[peer]}.0 dev flannel.1 onlink" in routes
        fdb = node.check_output("bridge fdb show dev flannel.1")
        assert f"dst {NODE_IP[peer]}" in fdb
    else:
        assert node.interface("cilium_host").exists
        assert not node.interface("flannel.1").exists and not node.interface("cni0").exists
        assert f"{POD_CIDR[peer]}.0/24 via {NODE_IP[peer]} dev eth0" in routes
        assert f"{POD_CIDR[me]}.11 dev lxcpod1" in routes


@pytest.mark.parametrize("target", ["same-node", "cross-node"])
def test_pods_reach_each_other(node, me, peer, target):
    ip = f"{POD_CIDR[me]}.11" if target == "same-node" else f"{POD_CIDR[peer]}.10"
    node.run_expect([0], f"ip netns exec pod0 ping -c 2 -W 2 {ip}")


def test_large_packets_fit_the_pod_mtu(node, peer):
    # 1422 bytes of payload + 28 of headers = 1450: the largest canal pod packet.
    node.run_expect([0], f"ip netns exec pod0 ping -c 1 -W 2 -M do -s 1422 {POD_CIDR[peer]}.10")
