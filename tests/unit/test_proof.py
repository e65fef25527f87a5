"""The proof of path: counters read around a test, kept in its raw file, checked against the model."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof


def raw(data_dir, name):
    return json.loads((data_dir / f"raw-{name}.json").read_text())


def test_a_broken_reading_is_stderr_not_a_counter():
    readings, rest = proof.split_stderr(f"{proof.MARKER}usage: netlab-datapath up|down\n")
    assert readings == [] and rest.startswith(proof.MARKER)


def test_a_cilium_service_test_captured_on_the_lab(data_dir):
    """Counters of a real service-tcp-1 run on the Cilium model: socket LB, then BPF host routing."""
    grown = proof.delta(raw(data_dir, "cilium-model-service")["netlab_counters"])
    verdict = proof.check("cilium", "service", grown)
    assert verdict["contradictions"] == []
    assert proof.MECHANISMS["bpf.sock_xlate"] in verdict["mechanisms"]
    assert proof.MECHANISMS["iptables.forward"] not in verdict["mechanisms"]


def test_the_same_counters_contradict_another_placement_and_cni(data_dir):
    grown = proof.delta(raw(data_dir, "cilium-model-same-node")["netlab_counters"])
    assert proof.check("cilium", "same-node", grown)["contradictions"] == []
    cross = proof.check("cilium", "cross-node", grown)["contradictions"]
    assert cross == [f"{proof.MECHANISMS['bpf.from_container_neigh']} did not move",
                     f"{proof.MECHANISMS['bpf.from_netdev_peer']} did not move"]
    assert proof.MECHANISMS["iptables.felix-from-workload"] + " did not move" in proof.check(
        "canal", "same-node", grown)["contradictions"]


@pytest.mark.parametrize("counters", [None, {}, {"before": {"a": 1}}, {"before": None, "after": {}}])
def test_no_proof_without_two_readings(counters):
    assert proof.delta(counters) is None
    assert proof.check("cilium", "cross-node", proof.delta(counters)) is None


def test_netfilter_on_a_bpf_path_is_named():
    grown = {"bpf.from_container_neigh": 10, "bpf.from_netdev_peer": 5, "iptables.forward": 7}
    assert proof.check("cilium", "cross-node", grown)["contradictions"] == [
        f"{proof.MECHANISMS['iptables.forward']} moved (7)"]
