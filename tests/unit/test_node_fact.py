"""The node fact, the contract between the cluster stage and the benchmark: built and checked in one place."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.netlab.lab.plugins.modules import node_fact

ROOT = Path(__file__).resolve().parents[2]
COMMON = {"name": "netlab-agent-1", "ip": "198.18.0.12", "cni": "cilium", "datapath": "cilium model", "mtu": 1500}
MODEL = {"model": True, "pod_cidr": "198.19.2.0/24", "service_cidr": "198.18.128.0/17", "interface": "eth0",
         "link_mtu": 1500, "pods": [{"name": "pod-a", "ip": "198.19.2.10", "role": "client"}]}


def params(**fields):
    return {field: None for field in node_fact.FIELDS} | fields


def test_a_model_node_keeps_its_fields_in_one_order():
    fact = node_fact.build_fact(params(**COMMON, **MODEL))
    assert list(fact) == ["name", "ip", "cni", "datapath", "model", "mtu", "pod_cidr", "service_cidr",
                          "interface", "link_mtu", "pods"]


def test_a_cluster_node_leaves_out_what_it_does_not_know():
    fact = node_fact.build_fact(params(**COMMON | {"mtu": None}, model=False, state={"routing": "native"}))
    assert fact == {"name": "netlab-agent-1", "ip": "198.18.0.12", "cni": "cilium", "datapath": "cilium model",
                    "model": False, "state": {"routing": "native"}}


@pytest.mark.parametrize(("fields", "message"), [
    (COMMON | MODEL | {"pods": None, "interface": ""}, "datapath model needs interface, pods"),
    (COMMON | {"model": False}, "a real cluster needs state"),
])
def test_a_node_without_what_its_kind_needs_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        node_fact.build_fact(params(**fields))


def run(path: Path, *extra: str, **fields) -> dict:
    args = json.dumps({**fields, "path": str(path)})
    env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run(["ansible", "localhost", "-m", "netlab.lab.node_fact", "-a", args, *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode in (0, 2), proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_the_module_writes_once_and_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "facts.d" / "netlab.fact"
    assert run(path, "--check", **COMMON, **MODEL)["changed"] is True and not path.exists()
    assert run(path, **COMMON, **MODEL)["changed"] is True
    assert json.loads(path.read_text()) == node_fact.build_fact(params(**COMMON, **MODEL))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert run(path, **COMMON, **MODEL)["changed"] is False
    failed = run(path, **COMMON, model=True)
    assert failed["failed"] and "needs pod_cidr, service_cidr, interface, link_mtu, pods" in failed["msg"]
