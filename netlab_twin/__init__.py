"""Test support: fakepve as the Proxmox VE API and real node containers as its VMs' guests (the Proxmox twin)."""

from netlab_twin.lab import login, playbook, serve, session_key
from netlab_twin.twin import AGENT_MARK, TEMPLATE_VMID, Twin, add_template

__all__ = ["AGENT_MARK", "TEMPLATE_VMID", "Twin", "add_template", "login", "playbook", "serve", "session_key"]
