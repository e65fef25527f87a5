"""The chart values the rke2 role writes for every shipped profile, templated by a real ansible-playbook run on
localhost from the role's own defaults and vars (rke2_vars.py), against the chart value paths of the pinned
release (tests/data/rke2-chart-paths.yml)."""

import json
import sys

import pytest
import rke2_vars
import yaml

PROFILES = yaml.safe_load((rke2_vars.ROOT / "playbooks/vars/profiles.yml").read_text())["netlab_profiles"]
CHART_PATHS = {cni: set(found) for cni, found in yaml.safe_load(rke2_vars.CHART_PATHS.read_text()).items()}
TASKS = """
    - name: Write them out
      ansible.builtin.copy:
        content: "{{{{ {{'cilium': rke2_cilium_values, 'canal': rke2_canal_values, 'ipsec': rke2_cilium_ipsec,
                        'secret': rke2_cilium_ipsec_secret if rke2_cilium_ipsec else none}} | to_json }}}}"
        dest: "{out}/{{{{ item.key | replace('/', '_') }}}}.json"
        mode: "0644"
      loop: "{{{{ profiles | dict2items }}}}"
      vars:
        rke2_cni: "{{{{ item.key.split('/')[0] }}}}"
        rke2_profile_settings: "{{{{ item.value }}}}"
"""


def paths(values, prefix=""):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rke2-values")
    profiles = {f"{cni}/{name}": profile["settings"] for cni in PROFILES for name, profile in PROFILES[cni].items()}
    # The key as configure.yml reads or generates it (40 hex digits).
    extra = {"profiles": profiles, "rke2_cilium_ipsec_hex": "0123456789abcdef" * 2 + "01234567",
             "ansible_python_interpreter": sys.executable}
    rke2_vars.run(tmp, "Template the rke2 role's chart values for each profile", "localhost", TASKS.format(out=tmp),
                  "localhost,", extra)
    return {label: json.loads((tmp / f"{label.replace('/', '_')}.json").read_text()) for label in profiles}


def test_every_profile_writes_only_the_charts_paths(rendered):
    for label, found in rendered.items():
        values = found[label.split("/")[0]]
        assert set(paths(values)) <= CHART_PATHS[label.split("/")[0]], label


def test_the_real_lab_settings_reach_the_charts(rendered):
    assert rendered["cilium/native-netkit"]["cilium"]["bpf"]["datapathMode"] == "netkit"
    assert "datapathMode" not in rendered["cilium/native-bpf"]["cilium"]["bpf"], "veth, the chart's default"
    assert rendered["cilium/native-wireguard"]["cilium"]["encryption"] == {"enabled": True, "type": "wireguard"}
    assert rendered["cilium/native-ipsec"]["cilium"]["encryption"] == {"enabled": True, "type": "ipsec"}
    assert "encryption" not in rendered["cilium/native-bpf"]["cilium"]
    # The IPsec key's Secret only where a Cilium profile asks for IPsec.
    assert [label for label, found in rendered.items() if found["ipsec"]] == ["cilium/native-ipsec"]
    assert rendered["cilium/native-ipsec"]["secret"] == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "cilium-ipsec-keys", "namespace": "kube-system"},
        "stringData": {"keys": "3+ rfc4106(gcm(aes)) " + "0123456789abcdef" * 2 + "01234567 128"}}
    assert rendered["cilium/native-bandwidth-manager"]["cilium"]["bandwidthManager"] == {"enabled": True}
    assert rendered["cilium/native-bpf"]["cilium"]["bandwidthManager"] == {"enabled": False}
    # flannel's wireguard backend, and the pods' MTU under its 80 bytes on a 1500 NIC.
    assert rendered["canal/wireguard"]["canal"] == {"flannel": {"backend": "wireguard"}, "calico": {"vethuMTU": 1420}}
    assert rendered["canal/vxlan"]["canal"] == {"flannel": {"backend": "vxlan"}, "calico": {"vethuMTU": 1450}}
