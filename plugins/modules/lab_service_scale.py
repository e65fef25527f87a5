"""Measure Service lookup on a local lab node with N Services (iptables chain, nftables verdict map or the socket
hook's BPF map)."""

from __future__ import annotations

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netlab.lab.plugins.module_utils import service_scale as scale
from ansible_collections.netlab.lab.plugins.module_utils import sock_lb

DOCUMENTATION = r"""
module: lab_service_scale
short_description: Measure new-connection latency and Service update time with N Services on a lab node
version_added: "0.1.0"
description:
  - Local lab model of Service lookup, not kube-proxy or Cilium themselves. In the node's own network
    namespace it translates O(services) ClusterIP-like addresses to one backend, either by an iptables
    chain walked in order (O(model=iptables), kube-proxy's iptables mode), by one lookup in an nftables
    verdict map (O(model=nftables), kube-proxy's nftables mode, in a table of its own) or by one lookup in the BPF hash
    map behind the Cilium model's cgroup connect() hook (O(model=bpf-socket-lb), a model of Cilium's
    kube-proxy replacement), written with bpf(2) system calls from the module itself as Cilium's agent
    writes its maps. The Services get ids with the top bit clear, the lab's benchmark Services keep theirs.
  - From a pod's network namespace it then opens O(connections) new TCP connections to the last Service
    (connect, 1-byte request and answer, close), adds one more Service (iptables-restore of the whole
    Services chain as kube-proxy's sync, one chain and one map element in one nft transaction as its
    nftables mode's, or one backend slot and one Service written to the maps) and
    measures how long that took and when the new Service first answered.
  - Connections to untranslated Service addresses are refused on the node, so nothing leaves the lab.
  - Everything it creates is removed before it returns, whatever happened; leftovers of an interrupted
    run are removed first. With O(state=absent) it only removes leftovers.
options:
  state:
    description: V(measured) runs one measurement, V(absent) only removes what a measurement creates.
    type: str
    choices: [measured, absent]
    default: measured
  model:
    description: Lookup structure. Required with O(state=measured).
    type: str
    choices: [iptables, nftables, bpf-socket-lb]
  services:
    description: Number of Services present while measuring. With 0 the latency is measured to the backend itself.
    type: int
    default: 0
  service_cidr:
    description: Addresses of the Services.
    type: str
    default: 10.43.0.0/16
  backend:
    description:
      - Address of the backend every Service translates to (a pod on another node).
      - Required with O(state=measured).
    type: str
  backend_port:
    description: Port the backend answers on.
    type: int
    default: 8080
  client_netns:
    description: Network namespace of the client pod on this node. Required with O(state=measured).
    type: str
  connections:
    description: New connections measured; a few more are made first to warm caches.
    type: int
    default: 1000
  timeout:
    description: Seconds to wait for the added Service to answer.
    type: float
    default: 30
attributes:
  check_mode:
    support: none
notes:
  - Needs root, C(iptables-save), C(iptables-restore) and C(nft) on the node; O(model=bpf-socket-lb) needs the
    Cilium model's maps pinned in /sys/fs/bpf (C(netlab-datapath up) with cni=cilium).
  - Reports changed only when it removed leftovers of an earlier, interrupted run.
author: netlab
"""

EXAMPLES = r"""
- name: Measure with 1000 Services in kube-proxy's iptables model
  netlab.lab.lab_service_scale:
    model: iptables
    services: 1000
    backend: 198.19.2.10
    client_netns: pod0
  register: scale_result
"""

RETURN = r"""
record:
  description: The measurement.
  returned: state=measured
  type: dict
  contains:
    model: {description: The lookup structure., type: str}
    services: {description: Services present while measuring., type: int}
    target: {description: Address probed (the last Service, or the backend with 0 Services)., type: str}
    latency_us: {description: p50, p90, p99, mean, min and max of new-connection latency in microseconds., type: dict}
    samples_us: {description: Every latency sample in microseconds., type: list, elements: float}
    update_ms: {description: Time to add one Service., type: float}
    reachable_ms: {description: Time from the start of the update until the new Service answered., type: float}
"""

WARMUP = 20


def run(module: AnsibleModule, argv: list[str], stdin: str | None = None) -> str:
    rc, out, err = module.run_command(argv, data=stdin, binary_data=True)
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({rc}): {err.strip() or out.strip()}")
    return out


def cleanup(module: AnsibleModule) -> bool:
    """Remove our chains, map entries and guard table; True when there was something to remove."""
    removed = False
    leftover = scale.iptables_cleanup(run(module, ["iptables-save", "-t", "nat"]))
    if leftover:
        run(module, ["iptables-restore", "--noflush"], leftover)
        removed = True
    # A node without the socket LB's maps (cni=canal) cannot hold entries of ours.
    if scale.ServiceMaps.present():
        with scale.ServiceMaps() as maps:
            removed = bool(maps.remove_scenario()) or removed
    for table in (scale.NFT_SERVICES, scale.NFT_GUARD):
        if module.run_command(["nft", "list", "table", "ip", table])[0] == 0:
            run(module, ["nft", "delete", "table", "ip", table])
            removed = True
    return removed


class Services:
    """The N Services of one measurement, in the structure of the model, and the addition of one more."""

    def __init__(self, module: AnsibleModule, model: str, cidr: str, backend: str, port: int) -> None:
        self.module, self.model, self.cidr, self.backend, self.port = module, model, cidr, backend, port
        # Opened once, as Cilium's agent holds its maps open: adding a Service is then two writes.
        self.maps = scale.ServiceMaps() if model == "bpf-socket-lb" else None

    def close(self) -> None:
        if self.maps:
            self.maps.close()

    def load(self, count: int) -> None:
        if self.maps:
            for index in range(count):
                self.maps.add(self.cidr, index, self.backend, self.port)
            return
        if self.model == "nftables":
            run(self.module, ["nft", "-f", "-"], scale.nftables_services(self.cidr, self.backend, self.port,
                                                                         range(count)))
            return
        run(self.module, ["iptables-restore", "--noflush"],
            scale.iptables_services(count, self.cidr, self.backend, self.port, range(count)))
        for hook in scale.HOOKS:
            run(self.module, ["iptables", "-t", "nat", "-I", hook, "-j", scale.SERVICES_CHAIN])

    def add(self, count: int) -> None:
        """Add Service number count+1 the way each datapath would."""
        if self.maps:
            self.maps.add(self.cidr, count, self.backend, self.port)
        elif self.model == "nftables":
            run(self.module, ["nft", "-f", "-"], scale.nftables_services(self.cidr, self.backend, self.port,
                                                                         range(count, count + 1)))
        else:
            run(self.module, ["iptables-restore", "--noflush"],
                scale.iptables_services(count + 1, self.cidr, self.backend, self.port, range(count, count + 1)))


def measure(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    model, count, cidr = p["model"], p["services"], p["service_cidr"]
    backend, port, netns = p["backend"], p["backend_port"], p["client_netns"]
    # Untranslated Service addresses must fail at once and stay in the lab (see scale.nft_guard).
    run(module, ["nft", "-f", "-"], scale.nft_guard(cidr))
    services = Services(module, model, cidr, backend, port)
    try:
        services.load(count)
        target, target_port = (scale.vip(cidr, count - 1), scale.SERVICE_PORT) if count else (backend, port)
        scale.NetnsTask(netns, scale.connect_latencies, target, target_port, WARMUP).result()
        samples = scale.NetnsTask(netns, scale.connect_latencies, target, target_port, p["connections"]).result()

        waiter = scale.NetnsTask(netns, scale.first_answer, scale.vip(cidr, count), scale.SERVICE_PORT,
                                 time.time() + p["timeout"])
        waiter.ready()
        started, clock = time.time(), time.perf_counter()
        services.add(count)
        update = time.perf_counter() - clock
        reachable = waiter.result() - started
    finally:
        services.close()
    return {"model": model, "services": count, "target": target, "connections": len(samples),
            "latency_us": scale.percentiles(samples), "samples_us": [round(s, 1) for s in samples],
            "update_ms": update * 1e3, "reachable_ms": reachable * 1e3}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["measured", "absent"], "default": "measured"},
            "model": {"type": "str", "choices": ["iptables", "nftables", "bpf-socket-lb"]},
            "services": {"type": "int", "default": 0},
            "service_cidr": {"type": "str", "default": "10.43.0.0/16"},
            "backend": {"type": "str"},
            "backend_port": {"type": "int", "default": 8080},
            "client_netns": {"type": "str"},
            "connections": {"type": "int", "default": 1000},
            "timeout": {"type": "float", "default": 30},
        },
        required_if=[("state", "measured", ("model", "backend", "client_netns"))],
        supports_check_mode=False,
    )
    p = module.params
    try:
        if p["state"] == "measured":
            scale.check_counts([p["services"]], p["service_cidr"], scale.capacity(p["service_cidr"]))
            if p["connections"] < 1:
                raise scale.ScaleError(f"connections must be at least 1, got {p['connections']}")
    except (scale.ScaleError, sock_lb.MapError) as exc:
        module.fail_json(msg=str(exc))
    try:
        changed = cleanup(module)
        record = None
        if p["state"] == "measured":
            try:
                record = measure(module)
            finally:
                cleanup(module)
    except (RuntimeError, OSError, scale.ScaleError, sock_lb.MapError) as exc:
        module.fail_json(msg=f"Service scale measurement failed: {exc}")
    module.exit_json(changed=changed, record=record)


if __name__ == "__main__":
    main()
