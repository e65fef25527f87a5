"""Filters on a node's gathered facts; each is documented in its sidecar file."""

from __future__ import annotations

from typing import Any


def node_nic(facts: dict[str, Any], address: str) -> dict[str, Any]:
    """The interface facts (device, mtu, ipv4, ...) of the interface that holds ``address``; {} if none does.

    A node's lab address may not be on its default route's interface, and its name differs by provider
    (eth0 in a container, ens18 on a Proxmox VM): the address decides.
    """
    for value in (facts or {}).values():
        if isinstance(value, dict) and (value.get("ipv4") or {}).get("address") == address:
            return value
    return {}


# What ansible_processor holds besides model names: each CPU's index and its vendor id (x86).
CPU_VENDORS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls")


def cpu_model(processor: list[Any] | None) -> str | None:
    """One model name from ``ansible_processor``, which lists per CPU its index, vendor id and model name
    (``['0', 'GenuineIntel', 'Intel(R) Xeon(R) ...', '1', ...]``; other architectures give fewer fields):
    the first entry that is neither an index nor a vendor id, else the vendor id, else None."""
    names = [str(p).strip() for p in processor or [] if str(p).strip() and not str(p).strip().isdigit()]
    models = [name for name in names if name not in CPU_VENDORS]
    return (models or names or [None])[0]


def node_hardware(facts: dict[str, Any]) -> dict[str, Any]:
    """What run.json records of a node (``environment.nodes``) from its gathered facts: name, kernel,
    vCPUs, memory (MiB) and CPU model."""
    return {"name": facts.get("ansible_nodename"), "kernel": facts.get("ansible_kernel"),
            "vcpus": facts.get("ansible_processor_vcpus"), "memtotal_mb": facts.get("ansible_memtotal_mb"),
            "cpu_model": cpu_model(facts.get("ansible_processor"))}


# What the Cilium model's programs (roles/lab_cni/files/bpf) use, by the names of
# ``bpftool -j feature probe kernel``: program and map types, and the helpers each program type calls.
BPF_NEEDS = {
    "program_types": ("sched_cls", "cgroup_sock_addr"),
    "map_types": ("hash", "array", "percpu_array"),
    "helpers": {
        "sched_cls": ("bpf_map_lookup_elem", "bpf_fib_lookup", "bpf_redirect_neigh", "bpf_redirect_peer"),
        "cgroup_sock_addr": ("bpf_map_lookup_elem", "bpf_get_prandom_u32"),
    },
}


def bpf_missing(probe: dict[str, Any]) -> list[str]:
    """What the Cilium model needs and a kernel's feature probe says it lacks, by name; [] if nothing."""
    missing = [f"BPF program type {name}" for name in BPF_NEEDS["program_types"]
               if not (probe.get("program_types") or {}).get(f"have_{name}_prog_type")]
    missing += [f"BPF map type {name}" for name in BPF_NEEDS["map_types"]
                if not (probe.get("map_types") or {}).get(f"have_{name}_map_type")]
    for program, helpers in BPF_NEEDS["helpers"].items():
        available = (probe.get("helpers") or {}).get(f"{program}_available_helpers") or []
        missing += [f"helper {helper} in {program} programs" for helper in helpers if helper not in available]
    return missing


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"node_nic": node_nic, "node_hardware": node_hardware, "bpf_missing": bpf_missing}
