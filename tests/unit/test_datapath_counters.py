"""The node-side counter reader of the datapath models (roles/lab_cni/files/netlab-counters)."""

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "roles/lab_cni/files/netlab-counters"


@pytest.fixture(scope="module")
def reader():
    loader = importlib.machinery.SourceFileLoader("netlab_counters", str(SCRIPT))
    spec = importlib.util.spec_from_loader("netlab_counters", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_labelled_rules_of_a_canal_node(reader, data_dir):
    """iptables-save -c of the Canal model after a run, captured on a lab node."""
    found = reader.iptables_counters((data_dir / "iptables-save-canal-model.txt").read_text())
    assert found == {
        "iptables.forward": 591524,
        "iptables.felix-accept": 18,
        "iptables.felix-from-workload": 488242,
        "iptables.felix-to-workload": 103289,
        "iptables.nat-prerouting": 29,
        "iptables.service.iperf3-cross": 2,
    }


def test_unlabelled_rules_and_chain_names_are_not_counters(reader):
    text = ("[7:420] -A cali-pri-kns.netlab -j MARK --set-xmark 0x10000/0x10000\n"
            ":cali-pro-kns.netlab - [0:0]\n"
            '[5:300] -A FORWARD -m comment --comment "netlab:forward"\n'
            '[2:120] -A FORWARD -m comment --comment "netlab:forward"\n')
    assert reader.iptables_counters(text) == {"iptables.forward": 7}


def test_bpf_counters_sum_the_cpus(reader, data_dir):
    dump = json.loads((data_dir / "bpftool-counters-cilium-model.json").read_text())
    found = reader.bpf_counters(dump)
    assert set(found) == {f"bpf.{name}" for name in reader.BPF_COUNTERS}
    first = dump[0]["formatted"]
    assert found["bpf.from_container_peer"] == sum(cpu["value"] for cpu in first["values"]) > 0


def test_device_counters_of_a_missing_device_are_none(reader, tmp_path):
    stats = tmp_path / "flannel.1" / "statistics"
    stats.mkdir(parents=True)
    (stats / "rx_packets").write_text("12\n")
    (stats / "tx_packets").write_text("34\n")
    assert reader.device_counters("vxlan", "flannel.1", str(tmp_path)) == {"vxlan.rx_packets": 12,
                                                                         "vxlan.tx_packets": 34}
    assert reader.device_counters("vxlan", "absent", str(tmp_path)) == {}
