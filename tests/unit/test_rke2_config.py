"""/etc/rancher/rke2/config.yaml as the rke2 role's vars build it, per node role: templated by a real
ansible-playbook run on localhost from the role's own defaults and vars (rke2_vars.py)."""

import json
import sys

import pytest
import rke2_vars

# Server-only flags of rke2 v1.33.5+rke2r1 (pkg/cli/cmds/server.go): an agent warns "Unknown flag ... skipping".
SERVER_ONLY = {"cni", "cluster-cidr", "service-cidr", "tls-san", "write-kubeconfig-mode", "disable-kube-proxy",
               "ingress-controller"}
TASKS = """
    - name: Write it out
      ansible.builtin.copy:
        content: "{{{{ rke2_config | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0644"
"""


def _configs(tmp, **more):
    """Each node's config.yaml with these extra inputs."""
    # rke2_address: what configure.yml records for the other nodes to read (hostvars).
    (tmp / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_python_interpreter": sys.executable},
        "children": {"rke2_servers": {"hosts": {"server": {"rke2_address": "198.18.9.11"}}},
                     "rke2_agents": {"hosts": {"agent": {"rke2_address": "198.18.9.12"}}}}}}))
    # Extra vars: the role's vars files win over play vars and inventory (configure.yml sets these as facts).
    extra = {"rke2_cni": "cilium", "rke2_cluster_token": "t" * 64, "rke2_node_ip": "{{ rke2_address }}", **more}
    rke2_vars.run(tmp, "Template the rke2 role's config.yaml for each node", "all", TASKS.format(out=tmp),
                  str(tmp / "hosts.yml"), extra)
    return {name: json.loads((tmp / f"{name}.json").read_text()) for name in ("server", "agent")}


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    return _configs(tmp_path_factory.mktemp("rke2-config"))


def test_kube_proxy_in_nftables_mode_on_every_node(tmp_path):
    """canal/nftables: kube-proxy runs on each node, each told its mode (kube-proxy-arg, not a server flag)."""
    settings = {"routing": "vxlan", "kube_proxy_replacement": False, "host_routing": "legacy",
                "masquerade": "iptables", "mtu": 0, "kube_proxy_mode": "nftables"}
    found = _configs(tmp_path, rke2_cni="canal", rke2_profile_settings=settings)
    assert [found[node].get("kube-proxy-arg") for node in ("server", "agent")] == [["proxy-mode=nftables"]] * 2
    assert "disable-kube-proxy" not in found["server"]


def test_kube_proxy_replacement_is_a_server_flag(configs):
    """Review F12: Cilium's reference profile replaces kube-proxy; only the server is told so."""
    assert configs["server"]["disable-kube-proxy"] is True
    assert "disable-kube-proxy" not in configs["agent"]


def test_agents_get_no_server_flag(configs):
    assert not set(configs["agent"]) & SERVER_ONLY, configs["agent"]
    assert configs["agent"]["server"] == "https://198.18.9.11:9345"
    assert set(configs["server"]) & SERVER_ONLY == SERVER_ONLY
