"""/etc/rancher/rke2/config.yaml as the rke2 role's vars build it, per node role: templated by a real
ansible-playbook run on localhost from the role's own defaults and vars (nothing is copied here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# Server-only flags of rke2 v1.33.5+rke2r1 (pkg/cli/cmds/server.go): an agent warns "Unknown flag ... skipping".
SERVER_ONLY = {"cni", "cluster-cidr", "service-cidr", "tls-san", "write-kubeconfig-mode", "disable-kube-proxy",
               "ingress-controller"}
PLAY = """
- name: Template the rke2 role's config.yaml for each node
  hosts: all
  connection: local
  gather_facts: false
  vars_files:
    - {root}/roles/rke2/defaults/main.yml
    - {root}/roles/rke2/vars/main.yml
  tasks:
    - name: Write it out
      ansible.builtin.copy:
        content: "{{{{ rke2_config | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rke2-config")
    (tmp / "play.yml").write_text(PLAY.format(root=ROOT, out=tmp))
    # rke2_address: what configure.yml records for the other nodes to read (hostvars).
    (tmp / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_python_interpreter": sys.executable},
        "children": {"rke2_servers": {"hosts": {"server": {"rke2_address": "198.18.9.11"}}},
                     "rke2_agents": {"hosts": {"agent": {"rke2_address": "198.18.9.12"}}}}}}))
    # Extra vars: the role's vars files win over play vars and inventory (configure.yml sets these as facts).
    extra = {"rke2_cni": "cilium", "rke2_cluster_token": "t" * 64, "rke2_node_ip": "{{ rke2_address }}"}
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp / "hosts.yml"), str(tmp / "play.yml"),
                           "-e", json.dumps(extra)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {name: json.loads((tmp / f"{name}.json").read_text()) for name in ("server", "agent")}


def test_kube_proxy_replacement_is_a_server_flag(configs):
    """Review F12: Cilium's reference profile replaces kube-proxy; only the server is told so."""
    assert configs["server"]["disable-kube-proxy"] is True
    assert "disable-kube-proxy" not in configs["agent"]


def test_agents_get_no_server_flag(configs):
    assert not set(configs["agent"]) & SERVER_ONLY, configs["agent"]
    assert configs["agent"]["server"] == "https://198.18.9.11:9345"
    assert set(configs["server"]) & SERVER_ONLY == SERVER_ONLY
