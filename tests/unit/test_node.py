"""The node filters on facts as setup gathers them (the local lab's eth0 and a VM's ens18, ansible_processor)."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.filter.node import bpf_missing, cpu_model, node_nic

FACTS = {
    "default_ipv4": {"address": "198.18.9.11", "interface": "ens18", "mtu": 1500},
    "interfaces": ["lo", "ens18", "flannel.1"],
    "lo": {"device": "lo", "mtu": 65536, "ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
    "ens18": {"device": "ens18", "mtu": 1500, "ipv4": {"address": "198.18.9.11", "netmask": "255.255.255.0"}},
    "flannel_1": {"device": "flannel.1", "mtu": 1450, "ipv4": {"address": "198.19.2.0", "netmask": "255.255.255.255"}},
    "hostname": "netlab-agent-1",
}


def test_the_interface_that_holds_the_address():
    assert node_nic(FACTS, "198.18.9.11")["device"] == "ens18"
    assert node_nic(FACTS, "198.19.2.0")["mtu"] == 1450


def test_no_interface_holds_it():
    assert node_nic(FACTS, "10.0.0.1") == {}
    assert node_nic({}, "10.0.0.1") == {}


def probe(data_dir):
    return json.loads((data_dir / "bpftool-feature-probe-6.18.json").read_text())


def test_a_kernel_with_every_bpf_feature(data_dir):
    """bpftool -j feature probe kernel on the development machine's 6.18 kernel (no modules), in a lab node."""
    assert bpf_missing(probe(data_dir)) == []


def test_a_kernel_without_them_is_told_what_it_lacks(data_dir):
    found = probe(data_dir)
    found["helpers"]["sched_cls_available_helpers"].remove("bpf_redirect_peer")
    found["program_types"]["have_cgroup_sock_addr_prog_type"] = False
    del found["map_types"]["have_percpu_array_map_type"]
    assert bpf_missing(found) == ["BPF program type cgroup_sock_addr", "BPF map type percpu_array",
                                  "helper bpf_redirect_peer in sched_cls programs"]


@pytest.mark.parametrize(("processor", "model"), [
    # x86 (the development machine's setup facts): index, vendor id, model name per CPU.
    (["0", "AuthenticAMD", "AMD EPYC", "1", "AuthenticAMD", "AMD EPYC"], "AMD EPYC"),
    (["0", "GenuineIntel", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"], "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"),
    # A vendor id alone, and no processor facts at all.
    (["0", "GenuineIntel"], "GenuineIntel"),
    ([], None),
    (None, None),
])
def test_cpu_model_is_one_name_from_ansible_processor(processor, model):
    assert cpu_model(processor) == model
