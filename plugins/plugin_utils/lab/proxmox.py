"""The Proxmox lab: plan checks, the VM settings in PVE's config form, drift, guest addresses, what is the lab's,
and which API failures are worth another try.

Pure functions, unit tested; the proxmox_vm role calls them through the netlab.lab.proxmox_* filters and the
netlab.lab.proxmox_transient test, and drives Proxmox only through community.proxmox.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

ROLES = ("server", "agent")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# PVE node names are host names (pve-node format).
_NODE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_+.-]*$")
# API failures worth another try: a held config lock, a reset connection, a proxy's 5xx, a ticket that expired.
TRANSIENT = re.compile(
    r"can't lock file|is locked|got timeout|Connection (reset|refused|aborted)|Max retries exceeded|"
    r"Read timed out|50[234] |401 Unauthorized|invalid PVE ticket"
)


class PlanError(ValueError):
    """The VM list or its settings cannot make a lab."""


def plan(vms: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the VM list against the settings and fill each VM's defaults; every problem is reported at once."""
    problems = []
    prefix, tag = settings["name_prefix"], settings["tag"]
    subnet = None
    try:
        subnet = ipaddress.ip_network(settings["subnet"])
    except ValueError as exc:
        problems.append(f"subnet {settings['subnet']!r} is not a network ({exc})")
    if subnet is not None and settings.get("gateway"):
        try:
            if ipaddress.ip_address(settings["gateway"]) not in subnet:
                problems.append(f"gateway {settings['gateway']} is outside the subnet {subnet}")
        except ValueError:
            problems.append(f"gateway {settings['gateway']!r} is not an address")
    if not _TAG.match(tag):
        problems.append(f"tag {tag!r} is not a valid Proxmox tag (lower case letters, digits, _ + . -)")
    if not vms:
        problems.append("no VMs to provision")
    planned = []
    for index, vm in enumerate(vms):
        name = str(vm.get("name", ""))
        where = f"VM {index + 1} ({name or 'no name'})"
        full = {"cores": settings["cores"], "memory": settings["memory"], "ip": "dhcp"} | vm
        if not _NAME.match(name):
            problems.append(f"{where}: name must be a DNS label")
        elif not name.startswith(prefix):
            problems.append(f"{where}: name must start with the lab prefix {prefix!r}")
        if not isinstance(full.get("vmid"), int) or not 100 <= full["vmid"] <= 999999999:
            problems.append(f"{where}: vmid must be an integer from 100 to 999999999")
        if full.get("role") not in ROLES:
            problems.append(f"{where}: role must be server or agent")
        if "node" in full and not (isinstance(full["node"], str) and _NODE.match(full["node"])):
            problems.append(f"{where}: node must name a PVE node, got {full['node']!r}")
        for key in ("cores", "memory"):
            if not isinstance(full[key], int) or full[key] < 1:
                problems.append(f"{where}: {key} must be a positive integer, got {full[key]!r}")
        if full["ip"] != "dhcp" and subnet is not None:
            try:
                address = ipaddress.ip_address(full["ip"])
            except ValueError:
                problems.append(f"{where}: ip {full['ip']!r} is neither an address nor dhcp")
            else:
                if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
                    problems.append(f"{where}: ip {address} is not a host address of the subnet {subnet}")
        planned.append(full)
    for key in ("vmid", "name", "ip"):
        seen = [vm.get(key) for vm in planned if vm.get(key) not in (None, "dhcp")]
        dupes = sorted({str(v) for v in seen if seen.count(v) > 1})
        if dupes:
            problems.append(f"duplicate {key}: {', '.join(dupes)}")
    if vms and not any(vm.get("role") == "server" for vm in planned):
        problems.append("at least one VM must be a server")
    if problems:
        raise PlanError("; ".join(problems))
    return planned


def _props(text: str) -> dict[str, str]:
    """A PVE property string (key=value,...) as a dict; a bare first item maps to ''."""
    pairs = (item.partition("=") for item in text.split(",") if item)
    return {key: value for key, _, value in pairs}


def _net0(settings: dict[str, Any], mac: str | None) -> str:
    parts = [f"virtio={mac}" if mac else "virtio", f"bridge={settings['bridge']}"]
    if settings.get("vlan"):
        parts.append(f"tag={settings['vlan']}")
    if settings.get("mtu"):
        parts.append(f"mtu={settings['mtu']}")
    return ",".join(parts)


def _ipconfig0(vm: dict[str, Any], settings: dict[str, Any]) -> str:
    if vm["ip"] == "dhcp":
        return "ip=dhcp"
    prefix = ipaddress.ip_network(settings["subnet"]).prefixlen
    return f"ip={vm['ip']}/{prefix}" + (f",gw={settings['gateway']}" if settings.get("gateway") else "")


def _tags(text: str) -> set[str]:
    return {t for t in re.split(r"[,; ]+", text or "") if t}


def changes(vm: dict[str, Any], settings: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The proxmox_kvm update parameters that bring the VM's config to the plan; empty when it matches.

    ``current`` is the VM's config as PVE returns it. The NIC keeps the MAC the clone was given,
    and the lab's tag is added to any tags the VM already carries.
    """
    have_net = _props(current.get("net0", ""))
    mac = have_net.get("virtio") or None
    wanted_net = _props(_net0(settings, mac))
    ipconfig0 = _ipconfig0(vm, settings)
    keys = [str(k) for k in settings.get("ssh_keys", [])]
    update: dict[str, Any] = {}
    if str(current.get("cores", "")) != str(vm["cores"]):
        update["cores"] = vm["cores"]
    if str(current.get("memory", "")) != str(vm["memory"]):
        update["memory"] = vm["memory"]
    if current.get("cpu", "") != settings["cpu"]:
        update["cpu"] = settings["cpu"]
    if {k.lower(): v.lower() for k, v in have_net.items()} != {k.lower(): v.lower() for k, v in wanted_net.items()}:
        update["net"] = {"net0": _net0(settings, mac)}
    if current.get("ipconfig0", "") != ipconfig0:
        update["ipconfig"] = {"ipconfig0": ipconfig0}
    if current.get("ciuser", "") != settings["ci_user"]:
        update["ciuser"] = settings["ci_user"]
    if keys and unquote(current.get("sshkeys", "")).strip() != "\n".join(keys).strip():
        update["sshkeys"] = "\n".join(keys)
    if settings.get("nameservers") and current.get("nameserver", "").split() != list(settings["nameservers"]):
        update["nameservers"] = list(settings["nameservers"])
    if settings["tag"] not in _tags(current.get("tags", "")):
        update["tags"] = sorted(_tags(current.get("tags", "")) | {settings["tag"]})
    if not _agent_enabled(str(current.get("agent", "0"))):
        update["agent"] = "enabled=1"
    # PVE 8+ runs an apt upgrade at first boot unless ciupgrade is 0: it would perturb the first benchmark.
    if str(current.get("ciupgrade", "1")) != ("1" if settings.get("ci_upgrade") else "0"):
        update["ciupgrade"] = bool(settings.get("ci_upgrade"))
    return update


def _agent_enabled(text: str) -> bool:
    """agent is '1', 'enabled=1' or '1,fstrim_cloned_disks=1' when on."""
    first = text.split(",")[0]
    return _props(text).get("enabled", first if "=" not in first else "0") == "1"


def is_lab_vm(vm: dict[str, Any], tag: str, prefix: str) -> bool:
    """Only a VM with the lab's tag and name prefix is the lab's; a matching name alone is not enough."""
    return tag in _tags(vm.get("tags", "")) and str(vm.get("name", "")).startswith(prefix)


def lab_vms(vms: list[dict[str, Any]], tag: str, prefix: str) -> list[dict[str, Any]]:
    """The lab's QEMU VMs among proxmox_vm_info's list, templates excluded."""
    return [vm for vm in vms if vm.get("type", "qemu") == "qemu" and not vm.get("template")
            and is_lab_vm(vm, tag, prefix)]


def taken(planned: list[dict[str, Any]], vms: list[dict[str, Any]], tag: str, prefix: str) -> list[dict[str, Any]]:
    """Cluster VMs that hold a planned VMID but are not the lab's VM of that name: the plan must not touch them."""
    names = {vm["vmid"]: vm["name"] for vm in planned}
    return [vm for vm in vms if vm.get("vmid") in names
            and (vm.get("name") != names[vm["vmid"]] or not is_lab_vm(vm, tag, prefix))]


def guest_ipv4(interfaces: list[dict[str, Any]] | None, subnet: str) -> list[str]:
    """IPv4 addresses in the subnet from the guest agent's network-get-interfaces; none until the agent answers."""
    network = ipaddress.ip_network(subnet)
    return [a["ip-address"] for iface in interfaces or [] for a in iface.get("ip-addresses", [])
            if a.get("ip-address-type") == "ipv4" and ipaddress.ip_address(a["ip-address"]) in network]


def transient(result: Mapping[str, Any]) -> bool:
    """Whether a task result failed in a way another try may mend (TRANSIENT in its msg)."""
    return bool(result.get("failed")) and TRANSIENT.search(str(result.get("msg", ""))) is not None
