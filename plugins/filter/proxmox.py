"""Filters for the Proxmox lab; each is documented in its sidecar file."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import proxmox, proxmox_placement


def proxmox_plan(vms: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return proxmox.plan(vms, settings)
    except proxmox.PlanError as exc:
        raise AnsibleFilterError(f"proxmox_plan: {exc}") from exc


def proxmox_placement_plan(vms: list[dict[str, Any]], cluster: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return proxmox_placement.place(vms, nodes=cluster["nodes"], storages=cluster["storages"],
                                   cluster_vms=cluster["vms"], template_configs=cluster["template_configs"], **settings)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "proxmox_plan": proxmox_plan,
            "proxmox_placement": proxmox_placement_plan,
            "proxmox_vm_changes": proxmox.changes,
            "proxmox_taken": proxmox.taken,
            "proxmox_lab_vms": proxmox.lab_vms,
            "proxmox_guest_ipv4": proxmox.guest_ipv4,
        }
