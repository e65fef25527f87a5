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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"node_nic": node_nic}
