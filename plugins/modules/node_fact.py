"""Record what the cluster stage built on a node as the local fact that the bench and scale stages read."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: node_fact
short_description: Write the node's datapath fact, the contract between the cluster stage and the benchmark
version_added: "0.4.0"
description:
  - Writes C(/etc/ansible/facts.d/netlab.fact), read back as C(ansible_local.netlab) by the roles
    C(netlab.lab.bench_nodes), C(netlab.lab.bench) and C(netlab.lab.service_scale). Its fields are
    this module's options; C(netlab.lab.lab_cni) (the datapath model) and C(netlab.lab.rke2) (a real
    cluster) both write it through this module, so the fields are defined and checked in one place.
  - A field that does not apply is left out of the file, so a reader sees a missing key, not a null.
options:
  name:
    description: The node's name (Kubernetes node name; on the local lab its inventory name).
    type: str
    required: true
  ip:
    description: The node's address on the lab network.
    type: str
    required: true
  cni:
    description: The CNI the node runs.
    type: str
    required: true
    choices: [canal, cilium]
  datapath:
    description: One line that says how packets move (the CNI agent's own words on a real cluster).
    type: str
    required: true
  model:
    description: V(true) for the local lab's datapath model (C(netlab.lab.lab_cni)), V(false) for a real CNI.
    type: bool
    required: true
  mtu:
    description: The pods' MTU, where known.
    type: int
  profile:
    description: The name of the CNI profile the node was built with (playbooks/vars/profiles.yml), where one was named.
    type: str
  settings:
    description:
      - The datapath settings the node was built with (a profile's C(routing), C(kube_proxy_replacement),
        C(host_routing), C(masquerade), C(mtu)), which the benchmark's proof of path and reports read.
    type: dict
  pod_cidr:
    description: The node's share of the cluster CIDR. Required when O(model=true).
    type: str
  service_cidr:
    description: The lab's Service CIDR, served by the model. Required when O(model=true).
    type: str
  interface:
    description: The node's own interface that carries the lab traffic. Required when O(model=true).
    type: str
  link_mtu:
    description: That interface's MTU. Required when O(model=true).
    type: int
  pods:
    description:
      - The model's pods on this node, each a dict with C(name) (its network namespace), C(ip) and C(role).
      - Required when O(model=true).
    type: list
    elements: dict
  state:
    description:
      - What the CNI's agent reports of its own datapath (the C(netlab.lab.rke2_datapath) filter).
      - Required when O(model=false).
    type: dict
  ingress:
    description: The ingress controller RKE2 runs, as configured.
    type: dict
  path:
    description: Where the fact is written.
    type: path
    default: /etc/ansible/facts.d/netlab.fact
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: netlab
"""

EXAMPLES = r"""
- name: Record the datapath model as the node's fact
  netlab.lab.node_fact:
    name: netlab-agent-1
    ip: 198.18.0.12
    cni: cilium
    datapath: "cilium model: eBPF host routing, socket LB"
    model: true
    mtu: 1500
    link_mtu: 1500
    interface: eth0
    pod_cidr: 198.19.2.0/24
    service_cidr: 198.18.128.0/17
    pods: [{name: pod-a, ip: 198.19.2.10, role: client}]
"""

RETURN = r"""
fact:
  description: The fact as written (and as C(ansible_local.netlab) reads it).
  returned: always
  type: dict
"""

MODEL_FIELDS = ("pod_cidr", "service_cidr", "interface", "link_mtu", "pods")
CLUSTER_FIELDS = ("state",)
FIELDS = ("name", "ip", "cni", "datapath", "model", "mtu", "profile", "settings", *MODEL_FIELDS, *CLUSTER_FIELDS,
          "ingress")


def build_fact(params: dict[str, Any]) -> dict[str, Any]:
    """The fact's fields that apply, in a fixed order; raises ValueError naming what a kind of node lacks."""
    needed = MODEL_FIELDS if params["model"] else CLUSTER_FIELDS
    missing = [field for field in needed if params.get(field) in (None, "")]
    if missing:
        kind = "the datapath model" if params["model"] else "a real cluster"
        raise ValueError(f"a node of {kind} needs {', '.join(missing)}")
    return {field: params[field] for field in FIELDS if params.get(field) is not None}


def read_fact(path: str) -> Any:
    """What is in the file now; None when there is no file or it is not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "ip": {"type": "str", "required": True},
            "cni": {"type": "str", "required": True, "choices": ["canal", "cilium"]},
            "datapath": {"type": "str", "required": True},
            "model": {"type": "bool", "required": True},
            "mtu": {"type": "int"},
            "profile": {"type": "str"},
            "settings": {"type": "dict"},
            "pod_cidr": {"type": "str"},
            "service_cidr": {"type": "str"},
            "interface": {"type": "str"},
            "link_mtu": {"type": "int"},
            "pods": {"type": "list", "elements": "dict"},
            "state": {"type": "dict"},
            "ingress": {"type": "dict"},
            "path": {"type": "path", "default": "/etc/ansible/facts.d/netlab.fact"},
        },
        supports_check_mode=True,
    )
    try:
        fact = build_fact(module.params)
    except ValueError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        module.fail_json(msg=problem)
    path = module.params["path"]
    changed = read_fact(path) != fact
    if changed and not module.check_mode:
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o755, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".netlab.fact.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(fact, indent=4, sort_keys=False) + "\n")
        os.chmod(temporary, 0o644)
        module.atomic_move(temporary, path)
    module.exit_json(changed=changed, fact=fact)


if __name__ == "__main__":
    main()
