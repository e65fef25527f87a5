"""Where each VM of a Proxmox lab runs: the placement over the PVE cluster's nodes, checked before any API write.

A cross-node pair of VMs on one PVE node never puts a packet on a wire (the reference blog's 54.64 Gbit/s over a
10 Gbit/s bridge), so the lab is spread over the cluster by default: the benchmark's two VMs on two different
nodes first, then the others on the nodes with the fewest of the lab's VMs. ``template`` keeps every VM on the
template's node (the behaviour before 0.8.0); a VM's own ``node`` and the lab-wide ``proxmox_vm_node`` pin it.

What PVE allows, as its clone API (PVE::API2::Qemu, clone_vm) checks it: a clone to another node (``target``)
needs the source's disks on shared storage ("can't clone VM to node ... (VM uses local storage)") and a shared
target storage ("can't clone to non-shared storage"); a storage serves the nodes its storage.cfg ``nodes`` lists
(all when empty) unless disabled. So a node gets its VMs from a template on that node (the template's name, or
the per-node map ``node_templates``) or from one on shared storage. A VM already cloned stays where it runs
(a clone cannot move it). A node must be online and hold its VMs: each VM's cores at most the node's, the cores
of the lab's VMs there at most the node's (an overcommitted CPU would run the lab's VMs beside each other's
work and pollute the figures), the memory of the VMs to clone at most its free memory.

Pure functions over what proxmox_node_info, proxmox_storage_info and proxmox_vm_info return. Every problem is
reported at once.
"""

from __future__ import annotations

import re
from typing import Any

PLACEMENTS = ("spread", "template")
MIB = 1024 * 1024
GIB = 1024 * MIB
# Disk keys of a QEMU config whose value names a volume (storage:volume,...).
_DISK = re.compile(r"^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$")


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item for item in re.split(r"[,;\s]+", value) if item]
    return [str(item) for item in value or []]


def disk_storages(config: dict[str, Any]) -> list[str]:
    """The storages of a VM's disks (cloud-init and CD-ROM drives included, which a clone copies too; an ISO
    on 'none' or a CD-ROM without a medium is no volume)."""
    found = []
    for key, value in sorted(config.items()):
        if not _DISK.match(str(key)):
            continue
        volume = str(value).split(",")[0]
        if ":" in volume and volume.split(":")[0] not in found and not volume.startswith("/"):
            if "media=cdrom" in str(value) and "cloudinit" not in volume:
                continue
            found.append(volume.split(":")[0])
    return sorted(found)


def _ref_key(ref: Any) -> str:
    """A template named by VMID (digits) or by name."""
    return "vmid" if re.fullmatch(r"\d+", str(ref)) else "name"


def storage_on(storage: dict[str, Any] | None, node: str) -> bool:
    """Whether storage.cfg lets the node use the storage: not disabled, its nodes list empty or naming it."""
    if not storage or storage.get("disable") in (1, "1", True):
        return False
    nodes = _list(storage.get("nodes"))
    return not nodes or node in nodes


def _shared(storage: dict[str, Any] | None) -> bool:
    return bool(storage) and storage.get("shared") in (1, "1", True)


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


class _Cluster:
    """The nodes, storages and templates the plan is checked against."""

    def __init__(self, nodes: list[dict[str, Any]], storages: list[dict[str, Any]],
                 templates: list[dict[str, Any]]) -> None:
        self.nodes = {str(n["node"]): n for n in nodes}
        self.storages = {str(s["storage"]): s for s in storages}
        self.templates = templates

    def online(self, node: str) -> bool:
        return self.nodes.get(node, {}).get("status") == "online"

    def online_nodes(self) -> list[str]:
        return sorted(n for n in self.nodes if self.online(n))


def _template_problem(template: dict[str, Any], node: str, target_storage: str, full: bool,
                      cluster: _Cluster) -> str | None:
    """Why the template cannot be cloned to node (None: it can), after clone_vm's checks."""
    name = f"{template['name']} ({template['vmid']})"
    storages = disk_storages(template.get("config") or {})
    # A template of the node's own would do where only the clone to another node is refused.
    own = (f"; give {node} a template of its own (a template named {template['name']} there, or "
           "proxmox_vm_node_templates)")
    if template["node"] != node:
        local = [s for s in storages if not _shared(cluster.storages.get(s))]
        if local:
            return (f"the template {name} is on {template['node']} with disks on local storage ({', '.join(local)}): "
                    f"PVE clones it to no other node{own}")
        if full and target_storage and not _shared(cluster.storages.get(target_storage)):
            return (f"proxmox_vm_storage {target_storage} is not shared: PVE clones to another node only onto "
                    f"shared storage{own}")
    wanted = [target_storage] if full and target_storage else storages
    for storage in wanted:
        if storage not in cluster.storages:
            return f"storage {storage} does not exist"
        if not storage_on(cluster.storages[storage], node):
            return f"storage {storage} is not available on {node} (storage.cfg nodes or disable)"
        if storage == target_storage and "images" not in _list(cluster.storages[storage].get("content")):
            return f"storage {storage} holds no VM images (content)"
    return None


def place(vms: list[dict[str, Any]], *, placement: str, template: str, node_templates: dict[str, Any],
          lab_node: str, nodes: list[dict[str, Any]], storages: list[dict[str, Any]],
          cluster_vms: list[dict[str, Any]], template_configs: dict[Any, dict[str, Any]], pair: list[str],
          storage: str = "", full_clone: bool = True) -> dict[str, Any]:
    """Each VM's PVE node and the template it is cloned from.

    ``vms``: the plan (proxmox.plan), each with an optional ``node``. ``template``: the template's name or VMID.
    ``node_templates``: node -> template name or VMID. ``nodes``, ``storages``, ``cluster_vms``: what
    proxmox_node_info, proxmox_storage_info and proxmox_vm_info list. ``template_configs``: VMID -> config of the
    templates. ``pair``: the benchmark's two VMs, placed first on distinct nodes.

    Returns ``{vms: [vm + {node, template: {vmid, name, node}, exists}], problems, notes, nodes: {node: [names]}}``.
    """
    problems: list[str] = []
    notes: list[str] = []
    if placement not in PLACEMENTS:
        problems.append(f"proxmox_vm_placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        placement = "spread"
    templates = [{"vmid": int(vm["vmid"]), "name": str(vm.get("name", "")), "node": str(vm.get("node", "")),
                  "config": template_configs.get(int(vm["vmid"])) or template_configs.get(str(vm["vmid"])) or {}}
                 for vm in cluster_vms if vm.get("template") in (1, "1", True)]
    cluster = _Cluster(nodes, storages, templates)
    by_vmid = {int(vm["vmid"]): vm for vm in cluster_vms}

    def named(ref: Any, node: str | None = None) -> list[dict[str, Any]]:
        key = _ref_key(ref)
        value = int(ref) if key == "vmid" else str(ref)
        return [t for t in templates if t[key] == value and (node is None or t["node"] == node)]

    # The per-node map: a node the cluster has, naming a template on that node.
    mapped: dict[str, dict[str, Any]] = {}
    for node, ref in sorted((node_templates or {}).items()):
        node = str(node)
        if node not in cluster.nodes:
            problems.append(f"proxmox_vm_node_templates names node {node}, which the cluster lacks "
                            f"(nodes: {', '.join(sorted(cluster.nodes))})")
            continue
        found = named(ref, node)
        if len(found) == 1:
            mapped[node] = found[0]
            continue
        others = [vm for vm in cluster_vms if str(vm.get(_ref_key(ref))) == str(ref)]
        if others and not named(ref):
            problems.append(f"proxmox_vm_node_templates: {ref} on {node} is a VM, not a template "
                            f"(convert it with qm template, or name a template)")
        elif len(found) > 1:
            problems.append(f"proxmox_vm_node_templates: more than one template {ref} on {node}: name it by VMID")
        else:
            elsewhere = sorted({t["node"] for t in named(ref)})
            problems.append(f"proxmox_vm_node_templates: no template {ref} on {node}"
                            + (f" (it is on {', '.join(elsewhere)})" if elsewhere else ""))
    sources = named(template)
    if not sources and not mapped:
        names = ", ".join(sorted({t["name"] for t in templates})) or "none"
        problems.append(f"No template {template} on the cluster (templates: {names}). Make a cloud-init template "
                        "first (README).")
        return {"vms": [vm | {"node": None, "exists": False, "template": None} for vm in vms],
                "problems": problems, "notes": notes, "nodes": {}}

    known: dict[str, tuple[dict[str, Any] | None, str | None]] = {}

    def source_for(node: str) -> tuple[dict[str, Any] | None, str | None]:
        """The template a VM on node is cloned from, or why none can be (found once per node)."""
        if node not in known:
            known[node] = _source_for(node)
        return known[node]

    def _source_for(node: str) -> tuple[dict[str, Any] | None, str | None]:
        if node in mapped:
            return mapped[node], _template_problem(mapped[node], node, storage, full_clone, cluster)
        here = [t for t in sources if t["node"] == node]
        if len(here) == 1:
            return here[0], _template_problem(here[0], node, storage, full_clone, cluster)
        if len(here) > 1:
            return None, f"more than one template {template} on {node}: name it by VMID"
        reasons = []
        for candidate in sources:
            reason = _template_problem(candidate, node, storage, full_clone, cluster)
            if reason is None:
                return candidate, None
            reasons.append(reason)
        if not sources:
            return None, f"no template {template} and none in proxmox_vm_node_templates for {node}"
        return None, "; ".join(dict.fromkeys(reasons))

    if placement == "template" and len({t["node"] for t in sources}) > 1 and not lab_node:
        on = sorted({t["node"] for t in sources})
        notes.append(f"the template {template} is on {', '.join(on)}: the lab goes to {on[0]} (proxmox_vm_node "
                     "chooses another)")

    # Where each VM must go: where it runs, its own node, the lab's node, or (template) the template's node.
    fixed: dict[str, str] = {}
    existing: dict[str, str] = {}
    for vm in vms:
        found = by_vmid.get(int(vm["vmid"]))
        asked = str(vm.get("node") or lab_node or "")
        if found and not found.get("template"):
            existing[vm["name"]] = str(found.get("node", ""))
            if asked and asked != existing[vm["name"]]:
                problems.append(f"{vm['name']} ({vm['vmid']}) runs on {existing[vm['name']]}, the plan puts it on "
                                f"{asked}: a clone cannot move it (migrate it with qm migrate, or tear the lab down)")
            fixed[vm["name"]] = existing[vm["name"]]
        elif asked:
            fixed[vm["name"]] = asked
        elif placement == "template" and sources:
            fixed[vm["name"]] = sorted(t["node"] for t in sources)[0]
    for name, node in sorted(fixed.items()):
        if node not in cluster.nodes:
            problems.append(f"{name} is to run on {node}, which the cluster lacks "
                            f"(nodes: {', '.join(sorted(cluster.nodes))})")
        elif not cluster.online(node):
            problems.append(f"{name} is to run on {node}, which is {cluster.nodes[node].get('status', 'not online')}")

    # The benchmark's pair first, then the servers, then the other agents: plan order within each.
    order = ([vm for name in pair for vm in vms if vm["name"] == name]
             + [vm for vm in vms if vm["name"] not in pair and vm.get("role") == "server"]
             + [vm for vm in vms if vm["name"] not in pair and vm.get("role") != "server"])
    usable: dict[str, str | None] = {}
    for node in cluster.online_nodes():
        usable[node] = source_for(node)[1]
    candidates = [node for node, reason in usable.items() if reason is None]
    load: dict[str, list[str]] = {node: [] for node in cluster.nodes}
    cores: dict[str, int] = {node: 0 for node in cluster.nodes}
    memory: dict[str, int] = {node: 0 for node in cluster.nodes}

    def room(node: str, vm: dict[str, Any], new: bool) -> str | None:
        info = cluster.nodes.get(node, {})
        maxcpu, maxmem, used = int(info.get("maxcpu") or 0), int(info.get("maxmem") or 0), int(info.get("mem") or 0)
        if maxcpu and vm["cores"] > maxcpu:
            return f"{vm['name']} asks {vm['cores']} cores, {node} has {maxcpu}"
        if maxcpu and cores[node] + vm["cores"] > maxcpu:
            return (f"the lab's VMs on {node} would ask {cores[node] + vm['cores']} cores of its {maxcpu} "
                    f"(an overcommitted CPU pollutes the figures)")
        need = vm["memory"] * MIB if new else 0
        if maxmem and memory[node] + need > maxmem - used:
            return (f"the VMs to clone on {node} would need {_gib(memory[node] + need)} of memory, "
                    f"{_gib(maxmem - used)} is free")
        return None

    placed: dict[str, str] = {}
    for vm in order:
        name = vm["name"]
        new = name not in existing
        if name in fixed:
            node = fixed[name]
            if node in cluster.nodes and cluster.online(node):
                short = room(node, vm, new)
                if short:
                    problems.append(short)
                if new and usable.get(node):
                    problems.append(f"{name} is to run on {node}, but {usable[node]}")
        else:
            if not candidates:
                if not usable:
                    why = f"no node of the cluster is online ({', '.join(sorted(cluster.nodes))})"
                else:
                    why = "; ".join(f"{n}: {r}" for n, r in usable.items() if r)
                problems.append(f"no node for {name}: {why}")
                continue
            # Fewest of the lab's VMs first; the pair's second VM avoids the first's node where it can.
            ranked = sorted(candidates, key=lambda n: (len(load[n]), n))
            fitting = [n for n in ranked if room(n, vm, new) is None]
            if not fitting:
                problems.append(f"no node holds {name} ({vm['cores']} cores, {vm['memory']} MiB): "
                                + "; ".join(room(n, vm, new) or "" for n in ranked))
                continue
            node = fitting[0]
        placed[name] = node
        load.setdefault(node, []).append(name)
        cores[node] = cores.get(node, 0) + vm["cores"]
        memory[node] = memory.get(node, 0) + (vm["memory"] * MIB if new else 0)

    online = cluster.online_nodes()
    if placement == "spread" and len(online) > 1 and len(candidates) < len(online):
        left = [f"{n} ({r})" for n, r in usable.items() if r]
        notes.append(f"spread over {len(candidates)} of {len(online)} online nodes; not on " + "; ".join(left))
    if len(pair) == 2 and all(name in placed for name in pair) and placed[pair[0]] == placed[pair[1]] \
            and len(online) > 1:
        notes.append(f"the benchmark's pair {pair[0]} and {pair[1]} share {placed[pair[0]]}: its cross-node tests "
                     "never cross a wire")
    result = []
    for vm in vms:
        node = placed.get(vm["name"])
        source = source_for(node)[0] if node and vm["name"] not in existing else None
        result.append(vm | {"node": node, "exists": vm["name"] in existing,
                            "template": {k: source[k] for k in ("vmid", "name", "node")} if source else None})
    return {"vms": result, "problems": list(dict.fromkeys(problems)), "notes": notes,
            "nodes": {node: names for node, names in sorted(load.items()) if names}}
