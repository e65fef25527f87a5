"""What lab_cni leaves on a node of the local lab: unit, script, fact, and a datapath that carries traffic.

The checks molecule's lab_cni scenario made on its own two nodes (the same role on the same image), run
here on the lab test_local_lab.py builds, after each CNI's converge and after a node restart.
check_datapath(cni, me, peer) runs them all on node ``me``, ``peer`` being the node across.
"""

import json

import testinfra

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof

SERVICE_CIDR = "198.18.128.0/17"
# The local lab's nodes (roles/podman_lab/defaults/main.yml): address and the first three octets of the pod CIDR.
NODE_IP = {"netlab-server-1": "198.18.0.11", "netlab-agent-1": "198.18.0.12", "netlab-agent-2": "198.18.0.13"}
POD_CIDR = {"netlab-server-1": "198.19.1", "netlab-agent-1": "198.19.2", "netlab-agent-2": "198.19.3"}
# Where the benchmark calls the script: the role must have put it there.
SCRIPT = proof.DATAPATH

# What each CNI's mechanisms must count for a ping, and what they must not.
PROOF = {
    ("canal", "same-node"): (["iptables.felix-from-workload", "iptables.felix-to-workload"], ["vxlan.tx_packets"]),
    ("canal", "cross-node"): (["iptables.felix-from-workload", "vxlan.tx_packets", "vxlan.rx_packets"], []),
    ("cilium", "same-node"): (["bpf.from_container_peer"], ["iptables.forward", "bpf.from_container_neigh"]),
    ("cilium", "cross-node"): (["bpf.from_container_neigh", "bpf.from_netdev_peer"], ["iptables.forward"]),
}


def host(name: str):
    return testinfra.get_host(f"podman://{name}")


def counters(node) -> dict:
    return json.loads(node.check_output(f"{SCRIPT} counters"))


def grew(before: dict, after: dict, key: str) -> int:
    return after.get(key, 0) - before.get(key, 0)


def check_datapath(cni: str, me: str, peer: str) -> None:
    node = host(me)
    unit_is_enabled_and_active(node)
    fact_describes_the_datapath(node, cni, me)
    devices_match_the_cni(node, cni, me, peer)
    iptables_chains_match_the_cni(node, cni)
    if cni == "cilium":
        bpf_programs_are_attached_and_maps_filled(node)
    for target in ("same-node", "cross-node"):
        pods_reach_each_other_by_the_cni_path(node, cni, me, peer, target)
    a_service_reaches_a_pod_on_the_other_node(node, cni, peer)
    large_packets_fit_the_pod_mtu(node, peer)


def unit_is_enabled_and_active(node) -> None:
    unit = node.service("netlab-datapath")
    assert unit.is_enabled and unit.is_running
    script = node.file(SCRIPT)
    assert script.mode == 0o755 and script.user == "root"


def fact_describes_the_datapath(node, cni: str, me: str) -> None:
    fact = json.loads(node.file("/etc/ansible/facts.d/netlab.fact").content_string)
    assert fact["cni"] == cni and fact["model"] is True
    assert fact["service_cidr"] == SERVICE_CIDR
    assert fact["pods"] == [{"name": "pod0", "ip": f"{POD_CIDR[me]}.10"},
                            {"name": "pod1", "ip": f"{POD_CIDR[me]}.11"}]
    assert fact["mtu"] == (1450 if cni == "canal" else 1500)


def devices_match_the_cni(node, cni: str, me: str, peer: str) -> None:
    routes = node.check_output("ip -4 route show")
    assert f"unreachable {SERVICE_CIDR}" in routes
    assert not node.interface("cni0").exists
    if cni == "canal":
        assert node.interface("flannel.1").exists and not node.interface("cilium_host").exists
        assert f"{POD_CIDR[peer]}.0/24 via {POD_CIDR[peer]}.0 dev flannel.1 onlink" in routes
        fdb = node.check_output("bridge fdb show dev flannel.1")
        assert f"dst {NODE_IP[peer]}" in fdb
        # Calico's workload interfaces: fixed MAC, proxy ARP, a /32 route, the pod's gateway 169.254.1.1.
        assert node.check_output("cat /sys/class/net/calipod1/address") == "ee:ee:ee:ee:ee:ee"
        assert node.check_output("cat /proc/sys/net/ipv4/conf/calipod1/proxy_arp") == "1"
        assert f"{POD_CIDR[me]}.11 dev calipod1 scope link" in routes
        assert "default via 169.254.1.1 dev eth0" in node.check_output("ip netns exec pod1 ip -4 route")
    else:
        assert node.interface("cilium_host").exists and not node.interface("flannel.1").exists
        assert f"{POD_CIDR[peer]}.0/24 via {NODE_IP[peer]} dev eth0" in routes
        assert f"{POD_CIDR[me]}.11 dev lxcpod1" in routes


def iptables_chains_match_the_cni(node, cni: str) -> None:
    rules = node.check_output("iptables-save")
    assert "netlab:forward" in rules and "netlab:nat-prerouting" in rules
    if cni == "canal":
        for chain in ("cali-FORWARD", "cali-from-wl-dispatch", "cali-fw-calipod0", "cali-tw-calipod1",
                      "KUBE-SERVICES", "KUBE-POSTROUTING", "FLANNEL-POSTRTG"):
            assert f":{chain} " in rules
        assert "CILIUM_" not in rules
    else:
        assert ":CILIUM_FORWARD " in rules and ":CILIUM_POST_nat " in rules
        assert "cali-" not in rules and "KUBE-" not in rules


def bpf_programs_are_attached_and_maps_filled(node) -> None:
    # By tcx, as Cilium 1.16+ on this kernel (6.6+) and the nodes' bpftool (7.5) can; not by cls_bpf.
    for device, program in (("lxcpod0", "from_container"), ("eth0", "from_netdev")):
        tc = json.loads(node.check_output(f"bpftool -j net show dev {device}"))[0]["tc"]
        assert [(found["kind"], found["name"]) for found in tc] == [("tcx/ingress", program)], (device, tc)
    assert "from_netdev" not in node.check_output("tc filter show dev eth0 ingress")
    cgroup = node.check_output("awk -F: '$1 == \"0\" { print $3 }' /proc/1/cgroup").removesuffix("/init.scope")
    hooks = node.check_output(f"bpftool -j cgroup show /sys/fs/cgroup/unified{cgroup}")
    names = {prog["name"] for prog in json.loads(hooks)}
    assert names == {"sock_connect4", "sock_sendmsg4", "sock_recvmsg4"}
    endpoints = json.loads(node.check_output("bpftool -j map dump pinned /sys/fs/bpf/netlab_endpoints"))
    assert len(endpoints) == 2
    ifindex = int(node.check_output("cat /sys/class/net/lxcpod0/ifindex"))
    assert ifindex in {entry["formatted"]["value"]["ifindex"] for entry in endpoints}


def pods_reach_each_other_by_the_cni_path(node, cni: str, me: str, peer: str, target: str) -> None:
    ip = f"{POD_CIDR[me]}.11" if target == "same-node" else f"{POD_CIDR[peer]}.10"
    before = counters(node)
    node.run_expect([0], f"ip netns exec pod0 ping -c 2 -W 2 {ip}")
    after = counters(node)
    used, unused = PROOF[(cni, target)]
    assert all(grew(before, after, key) >= 1 for key in used), (target, before, after)
    assert all(grew(before, after, key) == 0 for key in unused), (target, before, after)


def a_service_reaches_a_pod_on_the_other_node(node, cni: str, peer: str) -> None:
    """A ClusterIP served the CNI's way: kube-proxy's DNAT chains, or Cilium's socket hook."""
    backend = host(peer)
    backend.run_expect([0], "ip netns exec pod1 sh -c 'echo served-by-peer > /tmp/index.html'")
    backend.run_expect([0], "ip netns exec pod1 setsid timeout 30 python3 -m http.server 8080 -d /tmp "
                            ">/dev/null 2>&1 < /dev/null &")
    add = f"{SCRIPT} service-add web 198.18.128.80 80 tcp {POD_CIDR[peer]}.11:8080"
    try:
        assert node.check_output(add) == "added"
        assert node.check_output(add) == "unchanged"
        before = counters(node)
        page = node.check_output("ip netns exec pod0 curl -s --retry 5 --retry-connrefused --max-time 5 "
                                 "http://198.18.128.80/index.html")
        after = counters(node)
    finally:
        node.run_expect([0], f"{SCRIPT} service-del web")
        backend.run("pkill -f 'http[.]server 8080'")  # [.]: not this shell's own command line
    assert page == "served-by-peer"
    if cni == "canal":
        assert grew(before, after, "iptables.service.web") >= 1
    else:
        assert grew(before, after, "bpf.sock_xlate") >= 1 and grew(before, after, "iptables.forward") == 0
    # Deleted: nothing answers for the address any more.
    node.run_expect([7, 28], "ip netns exec pod0 curl -s --max-time 3 http://198.18.128.80/index.html")


def large_packets_fit_the_pod_mtu(node, peer: str) -> None:
    # 1422 bytes of payload + 28 of headers = 1450: the largest canal pod packet.
    node.run_expect([0], f"ip netns exec pod0 ping -c 1 -W 2 -M do -s 1422 {POD_CIDR[peer]}.10")
